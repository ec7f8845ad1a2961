//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package spawn

import (
	"errors"
	"fmt"
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

func command(o Options, files []NamedFile, name string, arg ...string) (*exec.Cmd, error) {
	return nil, errUnsupported
}

func execFiles(o Options, files []NamedFile, path string, argv []string, env []string) error {
	return errUnsupported
}
