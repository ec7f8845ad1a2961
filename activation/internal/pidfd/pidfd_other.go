//go:build !linux

package pidfd

// OwnID reports that this system has no pidfd inode to compare
// LISTEN_PIDFDID with; the variable is then checked for form only.
func OwnID() (uint64, bool) { return 0, false }
