package activation

import (
	"fmt"

	"github.com/fdsend/fdsend/internal/fdname"
)

// UnknownName is the name a descriptor has when the launcher gave none: the
// LISTEN_FDNAMES variable was not set, as with systemd-socket-activate
// without --fdname. It is the name sd_listen_fds_with_names(3) reports in that
// case.
const UnknownName = fdname.Unknown

// ValidateName reports whether name may be sent in LISTEN_FDNAMES: 1 to 255
// printable ASCII characters (space through '~'), none of them ':', the
// separator of the list. The error says what is wrong and wraps
// syscall.EINVAL. systemd also lets an empty name through; this package never
// sends one, because LISTEN_FDNAMES cannot tell a single empty name from no
// names at all. notify.CheckName applies the same rule.
func ValidateName(name string) error {
	if err := fdname.Check(name); err != nil {
		return fmt.Errorf("activation: %w", err)
	}
	return nil
}

// quoteShort quotes s for an error message, cutting a long one.
func quoteShort(s string) string { return fdname.QuoteShort(s) }
