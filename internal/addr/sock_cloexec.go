//go:build linux || freebsd || netbsd || openbsd

package addr

import (
	"os"

	"golang.org/x/sys/unix"
)

// abstractSupported tells whether the system has abstract Unix sockets.
const abstractSupported = isLinux

// newSocket opens a close-on-exec, blocking socket.
func newSocket(family, typ int) (int, error) {
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	return fd, nil
}
