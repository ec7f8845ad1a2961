package fdsend

import "golang.org/x/sys/unix"

// peerCred reads SO_PEERCRED.
func peerCred(fd int) (Cred, error) {
	u, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return Cred{}, err
	}
	return Cred{PID: int(u.Pid), UID: int(u.Uid), GID: int(u.Gid)}, nil
}

// peerCredSupported says whether PeerCred works here (a Listener's
// allow-list needs it).
const peerCredSupported = true
