package fdsend

import "os"

// Cred is the identity of the process at the other end of a Unix socket, as
// the kernel recorded it when the connection was made. PID is 0 where the
// system does not tell it.
type Cred struct{ PID, UID, GID int }

// PeerCred returns the credentials of the peer of a connected Unix socket:
// SO_PEERCRED on Linux, LOCAL_PEERCRED (and LOCAL_PEERPID) on darwin and
// FreeBSD, getpeerucred on illumos; elsewhere an error wrapping
// errors.ErrUnsupported. sock is any form Send accepts; it is held open for
// the call and stays the caller's. The GID is the peer's primary group.
func PeerCred(sock any) (Cred, error) {
	r, err := resolve(sock, "sock", -1)
	if err != nil {
		return Cred{}, err
	}
	var cred Cred
	var cerr error
	if r.rc == nil {
		cred, cerr = peerCred(r.fd)
	} else if err := r.rc.Control(func(fd uintptr) { cred, cerr = peerCred(int(fd)) }); err != nil {
		return Cred{}, argError("sock", -1, sock, closedError{err})
	}
	if cerr != nil {
		return Cred{}, os.NewSyscallError("getsockopt", cerr)
	}
	return cred, nil
}
