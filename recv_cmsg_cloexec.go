//go:build dragonfly || freebsd || linux || netbsd || openbsd

package fdsend

import "golang.org/x/sys/unix"

// recvmsgCloexec is one recvmsg(2), EINTR retried, with every received
// descriptor close-on-exec atomically (MSG_CMSG_CLOEXEC). It returns the
// raw errno.
func recvmsgCloexec(fd int, p, oob []byte, flags int) (n, oobn, mflags int, err error) {
	n, oobn, mflags, err = recvmsgRaw(fd, p, oob, flags|unix.MSG_CMSG_CLOEXEC)
	// Linux echoes MSG_CMSG_CLOEXEC in the message's flags: it is ours, not
	// news about the message.
	return n, oobn, mflags &^ unix.MSG_CMSG_CLOEXEC, err
}

// recvmsgPolled is what a RawConn's Read callback calls: the descriptor is
// non-blocking when the runtime polls it, and a blocking one simply blocks.
func recvmsgPolled(fd int, p, oob []byte, flags int) (n, oobn, mflags int, err error) {
	return recvmsgCloexec(fd, p, oob, flags)
}

// recvBlocking receives on a descriptor the runtime does not poll: a plain
// blocking call (a non-blocking socket returns EAGAIN).
func recvBlocking(fd int, p, oob []byte, flags int) (n, oobn, mflags int, err error) {
	return recvmsgCloexec(fd, p, oob, flags)
}
