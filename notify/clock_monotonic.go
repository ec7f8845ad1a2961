//go:build darwin || dragonfly || freebsd || illumos || linux || openbsd

package notify

import "golang.org/x/sys/unix"

// clockMonotonic is the clock systemd reads for MONOTONIC_USEC=.
const clockMonotonic = unix.CLOCK_MONOTONIC
