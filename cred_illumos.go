package fdsend

import "golang.org/x/sys/unix"

// peerCred reads the peer's credentials with getpeerucred(3C): effective
// UID and GID, and PID.
func peerCred(fd int) (Cred, error) {
	u, err := unix.GetPeerUcred(uintptr(fd))
	if err != nil {
		return Cred{}, err
	}
	return Cred{PID: u.Getpid(), UID: u.Geteuid(), GID: u.Getegid()}, nil
}

// peerCredSupported says whether PeerCred works here (a Listener's
// allow-list needs it).
const peerCredSupported = true
