//go:build freebsd || netbsd || openbsd

package fdsend

import "golang.org/x/sys/unix"

// scmPIDFD: these systems have no pidfd control message.
const scmPIDFD = -1

// sendmsg is one sendmsg(2), EINTR retried. It returns the raw errno.
func sendmsg(fd int, p, oob []byte, flags int) (int, error) {
	for {
		n, err := unix.SendmsgN(fd, p, oob, nil, flags|unix.MSG_NOSIGNAL)
		if err == unix.EINTR {
			continue
		}
		return n, err
	}
}

// recvmsgCloexec is one recvmsg(2), EINTR retried, with every received
// descriptor close-on-exec atomically (MSG_CMSG_CLOEXEC).
func recvmsgCloexec(fd int, p, oob []byte, flags int) (n, oobn, mflags int, err error) {
	for {
		n, oobn, mflags, _, err = unix.Recvmsg(fd, p, oob, flags|unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		return n, oobn, mflags, err
	}
}

// recvBlocking receives on a descriptor the runtime does not poll: a plain
// blocking call (a non-blocking socket returns EAGAIN).
func recvBlocking(fd int, p, oob []byte, flags int) (n, oobn, mflags int, err error) {
	return recvmsgCloexec(fd, p, oob, flags)
}

// socketpairCloexec creates a connected pair, both ends close-on-exec.
func socketpairCloexec(typ int) ([2]int, error) {
	return unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
}

// sendmsg2 is one sendmsg(2) of two buffers (a frame header and its data)
// with optional control data, EINTR retried. It returns the raw errno.
func sendmsg2(fd int, p1, p2, oob []byte, flags int) (int, error) {
	bufs := [][]byte{p1, p2}
	for {
		n, err := unix.SendmsgBuffers(fd, bufs, oob, nil, flags|unix.MSG_NOSIGNAL)
		if err == unix.EINTR {
			continue
		}
		return n, err
	}
}

// socketCloexec creates a close-on-exec SOCK_STREAM Unix socket.
func socketCloexec() (int, error) {
	return unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
}
