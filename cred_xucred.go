//go:build darwin || freebsd

package fdsend

import "golang.org/x/sys/unix"

// peerCred reads LOCAL_PEERCRED; the first group of the xucred is the
// effective (primary) group. The PID comes from localPeerPID where the
// system has it.
func peerCred(fd int) (Cred, error) {
	x, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return Cred{}, err
	}
	c := Cred{UID: int(x.Uid), GID: -1}
	if x.Ngroups > 0 {
		c.GID = int(x.Groups[0])
	}
	if localPeerPID >= 0 {
		if pid, err := unix.GetsockoptInt(fd, unix.SOL_LOCAL, localPeerPID); err == nil {
			c.PID = pid
		}
	}
	return c, nil
}

// peerCredSupported says whether PeerCred works here (a Listener's
// allow-list needs it).
const peerCredSupported = true
