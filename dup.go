package fdsend

import (
	"os"
)

// DupFD returns a new close-on-exec descriptor, numbered min or above, for
// the open file that file names: anything Send accepts. A file given as an
// *os.File or syscall.Conn is duplicated inside its RawConn's Control, so a
// concurrent Close cannot recycle the number, and without (*os.File).Fd's
// side effect of switching it to blocking mode. The caller owns the new
// descriptor and closes it; file stays the caller's. Bad arguments are an
// *ArgError naming "file".
func DupFD(file any, min int) (int, error) {
	r, err := resolve(file, "file", -1)
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	dup := func(fd uintptr) { nfd, derr = dupCloexec(fd, min) }
	if r.rc == nil {
		dup(uintptr(r.fd))
	} else if err := r.rc.Control(dup); err != nil {
		return -1, argError("file", -1, file, closedError{err})
	}
	if derr != nil {
		return -1, argError("file", -1, file, os.NewSyscallError("fcntl", derr))
	}
	return nfd, nil
}

// Dup returns a new close-on-exec *os.File for the open file that file names:
// anything Send accepts (see DupFD). The caller owns it.
func Dup(file any) (*os.File, error) {
	fd, err := DupFD(file, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "fdsend-dup"), nil
}
