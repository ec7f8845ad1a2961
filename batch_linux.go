//go:build linux

package fdsend

import (
	"net"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr: a msghdr and the length the call set, padded
// to the msghdr's alignment as C pads it.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

// mmsgMax is the most messages one sendmmsg/recvmmsg takes (UIO_MAXIOV).
const mmsgMax = 1024

// batchState is the memory one SendMsgs or RecvMsgs call builds its
// headers in, kept for the next call (batchCache) so that a steady stream
// of batches allocates nothing. The RawConn callbacks are made once, with
// it.
type batchState struct {
	hdrs   []mmsghdr
	iovs   []unix.Iovec
	oob    []byte
	msgs   []Msg
	flags  int
	done   int   // messages sent, or received
	err    error // the system call's errno, raw
	sendFn func(uintptr) bool
	recvFn func(uintptr) bool
}

// batchCache keeps a few batchStates between calls: as many calls as it has
// slots run at once without allocating. Not a sync.Pool, which may drop what
// it is given at any time (and does so on purpose under the race detector).
var batchCache [4]atomic.Pointer[batchState]

// batchKeepMax bounds the control buffer of a batchState worth keeping.
const batchKeepMax = 1 << 18

func getBatch() *batchState {
	for i := range batchCache {
		if b := batchCache[i].Swap(nil); b != nil {
			return b
		}
	}
	b := new(batchState)
	b.sendFn, b.recvFn = b.sendStep, b.recvStep
	return b
}

// prepare builds one header per message, pointing at its data and at a
// control buffer of its own: the descriptors to send, or room for as many
// as its FDs hold plus what RecvMsg keeps room for.
func (b *batchState) prepare(msgs []Msg, flags int, send bool) {
	b.msgs, b.flags, b.done, b.err = msgs, flags, 0, nil
	size := 0
	for i := range msgs {
		if send {
			if len(msgs[i].FDs) > 0 {
				size += rightsSpace(len(msgs[i].FDs))
			}
		} else {
			size += oobLen(len(msgs[i].FDs))
		}
	}
	if cap(b.oob) < size {
		b.oob = make([]byte, size)
	}
	b.oob = b.oob[:size]
	if cap(b.hdrs) < len(msgs) {
		b.hdrs = make([]mmsghdr, len(msgs))
		b.iovs = make([]unix.Iovec, len(msgs))
	}
	b.hdrs, b.iovs = b.hdrs[:len(msgs)], b.iovs[:len(msgs)]
	off := 0
	for i := range msgs {
		m := &msgs[i]
		h := &b.hdrs[i]
		*h = mmsghdr{}
		if len(m.Data) > 0 {
			b.iovs[i].Base = &m.Data[0]
			b.iovs[i].SetLen(len(m.Data))
			h.hdr.Iov = &b.iovs[i]
			h.hdr.SetIovlen(1)
		}
		var oob []byte
		if send {
			if len(m.FDs) > 0 {
				oob = b.oob[off : off+putRightsHeader(b.oob[off:], len(m.FDs))]
				for j, fd := range m.FDs {
					putFD(oob, j, fd)
				}
			}
		} else {
			oob = b.oob[off : off+oobLen(len(m.FDs))]
		}
		if len(oob) > 0 {
			h.hdr.Control = &oob[0]
			h.hdr.SetControllen(len(oob))
		}
		off += len(oob)
	}
}

// release forgets the caller's buffers and keeps b for another call, if
// there is room and it is not too large.
func (b *batchState) release() {
	clear(b.hdrs)
	clear(b.iovs)
	b.msgs = nil
	if cap(b.oob) > batchKeepMax || cap(b.hdrs) > mmsgMax {
		return
	}
	for i := range batchCache {
		if batchCache[i].CompareAndSwap(nil, b) {
			return
		}
	}
}

// sendVlen is how many messages from b.done one sendmmsg takes: up to and
// including the first whose data is over rawTryMax, since only such a one
// can go in part on a stream socket, and then nothing may follow it in the
// same call.
func (b *batchState) sendVlen() int {
	end := min(len(b.hdrs), b.done+mmsgMax)
	for i := b.done; i < end; i++ {
		if len(b.msgs[i].Data) > rawTryMax {
			return i + 1 - b.done
		}
	}
	return end - b.done
}

// sendmmsg is one sendmmsg(2) of vlen messages from b.done, raw and
// non-blocking, or through the runtime and blocking.
func (b *batchState) sendmmsg(fd uintptr, vlen int, raw bool) (int, unix.Errno) {
	flags := uintptr(b.flags | unix.MSG_NOSIGNAL)
	if raw {
		flags |= unix.MSG_DONTWAIT
	}
	for {
		var r uintptr
		var e unix.Errno
		if raw {
			r, _, e = unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[b.done])), uintptr(vlen), flags, 0, 0)
		} else {
			r, _, e = unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[b.done])), uintptr(vlen), flags, 0, 0)
		}
		if e != unix.EINTR {
			return int(r), e
		}
	}
}

