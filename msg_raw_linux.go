//go:build linux

package fdsend

import (
	"golang.org/x/sys/unix"
)

// On Linux the calls a RawConn callback makes for a socket the runtime polls
// (a *net.UnixConn) are raw and non-blocking: MSG_DONTWAIT, issued with
// unix.RawSyscall, which skips the runtime's system-call bookkeeping. The
// goroutine keeps its P for the call's duration, so the call must never
// sleep: MSG_DONTWAIT makes a Unix socket's sendmsg and recvmsg return
// EAGAIN instead of waiting, and the caller (the RawConn) then waits in the
// poller, where deadlines and Close apply. That holds even when someone put
// the descriptor in blocking mode: the flag, not the file's O_NONBLOCK,
// decides, so a deadline still ends the wait.
//
// Without the bookkeeping the scheduler does not see a goroutine in a system
// call at each message, so it does not hand its P to another thread (sysmon
// does that to a goroutine that stays in ordinary system calls), which is
// most of the context switches a busy sender or receiver paid for.

// sendmsgStep is one attempt of a RawConn Write callback: see above when
// polled, else sendmsg as for any descriptor.
func sendmsgStep(fd int, p, oob []byte, flags int, polled bool) (int, error) {
	if !polled {
		return sendmsg(fd, p, oob, flags)
	}
	return sendmsgCall(fd, p, nil, oob, flags|unix.MSG_DONTWAIT, true)
}

// recvmsgStep is one attempt of a RawConn Read callback: see above when
// polled (every descriptor close-on-exec as it arrives, MSG_CMSG_CLOEXEC),
// else recvmsgPolled as for any descriptor.
func recvmsgStep(fd int, p, oob []byte, flags int, polled bool) (n, oobn, mflags int, err error) {
	if !polled {
		return recvmsgPolled(fd, p, oob, flags)
	}
	n, oobn, mflags, err = recvmsgCall(fd, p, oob, flags|unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC, true)
	// The kernel echoes MSG_CMSG_CLOEXEC in the flags: ours, not news about
	// the message.
	return n, oobn, mflags &^ unix.MSG_CMSG_CLOEXEC, err
}

// sendmsg2Polled is one attempt of Conn's write callback on its polled
// socket: raw and non-blocking, as above; the RawConn waits on EAGAIN.
func sendmsg2Polled(fd int, p1, p2, oob []byte) (int, error) {
	return sendmsgCall(fd, p1, p2, oob, unix.MSG_DONTWAIT, true)
}

// sendInt sends on a descriptor given as a number, which the runtime does
// not poll and which may be blocking. A short message is first tried raw
// and non-blocking (see above); only if the socket is full does the
// ordinary blocking call follow, through the runtime's system-call path, so
// that a send that has to wait gives up its P as any blocking call does.
func sendInt(fd int, p, oob []byte, flags int) (int, error) {
	if len(p) <= rawTryMax {
		n, err := sendmsgCall(fd, p, nil, oob, flags|unix.MSG_DONTWAIT, true)
		if err != errAgain || flags&unix.MSG_DONTWAIT != 0 {
			return n, err
		}
	}
	return sendmsg(fd, p, oob, flags)
}

// recvInt receives on a descriptor given as a number, as sendInt sends: a
// raw non-blocking try, then, if nothing is there, the blocking call. A
// MSG_WAITALL receive goes straight to the blocking call (a non-blocking
// one would return less).
func recvInt(fd int, p, oob []byte, flags int) (n, oobn, mflags int, err error) {
	if flags&unix.MSG_WAITALL == 0 {
		n, oobn, mflags, err = recvmsgCall(fd, p, oob, flags|unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC, true)
		if err != errAgain || flags&unix.MSG_DONTWAIT != 0 {
			return n, oobn, mflags &^ unix.MSG_CMSG_CLOEXEC, err
		}
	}
	return recvBlocking(fd, p, oob, flags)
}
