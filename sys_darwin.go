package fdsend

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// msgNoSignal: darwin has no MSG_NOSIGNAL; the Go runtime ignores SIGPIPE
// on sockets other than stdout and stderr.
const msgNoSignal = 0

// fullControlBuffer: when darwin truncates control data it still installs
// every descriptor, including those that did not fit, which could then be
// neither found nor closed. So every receive gives room for the most
// descriptors a message can carry, and what does not fit in the caller's
// slice is closed by us.
const fullControlBuffer = true

// recvmsgCloexec receives without blocking and marks every received
// descriptor close-on-exec before anyone can fork: darwin has no
// MSG_CMSG_CLOEXEC, so the receive and the fcntl calls happen under
// syscall.ForkLock, which exec takes for writing. The lock is never held
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

// socketpairFlags creates a connected pair, both ends close-on-exec: darwin
// has no SOCK_CLOEXEC, so the pair is made and marked under the fork lock.
func socketpairFlags(typ int) ([2]int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fds, err := unix.Socketpair(unix.AF_UNIX, typ, 0)
	if err != nil {
		return fds, err
	}
	unix.CloseOnExec(fds[0])
	unix.CloseOnExec(fds[1])
	return fds, nil
}

// socketCloexec creates a close-on-exec SOCK_STREAM Unix socket, marked
// under the fork lock (darwin has no SOCK_CLOEXEC).
func socketCloexec() (int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return -1, err
	}
	unix.CloseOnExec(fd)
	return fd, nil
}
