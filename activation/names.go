package activation

import (
	"fmt"
	"strings"
	"syscall"
)

// UnknownName is the name a descriptor has when the launcher gave none: the
// LISTEN_FDNAMES variable was not set, as with systemd-socket-activate
// without --fdname. It is the name sd_listen_fds_with_names(3) reports in that
// case.
const UnknownName = "unknown"

// maxNameLen is the longest name LISTEN_FDNAMES may carry, as systemd limits
// it.
const maxNameLen = 255

// ValidateName reports whether name may be sent in LISTEN_FDNAMES: 1 to 255
// printable ASCII characters (space through '~'), none of them ':', the
// separator of the list. The error says what is wrong and wraps
// syscall.EINVAL. systemd also lets an empty name through; this package never
// sends one, because LISTEN_FDNAMES cannot tell a single empty name from no
// names at all.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("activation: empty descriptor name: want 1 to %d printable ASCII characters: %w", maxNameLen, syscall.EINVAL)
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("activation: descriptor name %s is %d bytes long, at most %d are allowed: %w", quoteShort(name), len(name), maxNameLen, syscall.EINVAL)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == ':':
			return fmt.Errorf("activation: descriptor name %q contains ':', the LISTEN_FDNAMES separator: %w", name, syscall.EINVAL)
		case c < 0x20 || c == 0x7f:
			return fmt.Errorf("activation: descriptor name %q contains control character 0x%02x at byte %d: %w", name, c, i, syscall.EINVAL)
		case c > 0x7f:
			return fmt.Errorf("activation: descriptor name %q contains a non-ASCII byte 0x%02x at byte %d: %w", name, c, i, syscall.EINVAL)
		}
	}
	return nil
}

// checkReceivedName accepts a name as systemd lets it through (empty, any
// byte but a control character, up to 255 bytes) and describes what is wrong
// otherwise.
func checkReceivedName(name string) error {
	if len(name) > maxNameLen {
		return fmt.Errorf("is %d bytes long, at most %d are allowed", len(name), maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("contains control character 0x%02x at byte %d", c, i)
		}
	}
	return nil
}

// quoteShort quotes s for an error message, cutting it after 64 bytes so
// that a huge value does not flood the message.
func quoteShort(s string) string {
	const max = 64
	if len(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q...", s[:max])
}

// joinNames joins names into a LISTEN_FDNAMES value.
func joinNames(names []string) string { return strings.Join(names, ":") }
