package pidfd

import "golang.org/x/sys/unix"

// OwnID returns the inode number of a pidfd of this process, which
// identifies the process for as long as the system runs (unlike a PID, which
// is recycled), and whether there is one: only a kernel with pidfs (Linux
// 6.9 and later) gives each process an inode of its own. It is what systemd
// puts in LISTEN_PIDFDID. The pidfd is closed before returning.
func OwnID() (uint64, bool) {
	fd, err := unix.PidfdOpen(unix.Getpid(), 0)
	if err != nil {
		return 0, false
	}
	defer unix.Close(fd)
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil || sfs.Type != unix.PID_FS_MAGIC {
		return 0, false
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, false
	}
	return uint64(st.Ino), true
}
