//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package activation

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
)

// errUnsupported is returned where descriptors cannot be handed to a child.
var errUnsupported = fmt.Errorf("activation: socket activation is not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)

// Command is not supported on this system: it returns an error wrapping
// errors.ErrUnsupported and opens nothing.
func Command(files []NamedFile, name string, arg ...string) (*exec.Cmd, error) {
	return nil, errUnsupported
}

// Exec is not supported on this system: it returns an error wrapping
// errors.ErrUnsupported.
func Exec(files []NamedFile, path string, argv []string, env []string) error {
	return errUnsupported
}

// loadInherited finds nothing: this system has no socket activation, so
// ListenOrInherit always listens afresh.
func loadInherited() ([]entry, error) { return nil, nil }

// classify is never reached: nothing is ever inherited here.
func classify(f *os.File) (fdInfo, error) { return fdInfo{}, errUnsupported }

// pollableCopy is never reached: nothing is ever inherited here.
func pollableCopy(f *os.File) (*os.File, error) { return nil, errUnsupported }
