//go:build linux || darwin || freebsd || netbsd || openbsd

package fdstore

import (
	"os"

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
