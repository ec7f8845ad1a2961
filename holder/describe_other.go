//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package holder

import (
	"errors"
	"os"
)

// describe cannot look into descriptors on this system.
func describe(f *os.File) string { return "unknown" }

// dupFile is not supported on this system.
func dupFile(f *os.File) (*os.File, error) { return nil, errors.ErrUnsupported }
