//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package fdkind

import (
	"errors"
	"fmt"
	"os"
	"runtime"
)

// Of is never reached on this system (nothing is ever inherited here): it
// returns an error wrapping errors.ErrUnsupported.
func Of(f *os.File) (Info, error) {
	return Info{}, fmt.Errorf("activation: socket activation is not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
