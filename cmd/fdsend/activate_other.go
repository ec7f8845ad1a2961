//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package main

import (
	"errors"
	"fmt"
	"syscall"
)

// run reports that socket activation does not exist on this system.
func (cfg *activateConfig) run() int {
	logf("not supported on this system")
	return 1
}

// parseSignal: no signals to name here.
func parseSignal(s string) (syscall.Signal, error) {
	return 0, fmt.Errorf("%q: signals are not supported on this system: %w", s, errors.ErrUnsupported)
}

func reloadable(syscall.Signal) bool { return false }
