//go:build linux || freebsd || netbsd

package fdsend

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// On these systems the msghdr is built here and passed to the raw system
// call: it is never pointed at an address buffer, so the kernel returns no
// address and nothing is allocated for one, and an empty data buffer stays
// empty (x/sys/unix adds a dummy byte when there is control data).

// fullControlBuffer: the kernel truncates control data cleanly here, so a
// receive asks for room for just the descriptors wanted (plus oobExtra).
const fullControlBuffer = false

// needsDataByte: an empty message can carry descriptors on message sockets.
const needsDataByte = false

// recvmsgPolled is what a RawConn's Read callback calls: the descriptor is
// non-blocking when the runtime polls it, and a blocking one simply blocks.
func recvmsgPolled(fd int, p, oob []byte, flags int) (n, oobn, mflags int, err error) {
	return recvmsgCloexec(fd, p, oob, flags)
}

// sendmsg is one sendmsg(2) of one buffer, EINTR retried. It returns the
// raw errno.
func sendmsg(fd int, p, oob []byte, flags int) (int, error) {
	return sendmsg2(fd, p, nil, oob, flags)
}

// recvmsgCloexec is one recvmsg(2), EINTR retried, with every received
// descriptor close-on-exec atomically (MSG_CMSG_CLOEXEC). It returns the
// raw errno.
func recvmsgCloexec(fd int, p, oob []byte, flags int) (n, oobn, mflags int, err error) {
	// Built in place, not by a helper: a store through a pointer would make
	// the escape analysis move iov and the buffers to the heap.
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
		r, _, e := unix.Syscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags|unix.MSG_CMSG_CLOEXEC))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, 0, 0, e
		}
		return int(r), int(msg.Controllen), int(msg.Flags), nil
	}
}

// recvBlocking receives on a descriptor the runtime does not poll: a plain
// blocking call (a non-blocking socket returns EAGAIN).
func recvBlocking(fd int, p, oob []byte, flags int) (n, oobn, mflags int, err error) {
	return recvmsgCloexec(fd, p, oob, flags)
}

// socketpairCloexec creates a connected pair, both ends close-on-exec.
func socketpairCloexec(typ int) ([2]int, error) {
	return unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
}

// sendmsg2 is one sendmsg(2) of two buffers (a frame header and its data)
// with optional control data, EINTR retried. It returns the raw errno.
func sendmsg2(fd int, p1, p2, oob []byte, flags int) (int, error) {
	var msg unix.Msghdr
	var iov [2]unix.Iovec
	n := 0
	for _, p := range [2][]byte{p1, p2} {
		if len(p) > 0 {
			iov[n].Base = &p[0]
			iov[n].SetLen(len(p))
			n++
		}
	}
	if n > 0 {
		msg.Iov = &iov[0]
		msg.SetIovlen(n)
	}
	if len(oob) > 0 {
		msg.Control = &oob[0]
		msg.SetControllen(len(oob))
	}
	for {
		r, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags|unix.MSG_NOSIGNAL))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	}
}

// socketCloexec creates a close-on-exec SOCK_STREAM Unix socket.
func socketCloexec() (int, error) {
	return unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
}
