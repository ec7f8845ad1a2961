//go:build darwin

package socket

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// Open creates a socket of family and typ, close-on-exec: the system has no
// SOCK_CLOEXEC, so it is made and marked under the fork lock.
func Open(family, typ int) (int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fd, err := unix.Socket(family, typ, 0)
	if err != nil {
		return -1, err
	}
	unix.CloseOnExec(fd)
	return fd, nil
}

// Pair creates a connected pair of Unix sockets of type typ, both ends
// close-on-exec, made and marked under the fork lock.
func Pair(typ int) ([2]int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fds, err := unix.Socketpair(unix.AF_UNIX, typ, 0)
	if err != nil {
		return fds, err
	}
	unix.CloseOnExec(fds[0])
	unix.CloseOnExec(fds[1])
	return fds, nil
}
