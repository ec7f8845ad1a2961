//go:build !unix

package watch

import (
	"context"
	"errors"
	"fmt"
)

// Run fails: a build is a /bin/sh command run in a process group, which
// this system does not have.
func (b *Build) Run(ctx context.Context) Result {
	return Result{Err: fmt.Errorf("build: %w", errors.ErrUnsupported), ExitCode: -1}
}
