//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package main

import "errors"

// fdOpen cannot tell on this system; passing descriptors is not supported
// here anyway.
func fdOpen(fd int) error { return errors.ErrUnsupported }
