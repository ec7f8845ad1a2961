//go:build linux || darwin || freebsd || netbsd || openbsd

package fdstore

import (
	"os"

	"golang.org/x/sys/unix"
)

// dupFile returns a close-on-exec duplicate of f that the caller owns.
func dupFile(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, os.NewSyscallError("fcntl", derr)
	}
	return os.NewFile(uintptr(nfd), f.Name()), nil
}
