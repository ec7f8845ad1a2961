//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package fdkind

import (
	"errors"
	"fmt"
	"os"
	"runtime"
)

// Inspect cannot look into descriptors on this system: it returns an error
// wrapping errors.ErrUnsupported.
func Inspect(f *os.File) (Desc, error) {
	return Desc{}, fmt.Errorf("describing a descriptor is not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
