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
