//go:build darwin || dragonfly || illumos || netbsd || openbsd

package fdsend

// closeRange reports that nothing was closed: these systems have no
// close_range(2) (closefrom closes everything above a number, not a run), so
// CloseFDs closes each number with close(2).
func closeRange(lo, hi int) bool { return false }
