// Package fdname holds the one definition of what a descriptor name is in
// the socket-activation protocol (LISTEN_FDNAMES) and in the sd_notify
// descriptor store (FDNAME=), and the names of the protocol's variables.
// Packages activation and notify export it as activation.ValidateName and
// notify.CheckName; everything else in fdsend uses it from here.
package fdname

import (
	"fmt"
	"syscall"
)

// Unknown is the name of a descriptor that its launcher gave no name: the
// name sd_listen_fds_with_names(3) reports when LISTEN_FDNAMES is not set.
const Unknown = "unknown"

// MaxLen is the longest name LISTEN_FDNAMES and FDNAME= may carry, as
// systemd limits it.
const MaxLen = 255

// The environment variables of the socket-activation protocol.
const (
	EnvPID     = "LISTEN_PID"
	EnvPIDFDID = "LISTEN_PIDFDID"
	EnvFDs     = "LISTEN_FDS"
	EnvFDNames = "LISTEN_FDNAMES"
)

// ListenVars lists every variable of the protocol, for unsetting and for
// replacing in a child's environment.
var ListenVars = [...]string{EnvPID, EnvPIDFDID, EnvFDs, EnvFDNames}

// IsListenVar reports whether name is one of ListenVars.
func IsListenVar(name string) bool {
	for _, v := range ListenVars {
		if name == v {
			return true
		}
	}
	return false
}

// Check reports whether name may be sent: 1 to MaxLen printable ASCII
// characters (space through '~'), none of them ':', the separator of
// LISTEN_FDNAMES. The error says what is wrong, without a package prefix,
// and wraps syscall.EINVAL. systemd also lets an empty name through; fdsend
// never sends one, because LISTEN_FDNAMES cannot tell a single empty name
// from no names at all.
func Check(name string) error {
	if name == "" {
		return fmt.Errorf("empty descriptor name: want 1 to %d printable ASCII characters: %w", MaxLen, syscall.EINVAL)
	}
	if len(name) > MaxLen {
		return fmt.Errorf("descriptor name %s is %d bytes long, at most %d are allowed: %w", QuoteShort(name), len(name), MaxLen, syscall.EINVAL)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == ':':
			return fmt.Errorf("descriptor name %q contains ':', the LISTEN_FDNAMES separator: %w", name, syscall.EINVAL)
		case c < 0x20 || c == 0x7f:
			return fmt.Errorf("descriptor name %q contains control character 0x%02x at byte %d: %w", name, c, i, syscall.EINVAL)
		case c > 0x7f:
			return fmt.Errorf("descriptor name %q is not printable ASCII: it contains a non-ASCII byte 0x%02x at byte %d: %w", name, c, i, syscall.EINVAL)
		}
	}
	return nil
}

// CheckReceived accepts a name as systemd lets it through (empty, any byte
// but a control character, up to MaxLen bytes) and describes what is wrong
// otherwise: what a receiver tolerates is wider than what Check lets a
// sender send.
func CheckReceived(name string) error {
	if len(name) > MaxLen {
		return fmt.Errorf("is %d bytes long, at most %d are allowed", len(name), MaxLen)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("contains control character 0x%02x at byte %d", c, i)
		}
	}
	return nil
}

// QuoteShort quotes s for an error message, cutting it after 64 bytes so
// that a huge value does not flood the message.
func QuoteShort(s string) string {
	const max = 64
	if len(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q...", s[:max])
}