// sent records r messages sent from b.done. The last of them may have gone
// in part (only the last can: see sendVlen): its header is then moved past
// what went, without its descriptors, which went with its first byte, and
// the next call sends the rest, as a blocking sendmsg would have.
func (b *batchState) sent(r int) {
	for k := range r {
		i := b.done
		m := &b.msgs[i]
		h := &b.hdrs[i]
		m.N += int(h.len)
		if m.N < len(m.Data) && k == r-1 {
			b.iovs[i].Base = &m.Data[m.N]
			b.iovs[i].SetLen(len(m.Data) - m.N)
			h.hdr.Control = nil
			h.hdr.SetControllen(0)
			return
		}
		b.done++
	}
}

// count is how many messages went, whole or in part.
func (b *batchState) count() int {
	if b.done < len(b.msgs) && b.msgs[b.done].N > 0 {
		return b.done + 1
	}
	return b.done
}

// sendStep is the RawConn write callback: raw non-blocking sendmmsg calls
// until every message is sent, the socket is full (wait in the poller), or
// an error.
func (b *batchState) sendStep(fd uintptr) bool {
	for b.done < len(b.hdrs) && !b.cut() {
		r, e := b.sendmmsg(fd, b.sendVlen(), true)
		if e == unix.EAGAIN && b.flags&unix.MSG_DONTWAIT == 0 {
			return false
		}
		if e != 0 {
			b.fail(e)
			return true
		}
		b.sent(r)
	}
	return true
}

// cut reports whether a MSG_DONTWAIT batch must stop at a message that went
// in part: the caller sends the rest.
func (b *batchState) cut() bool {
	return b.flags&unix.MSG_DONTWAIT != 0 && b.done < len(b.msgs) && b.msgs[b.done].N > 0
}

// fail records the errno that stopped the batch; with MSG_DONTWAIT a full
// socket after some of it went is no error, as for sendmmsg(2).
func (b *batchState) fail(e unix.Errno) {
	if e == unix.EAGAIN && b.count() > 0 {
		return
	}
	b.err = e
}

// sendInt sends the batch on a descriptor given as a number: raw and
// non-blocking while the socket takes messages, a blocking call for one
// message when it is full.
func (b *batchState) sendInt(fd int) {
	for b.done < len(b.hdrs) && !b.cut() {
		vlen := b.sendVlen()
		r, e := b.sendmmsg(uintptr(fd), vlen, true)
		if e == unix.EAGAIN && b.flags&unix.MSG_DONTWAIT == 0 {
			r, e = b.sendmmsg(uintptr(fd), 1, false)
		}
		if e != 0 {
			b.fail(e)
			return
		}
		b.sent(r)
	}
}

// recvmmsg is one recvmmsg(2) into every header, MSG_WAITFORONE: raw and
// non-blocking, or through the runtime, blocking for the first message only.
// Without MSG_WAITFORONE a signal after some messages would leave an error
// pending on the socket.
func (b *batchState) recvmmsg(fd uintptr, raw bool) (int, unix.Errno) {
	flags := uintptr(b.flags | unix.MSG_WAITFORONE | unix.MSG_CMSG_CLOEXEC)
	if raw {
		flags |= unix.MSG_DONTWAIT
	}
	vlen := uintptr(min(len(b.hdrs), mmsgMax))
	for {
		var r uintptr
		var e unix.Errno
		if raw {
			r, _, e = unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), vlen, flags, 0, 0)
		} else {
			r, _, e = unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), vlen, flags, 0, 0)
		}
		if e != unix.EINTR {
			return int(r), e
		}
	}
}

// recvStep is the RawConn read callback: one raw non-blocking recvmmsg;
// nothing there, wait in the poller.
func (b *batchState) recvStep(fd uintptr) bool {
	r, e := b.recvmmsg(fd, true)
	if e == unix.EAGAIN && b.flags&unix.MSG_DONTWAIT == 0 {
		return false
	}
	if e != 0 {
		b.err = e
		return true
	}
	b.done = r
	return true
}

