package fdsend

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// rawOp is one sendmsg(2) or recvmsg(2) made through a socket's RawConn.
// Its results are kept apart, in res: escape analysis does not tell one field
// of a variable from another, and an error read out of the struct that holds
// the caller's buffers would make them look as if they escaped.
type rawOp struct {
	write   bool // sendmsg, else recvmsg
	flags   int
	p, oob  []byte
	checked bool // sendmsg: files with an empty message were looked for
	polled  bool // the runtime polls the descriptor (a *net.UnixConn)
	res     *rawResult
}

// rawResult is what the last attempt of a rawOp gave.
type rawResult struct {
	n, oobn, mflags int
	err             error // the system call's, raw
}

// step is the RawConn callback: one attempt. It reports done unless the
// socket would block and the caller did not ask for MSG_DONTWAIT, in which
// case the RawConn waits in the poller and calls it again.
func (o *rawOp) step(fd uintptr) bool {
	r := o.res
	if o.write {
		if !o.checked {
			o.checked = true
			if r.err = checkEmptyOnStream(int(fd), o.p, o.oob); r.err != nil {
				return true
			}
		}
		r.n, r.err = sendmsgStep(int(fd), o.p, o.oob, o.flags, o.polled)
	} else {
		r.n, r.oobn, r.mflags, r.err = recvmsgStep(int(fd), o.p, o.oob, o.flags, o.polled)
	}
	return r.err != errAgain || o.flags&msgDontwait != 0
}

// rawIO performs one sendmsg (write) or recvmsg of p and oob with flags on
// sock through its RawConn: the one path by which Send and Recv reach a
// socket that has one, whatever its kind (*net.UnixConn, *os.File, any other
// syscall.Conn). sock is a *net.UnixConn, or rc is the RawConn resolve found
// for it. The RawConn holds the descriptor open for the call, EAGAIN waits in
// the poller unless flags has MSG_DONTWAIT, and the conn's deadlines apply.
// A *net.UnixConn's descriptor is always in the poller, so on Linux its calls
// are raw and MSG_DONTWAIT (msg_raw_linux.go): they never block in the
// kernel, even when its descriptor was put in blocking mode.
// Errors are mapped here, once:
//
//   - the socket closed, before the call or by a Close during it: an
//     *ArgError naming sock that matches net.ErrClosed and os.ErrClosed
//     (package os's RawConn says only "use of closed file", which matches
//     neither, so a RawConn that fails is asked with Control whether its
//     conn is closed);
//   - a deadline: the RawConn's error, unchanged (os.ErrDeadlineExceeded);
//   - an errno of the system call: an *os.SyscallError naming it; our own
//     errors (an empty message with files on a stream socket) unchanged.
func rawIO(sock any, rc syscall.RawConn, write bool, p, oob []byte, flags int) (n, oobn, mflags int, err error) {
	var res rawResult
	o := rawOp{write: write, flags: flags, p: p, oob: oob, res: &res, polled: true}
	closed := false
	if uc, ok := sock.(*net.UnixConn); ok {
		if uc == nil {
			return 0, 0, 0, argError("sock", -1, sock, errNil)
		}
		// Package net's RawConn, its type in the compiler's view: o.step
		// and the caller's buffers stay on the stack
		// (TestSendRecvMsgAllocFree).
		urc, uerr := uc.SyscallConn()
		if uerr != nil {
			return 0, 0, 0, argError("sock", -1, sock, uerr)
		}
		if write {
			err = urc.Write(o.step)
		} else {
			err = urc.Read(o.step)
		}
		closed = err != nil && urc.Control(func(uintptr) {}) != nil
	} else {
		// Through an interface the callback escapes, and with it what it
		// points at: run it on a copy on the heap with a control buffer
		// of its own, so that the caller's stays on its stack.
		h := &rawOp{write: write, flags: flags, p: p, oob: append([]byte(nil), oob...), res: new(rawResult)}
		if write {
			err = rc.Write(h.step)
		} else {
			err = rc.Read(h.step)
		}
		closed = err != nil && rc.Control(func(uintptr) {}) != nil
		res = *h.res
		copy(oob, h.oob[:res.oobn])
	}
	if err != nil {
		return 0, 0, 0, connErr(sock, closed, err)
	}
	if res.err != nil {
		if !isErrno(res.err) {
			return 0, 0, 0, res.err
		}
		if write {
			return 0, 0, 0, os.NewSyscallError("sendmsg", res.err)
		}
		return 0, 0, 0, os.NewSyscallError("recvmsg", res.err)
	}
	return res.n, res.oobn, res.mflags, nil
}

// connErr maps an error of sock's RawConn: a closed socket (closed is
// what Control said afterwards) is an *ArgError naming sock that matches
// net.ErrClosed and os.ErrClosed; anything else, a deadline included, is
// returned unchanged.
func connErr(sock any, closed bool, err error) error {
	if closed || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
		return argError("sock", -1, sock, closedError{err})
	}
	return err
}
