//go:build linux

package fdsend

import (
	"unsafe"

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
	var msg unix.Msghdr
	var iov unix.Iovec
	if len(p) > 0 {
		iov.Base = &p[0]
		iov.SetLen(len(p))
		msg.Iov = &iov
		msg.SetIovlen(1)
	}
	if len(oob) > 0 {
		msg.Control = &oob[0]
		msg.SetControllen(len(oob))
	}
	for {
		r, _, e := unix.RawSyscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags|unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	}
}

// recvmsgStep is one attempt of a RawConn Read callback: see above when
// polled (every descriptor close-on-exec as it arrives, MSG_CMSG_CLOEXEC),
// else recvmsgPolled as for any descriptor.
func recvmsgStep(fd int, p, oob []byte, flags int, polled bool) (n, oobn, mflags int, err error) {
	if !polled {
		return recvmsgPolled(fd, p, oob, flags)
	}
	// Built in place, as in recvmsgRaw, so that nothing escapes.
	var msg unix.Msghdr
	var iov unix.Iovec
	if len(p) > 0 {
		iov.Base = &p[0]
		iov.SetLen(len(p))
		msg.Iov = &iov
		msg.SetIovlen(1)
	}
	if len(oob) > 0 {
		msg.Control = &oob[0]
		msg.SetControllen(len(oob))
	}
	for {
		r, _, e := unix.RawSyscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags|unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, 0, 0, e
		}
		// The kernel echoes MSG_CMSG_CLOEXEC in the flags: ours, not news
		// about the message.
		return int(r), int(msg.Controllen), int(msg.Flags) &^ unix.MSG_CMSG_CLOEXEC, nil
	}
}
