//go:build darwin || openbsd

package fdsend

import "golang.org/x/sys/unix"

// On darwin and OpenBSD system calls go through libc, so the msghdr is built
// by golang.org/x/sys/unix, which adds a one-byte dummy to an empty data
// buffer whenever there is control data. Send refuses files with an empty
// message, and Recv an empty buffer, rather than send or eat that byte.
const needsDataByte = true

// sendmsg is one sendmsg(2), EINTR retried. It returns the raw errno.
func sendmsg(fd int, p, oob []byte, flags int) (int, error) {
	return sendmsg2(fd, p, nil, oob, flags)
}

// sendmsg2 is one sendmsg(2) of two buffers (a frame header and its data)
// with optional control data, EINTR retried. It returns the raw errno.
func sendmsg2(fd int, p1, p2, oob []byte, flags int) (int, error) {
	bufs := [][]byte{p1, p2}
	for {
		n, err := unix.SendmsgBuffers(fd, bufs, oob, nil, flags|msgNoSignal)
		if err == unix.EINTR {
			continue
		}
		return n, err
	}
}

// recvmsgRaw is one recvmsg(2), EINTR retried. If x/sys fails after the
// kernel delivered descriptors (it can, decoding the sender's address), they
// are closed here: the caller sees only the error.
func recvmsgRaw(fd int, p, oob []byte, flags int) (n, oobn, mflags int, err error) {
	for {
		n, oobn, mflags, _, err = unix.Recvmsg(fd, p, oob, flags)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			if oobn > 0 && oobn <= len(oob) {
				closeRights(oob[:oobn])
			}
			return 0, 0, 0, err
		}
		return n, oobn, mflags, nil
	}
}
