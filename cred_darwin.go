package fdsend

import "golang.org/x/sys/unix"

// peerPID reads LOCAL_PEERPID; 0 if unknown.
func peerPID(fd int) int {
	pid, err := unix.GetsockoptInt(fd, unix.SOL_LOCAL, unix.LOCAL_PEERPID)
	if err != nil {
		return 0
	}
	return pid
}
