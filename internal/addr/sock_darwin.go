package addr

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

const abstractSupported = false

// newSocket opens a close-on-exec, blocking socket. Darwin has no
// SOCK_CLOEXEC: the flag is set under syscall.ForkLock so no fork sees the
// descriptor without it.
func newSocket(family, typ int) (int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fd, err := unix.Socket(family, typ, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	unix.CloseOnExec(fd)
	return fd, nil
}
