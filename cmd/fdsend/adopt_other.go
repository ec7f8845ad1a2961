//go:build !linux

package main

import (
	"errors"
	"fmt"
	"runtime"
)

// run reports that taking another process's descriptors needs Linux.
func (cfg *adoptConfig) run(c *Command) (int, error) {
	return 1, fmt.Errorf("taking another process's sockets needs Linux's pidfd_getfd, and this is %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
