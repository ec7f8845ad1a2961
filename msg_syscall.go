//go:build dragonfly || freebsd || linux || netbsd

package fdsend

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// On these systems the msghdr is built here and passed to the raw system
// call: it is never pointed at an address buffer, so the kernel returns no
// address and nothing is allocated for one, and an empty data buffer stays
// empty (x/sys/unix adds a dummy byte when there is control data).

// needsDataByte: an empty message can carry descriptors on message sockets.
const needsDataByte = false

// sendmsg is one sendmsg(2) of one buffer, EINTR retried. It returns the
// raw errno.
func sendmsg(fd int, p, oob []byte, flags int) (int, error) {
	return sendmsg2(fd, p, nil, oob, flags)
}

// sendmsg2 is one sendmsg(2) of two buffers (a frame header and its data)
// with optional control data, EINTR retried. It returns the raw errno.
func sendmsg2(fd int, p1, p2, oob []byte, flags int) (int, error) {
	return sendmsgCall(fd, p1, p2, oob, flags, false)
}

// sendmsgCall is sendmsg2, made with unix.RawSyscall when raw (the call
// must then not sleep: see msg_raw_linux.go).
func sendmsgCall(fd int, p1, p2, oob []byte, flags int, raw bool) (int, error) {
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
		var r uintptr
		var e unix.Errno
		if raw {
			r, _, e = unix.RawSyscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags|msgNoSignal))
		} else {
			r, _, e = unix.Syscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags|msgNoSignal))
		}
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	}
}

// recvmsgRaw is one recvmsg(2), EINTR retried. It returns the raw errno.
func recvmsgRaw(fd int, p, oob []byte, flags int) (n, oobn, mflags int, err error) {
	return recvmsgCall(fd, p, oob, flags, false)
}

// recvmsgCall is recvmsgRaw, made with unix.RawSyscall when raw (the call
// must then not sleep: see msg_raw_linux.go).
func recvmsgCall(fd int, p, oob []byte, flags int, raw bool) (n, oobn, mflags int, err error) {
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
		var r uintptr
		var e unix.Errno
		if raw {
			r, _, e = unix.RawSyscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags))
		} else {
			r, _, e = unix.Syscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags))
		}
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, 0, 0, e
		}
		return int(r), int(msg.Controllen), int(msg.Flags), nil
	}
}
