package fdsend

import "syscall"

// On illumos system calls go through libc. The message calls are package
// syscall's, not golang.org/x/sys/unix's: x/sys's Solaris msghdr code gives
// the kernel the length of the control buffer but never its address, so it
// cannot carry descriptors. Package syscall's use the msghdr layout of
// 4.3BSD, which has no msg_flags: the kernel's MSG_TRUNC and MSG_CTRUNC are
// never seen here. Descriptors that do not fit are still found and closed
// (fullControlBuffer, takeFDs); a datagram cut short is not reported.
//
// Like x/sys, package syscall adds a one-byte dummy to an empty data buffer
// whenever there is control data, so Send refuses files with an empty
// message and Recv an empty buffer.
const needsDataByte = true

// sendmsg is one sendmsg(2), EINTR retried. It returns the raw errno.
func sendmsg(fd int, p, oob []byte, flags int) (int, error) {
	for {
		n, err := syscall.SendmsgN(fd, p, oob, nil, flags|msgNoSignal)
		if err == syscall.EINTR {
			continue
		}
		return n, err
	}
}

// sendmsg2 sends the first non-empty buffer of p1 and p2 with the control
// data: package syscall has no gather write. A stream caller (Conn) goes on
// with what is left, as after any short write.
func sendmsg2(fd int, p1, p2, oob []byte, flags int) (int, error) {
	if len(p1) == 0 {
		return sendmsg(fd, p2, oob, flags)
	}
	return sendmsg(fd, p1, oob, flags)
}

// recvmsgRaw is one recvmsg(2), EINTR retried. If package syscall fails
// after the kernel delivered descriptors (decoding the sender's address),
// they are closed here: the caller sees only the error. mflags is always 0
// (see above).
func recvmsgRaw(fd int, p, oob []byte, flags int) (n, oobn, mflags int, err error) {
	for {
		n, oobn, mflags, _, err = syscall.Recvmsg(fd, p, oob, flags)
		if err == syscall.EINTR {
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