// received fills in the messages the kernel returned: their lengths and
// flags, and their descriptors taken out of the control buffers (those
// that do not fit closed). On a stream socket the kernel fills every
// header after the peer closed with an empty message; only the first is
// kept. fd is the socket, for the check of its type that this needs.
func (b *batchState) received(check func() (int, error)) {
	eof := -1
	for i := range b.done {
		m := &b.msgs[i]
		h := &b.hdrs[i]
		m.N = int(h.len)
		m.Flags = int(h.hdr.Flags) &^ unix.MSG_CMSG_CLOEXEC
		if h.hdr.Controllen > 0 {
			oob := unsafe.Slice(h.hdr.Control, h.hdr.Controllen)
			nfds, dropped := takeFDs(oob, m.FDs)
			m.NFDs = nfds
			if dropped {
				m.Flags |= unix.MSG_CTRUNC
			}
		}
		if eof < 0 && m.N == 0 && m.NFDs == 0 && m.Flags == 0 && len(m.Data) > 0 {
			eof = i // a read into room for data that gave nothing: the end?
		}
	}
	if eof >= 0 && eof < b.done-1 {
		if typ, err := check(); err == nil && typ == unix.SOCK_STREAM {
			// Past the end nothing can arrive; should something have,
			// it is not lost unseen: its descriptors are closed.
			for i := eof + 1; i < b.done; i++ {
				m := &b.msgs[i]
				CloseFDs(m.FDs[:m.NFDs])
				m.N, m.NFDs, m.Flags = 0, 0, 0
			}
			b.done = eof + 1
		}
	}
}

// sendMsgsBatched is SendMsgs for a *net.UnixConn or an integer socket.
func sendMsgsBatched(sock any, msgs []Msg, flags int) (int, error, bool) {
	uc, isUC := sock.(*net.UnixConn)
	fd, isInt, bad := intFD(sock)
	switch {
	case isUC && uc != nil:
	case isInt && !bad:
		// Only a Unix socket is sure to take a short message whole or not
		// at all (sendVlen relies on it); a number may be anything.
		if len(msgs) > 1 {
			if dom, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN); err == nil && dom != unix.AF_UNIX {
				return 0, nil, false
			}
		}
	default:
		return 0, nil, false // the loop reports what is wrong with sock
	}
	b := getBatch()
	defer b.release()
	b.prepare(msgs, flags, true)
	empty := false
	for i := range msgs {
		if len(msgs[i].Data) == 0 && len(msgs[i].FDs) > 0 {
			empty = true
		}
	}
	if isInt {
		if empty {
			if typ, err := sockType(fd); err == nil && typ == unix.SOCK_STREAM {
				return 0, emptyOnStream(msgs), true
			}
		}
		b.sendInt(fd)
		return b.count(), b.sendError(), true
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return 0, argError("sock", -1, sock, err), true
	}
	if empty {
		if typ, err := connType(uc); err == nil && typ == unix.SOCK_STREAM {
			return 0, emptyOnStream(msgs), true
		}
	}
	if werr := rc.Write(b.sendFn); werr != nil {
		closed := rc.Control(func(uintptr) {}) != nil
		return b.count(), batchError(b.done, connErr(sock, closed, werr)), true
	}
	return b.count(), b.sendError(), true
}

// sendError is the error that stopped a send, naming its message.
func (b *batchState) sendError() error {
	if b.err == nil {
		return nil
	}
	return batchError(b.done, os.NewSyscallError("sendmmsg", b.err))
}

// recvMsgsBatched is RecvMsgs for a *net.UnixConn or an integer socket.
func recvMsgsBatched(sock any, msgs []Msg, flags int) (int, error, bool) {
	uc, isUC := sock.(*net.UnixConn)
	fd, isInt, bad := intFD(sock)
	switch {
	case isUC && uc != nil:
	case isInt && !bad:
	default:
		return 0, nil, false
	}
	b := getBatch()
	defer b.release()
	b.prepare(msgs, flags, false)
	if isInt {
		r, e := b.recvmmsg(uintptr(fd), true)
		if e == unix.EAGAIN && flags&unix.MSG_DONTWAIT == 0 {
			r, e = b.recvmmsg(uintptr(fd), false)
		}
		if e != 0 {
			return 0, batchError(0, os.NewSyscallError("recvmmsg", e)), true
		}
		b.done = r
		b.received(func() (int, error) { return sockType(fd) })
		return b.done, nil, true
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return 0, argError("sock", -1, sock, err), true
	}
	if rerr := rc.Read(b.recvFn); rerr != nil {
		closed := rc.Control(func(uintptr) {}) != nil
		return 0, batchError(0, connErr(sock, closed, rerr)), true
	}
	if b.err != nil {
		return 0, batchError(0, os.NewSyscallError("recvmmsg", b.err)), true
	}
	b.received(func() (int, error) { return connType(uc) })
	return b.done, nil, true
}

// connType is the type of the socket uc. It has a RawConn of its own: one
// passed in would escape, and cost the callers an allocation every call.
func connType(uc *net.UnixConn) (typ int, err error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return 0, err
	}
	if cerr := rc.Control(func(fd uintptr) { typ, err = sockType(int(fd)) }); cerr != nil {
		return 0, cerr
	}
	return typ, err
}
