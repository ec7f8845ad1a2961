//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package notify

import (
	"os"

	"golang.org/x/sys/unix"
)

// monotonicUsec returns CLOCK_MONOTONIC in microseconds, the clock systemd
// reads for MONOTONIC_USEC=.
func monotonicUsec() (uint64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(clockMonotonic, &ts); err != nil {
		return 0, os.NewSyscallError("clock_gettime", err)
	}
	return uint64(ts.Sec)*1e6 + uint64(ts.Nsec)/1e3, nil
}
