package fdsend

import "golang.org/x/sys/unix"

// msgNoSignal keeps a write to a closed peer from raising SIGPIPE.
const msgNoSignal = unix.MSG_NOSIGNAL

// fullControlBuffer: the kernel truncates control data cleanly.
const fullControlBuffer = false

// recvmsgCloexec is one recvmsg(2) with every received descriptor
// close-on-exec atomically (MSG_CMSG_CLOEXEC).
func recvmsgCloexec(fd int, p, oob []byte, flags int) (n, oobn, mflags int, err error) {
	return recvmsgRaw(fd, p, oob, flags|unix.MSG_CMSG_CLOEXEC)
}

// recvmsgPolled is what a RawConn's Read callback calls.
func recvmsgPolled(fd int, p, oob []byte, flags int) (n, oobn, mflags int, err error) {
	return recvmsgCloexec(fd, p, oob, flags)
}

// recvBlocking receives on a descriptor the runtime does not poll: a plain
// blocking call (a non-blocking socket returns EAGAIN).
func recvBlocking(fd int, p, oob []byte, flags int) (n, oobn, mflags int, err error) {
	return recvmsgCloexec(fd, p, oob, flags)
}

// socketpairFlags creates a pair with SOCK_CLOEXEC.
func socketpairFlags(typ int) ([2]int, error) {
	return unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
}

// socketCloexec creates a close-on-exec SOCK_STREAM Unix socket.
func socketCloexec() (int, error) {
	return unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
}
