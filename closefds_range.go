//go:build freebsd || linux

package fdsend

import (
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// closeRangeMissing is set once close_range(2) has failed in a way that
// will not change while the process runs: ENOSYS (Linux before 5.9, FreeBSD
// before 12.2) or EPERM (a seccomp sandbox that does not know the call).
// From then on runs are closed one number at a time without trying it.
var closeRangeMissing atomic.Bool

// closeRange closes every descriptor from lo to hi (lo < hi, both owned by
// the caller) with one close_range(2) and reports whether it did; false
// means nothing was closed. On FreeBSD a kernel without the call also sends
// SIGSYS, which the Go runtime ignores unless the program asked for it.
func closeRange(lo, hi int) bool {
	if closeRangeMissing.Load() {
		return false
	}
	_, _, e := unix.Syscall(unix.SYS_CLOSE_RANGE, uintptr(lo), uintptr(hi), 0)
	switch e {
	case 0:
		return true
	case unix.ENOSYS, unix.EPERM:
		closeRangeMissing.Store(true)
	}
	return false
}
