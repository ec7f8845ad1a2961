//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package launch

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// sigName names a signal as a Unix tool does: SIGTERM, not "terminated".
func sigName(sig os.Signal) string {
	if s, ok := sig.(syscall.Signal); ok {
		if name := unix.SignalName(s); name != "" {
			return name
		}
	}
	return sig.String()
}
