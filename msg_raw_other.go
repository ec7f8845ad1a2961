//go:build !linux

package fdsend

// sendmsgStep is one attempt of a RawConn Write callback. Here every socket
// gets the ordinary call (polled matters only on Linux, msg_raw_linux.go).
func sendmsgStep(fd int, p, oob []byte, flags int, polled bool) (int, error) {
	return sendmsg(fd, p, oob, flags)
}

// recvmsgStep is one attempt of a RawConn Read callback, as recvmsgPolled.
func recvmsgStep(fd int, p, oob []byte, flags int, polled bool) (n, oobn, mflags int, err error) {
	return recvmsgPolled(fd, p, oob, flags)
}

// sendmsg2Polled is one attempt of Conn's write callback.
func sendmsg2Polled(fd int, p1, p2, oob []byte) (int, error) {
	return sendmsg2(fd, p1, p2, oob, 0)
}

// sendInt sends on a descriptor given as a number: the ordinary call.
func sendInt(fd int, p, oob []byte, flags int) (int, error) {
	return sendmsg(fd, p, oob, flags)
}

// recvInt receives on a descriptor given as a number: a plain blocking call.
func recvInt(fd int, p, oob []byte, flags int) (n, oobn, mflags int, err error) {
	return recvBlocking(fd, p, oob, flags)
}
