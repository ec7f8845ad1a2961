//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package activation

import (
	"errors"
	"fmt"
	"os"
	"runtime"
)

// errUnsupported is what pollableCopy returns where nothing is inherited.
var errUnsupported = fmt.Errorf("activation: socket activation is not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)

// loadInherited finds nothing: this system has no socket activation, so
// ListenOrInherit always listens afresh.
func loadInherited() ([]entry, error) { return nil, nil }

// pollableCopy is never reached: nothing is ever inherited here.
func pollableCopy(f *os.File) (*os.File, error) { return nil, errUnsupported }
