package fdsend

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// scmPIDFD: darwin has no pidfd control message.
const scmPIDFD = -1

// sendmsg is one sendmsg(2), EINTR retried. It returns the raw errno. Darwin
// has no MSG_NOSIGNAL; the Go runtime ignores SIGPIPE on sockets that are
// not stdout or stderr.
func sendmsg(fd int, p, oob []byte, flags int) (int, error) {
	for {
		n, err := unix.SendmsgN(fd, p, oob, nil, flags)
		if err == unix.EINTR {
			continue
		}
		return n, err
	}
}

// recvmsgCloexec receives without blocking and marks every received
// descriptor close-on-exec before anyone can fork: darwin has no
// MSG_CMSG_CLOEXEC, so the receive and the fcntl calls happen under
// syscall.ForkLock, which exec takes for writing. The lock is never held
// while waiting: the receive is MSG_DONTWAIT and EAGAIN goes back to the
// caller, which waits (poller or poll(2)) without the lock.
func recvmsgCloexec(fd int, p, oob []byte, flags int) (n, oobn, mflags int, err error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	for {
		n, oobn, mflags, _, err = unix.Recvmsg(fd, p, oob, flags|unix.MSG_DONTWAIT)
		if err == unix.EINTR {
			continue
		}
		break
	}
	if err != nil {
		return 0, 0, 0, err
	}
	rest := oob[:oobn]
	for {
		var level, typ int32
		var data []byte
		var ok bool
		level, typ, data, rest, ok = nextCmsg(rest)
		if !ok {
			break
		}
		if level != unix.SOL_SOCKET || typ != unix.SCM_RIGHTS {
			continue
		}
		for i := 0; i < len(data)/4; i++ {
			unix.CloseOnExec(fdAt(data, i))
		}
	}
	return n, oobn, mflags, nil
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

// socketpairCloexec creates a connected pair, both ends close-on-exec: darwin
// has no SOCK_CLOEXEC, so the pair is made and marked under the fork lock.
func socketpairCloexec(typ int) ([2]int, error) {
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

// sendmsg2 is one sendmsg(2) of two buffers (a frame header and its data)
// with optional control data, EINTR retried. It returns the raw errno.
func sendmsg2(fd int, p1, p2, oob []byte, flags int) (int, error) {
	bufs := [][]byte{p1, p2}
	for {
		n, err := unix.SendmsgBuffers(fd, bufs, oob, nil, flags)
		if err == unix.EINTR {
			continue
		}
		return n, err
	}
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
