//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package fdstore

import (
	"fmt"
	"os"
	"syscall"

	"github.com/fdsend/fdsend"
)

// dupFile returns a close-on-exec duplicate of f that the caller owns.
func dupFile(f *os.File) (*os.File, error) {
	fd, err := fdsend.DupFD(f, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// chmodDir sets the mode of the directory at path, refusing a symlink and
// a directory that is not the process's own.
func chmodDir(path string, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || !fi.IsDir() || int(st.Uid) != os.Geteuid() {
		return &os.PathError{Op: "chmod", Path: path, Err: fmt.Errorf("not the directory this process made: %w", syscall.EEXIST)}
	}
	return f.Chmod(mode)
}
