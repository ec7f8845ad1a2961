//go:build darwin || illumos

package fdsend

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// recvmsgCloexec receives without blocking and marks every received
// descriptor close-on-exec before anyone can fork. These systems have no
// MSG_CMSG_CLOEXEC (darwin), or x/sys does not define it (illumos), so the
// receive and the fcntl calls happen under syscall.ForkLock, which exec
// takes for writing. The lock is never held
// while waiting: the receive is MSG_DONTWAIT and EAGAIN goes back to the
// caller, which waits (poller or poll(2)) without the lock.
func recvmsgCloexec(fd int, p, oob []byte, flags int) (n, oobn, mflags int, err error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	n, oobn, mflags, err = recvmsgRaw(fd, p, oob, flags|unix.MSG_DONTWAIT)
	if err != nil {
		return 0, 0, 0, err
	}
	forEachRight(oob[:oobn], func(fd int) { unix.CloseOnExec(fd) })
	return n, oobn, mflags, nil
}

// recvmsgPolled is what a RawConn's Read callback calls. The receive is
// always MSG_DONTWAIT; when the descriptor is in blocking mode the runtime
// cannot poll it (an *os.File made from an inherited socket), so EAGAIN
// waits here with poll(2), outside the fork lock, instead of failing.
func recvmsgPolled(fd int, p, oob []byte, flags int) (n, oobn, mflags int, err error) {
	n, oobn, mflags, err = recvmsgCloexec(fd, p, oob, flags)
	if err != unix.EAGAIN || flags&unix.MSG_DONTWAIT != 0 {
		return n, oobn, mflags, err
	}
	if fl, ferr := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); ferr == nil && fl&unix.O_NONBLOCK == 0 {
		return recvBlocking(fd, p, oob, flags)
	}
	return n, oobn, mflags, err
}

// recvBlocking receives on a descriptor the runtime does not poll. It waits
// with poll(2) first, without any lock, then receives with MSG_DONTWAIT under
// the fork lock; if another reader took the message it waits again. A
// caller's MSG_DONTWAIT returns EAGAIN at once.
func recvBlocking(fd int, p, oob []byte, flags int) (n, oobn, mflags int, err error) {
	for {
		if flags&unix.MSG_DONTWAIT == 0 {
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			if _, err := unix.Poll(pfd, -1); err != nil {
				if err == unix.EINTR {
					continue
				}
				return 0, 0, 0, err
			}
		}
		n, oobn, mflags, err = recvmsgCloexec(fd, p, oob, flags)
		if err == unix.EAGAIN && flags&unix.MSG_DONTWAIT == 0 {
			continue
		}
		return n, oobn, mflags, err
	}
}
