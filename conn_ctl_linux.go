package fdsend

import "golang.org/x/sys/unix"

// ctlHeaders returns the room the control messages other than SCM_RIGHTS
// take in every receive on the socket fd, as its options ask for them: a
// security label (SO_PASSSEC, whose length varies: room for one of up to
// 200 bytes, a longer one is reported as truncation) and credentials
// (SO_PASSCRED) come before the descriptors; a pidfd (SO_PASSPIDFD) comes
// after them, so its room can also take up to six descriptors more than
// the buffer is sized for when a peer sends more than that.
func ctlHeaders(fd int) int {
	n := 0
	for _, o := range []struct{ opt, space int }{
		{unix.SO_PASSCRED, unix.CmsgSpace(unix.SizeofUcred)},
		{unix.SO_PASSPIDFD, unix.CmsgSpace(4)},
		{unix.SO_PASSSEC, unix.CmsgSpace(200)},
	} {
		if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, o.opt); err == nil && v != 0 {
			n += o.space
		}
	}
	return n
}

// rightsLen is the room for exactly n descriptors. Linux fills whatever
// room is left after the other headers with descriptors, so the header is
// not padded: a padded one would take one more when n is odd.
func rightsLen(n int) int { return unix.CmsgLen(4 * n) }
