//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package handoff

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"
)

// lock is not available on this system.
type lock struct{}

func acquireLock(path string, mode os.FileMode, timeout time.Duration) (*lock, error) {
	return nil, errUnsupported
}

func (l *lock) release() {}

// errUnsupported is the error of every call on a system where the package
// does not work.
var errUnsupported = fmt.Errorf("handoff: not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)
