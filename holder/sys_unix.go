//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package holder

import (
	"github.com/fdsend/fdsend"
	"golang.org/x/sys/unix"
)

// hungUp reports whether the peer of c has closed the connection and
// nothing is left to read: a peek that does not wait reads end of file.
func hungUp(c *fdsend.Conn) bool {
	uc := c.UnixConn()
	if uc == nil {
		return false
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	var buf [1]byte
	rc.Control(func(fd uintptr) {
		n, _, err := unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		gone = n == 0 && err == nil
	})
	return gone
}

// openLimit returns the soft limit on open descriptors, 0 if unknown.
func openLimit() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 0
	}
	return int(rl.Cur)
}
