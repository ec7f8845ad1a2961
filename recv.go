package fdsend

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// RecvMsg receives one message on the Unix socket sock with one recvmsg(2),
// passing flags to it: up to len(buf) bytes of data into buf and up to
// len(fds) descriptors, whose numbers it stores in fds[:nfds]. It returns the
// kernel's msg flags (MSG_TRUNC, MSG_CTRUNC, ...). It allocates nothing when
// sock is a *net.UnixConn or an integer.
//
// The caller owns the descriptors stored in fds and must close them
// (CloseFDs does it in the fewest system calls). Each
// one is close-on-exec from the moment it exists (MSG_CMSG_CLOEXEC; on
// darwin FD_CLOEXEC is set under syscall.ForkLock before anyone can fork).
// Descriptors that arrived but do not fit in fds are closed and MSG_CTRUNC is
// set in msgFlags. Other control messages are skipped: a pidfd that arrives
// because the socket has SO_PASSPIDFD set is closed, and credentials
// (SO_PASSCRED) are ignored; the control buffer always has room for both,
// so they never push descriptors out of it.
// Truncation is not an error here: msgFlags tells it.
//
// When sock is a syscall.Conn its deadlines apply and a blocked receive waits
// in the network poller; an integer socket gets a blocking call (EAGAIN if it
// is non-blocking). Kernel errors are *os.SyscallError values naming
// "recvmsg". As with recvmsg(2), n == 0 with no descriptors on a stream socket
// means the peer has closed.
func RecvMsg(sock any, buf []byte, fds []int, flags int) (n, nfds, msgFlags int, err error) {
	if needsDataByte && len(buf) == 0 {
		return 0, 0, 0, &ArgError{Arg: "buf", Type: "[]byte", Err: errEmptyNeedsByte}
	}
	// The control buffer is on the stack, and Go clears it at each call:
	// a small one for the usual few descriptors.
	if size := oobLen(len(fds)); size <= oobSmall {
		var oobBuf [oobSmall]byte
		return recvMsgWith(sock, buf, fds, flags, oobBuf[:size])
	}
	var oobBuf [oobRecvMax]byte
	return recvMsgWith(sock, buf, fds, flags, oobBuf[:oobLen(len(fds))])
}

// oobSmall is the control buffer RecvMsg uses for a receive of a few
// descriptors (about 70 on Linux).
const oobSmall = 512

// recvMsgWith is RecvMsg with oob as its control buffer.
func recvMsgWith(sock any, buf []byte, fds []int, flags int, oob []byte) (n, nfds, msgFlags int, err error) {
	n, oobn, msgFlags, err := recvOn(sock, buf, oob, flags)
	if err != nil {
		return 0, 0, 0, err
	}
	nfds, dropped := takeFDs(oob[:oobn], fds)
	if dropped {
		msgFlags |= msgCtrunc
	}
	return n, nfds, msgFlags, nil
}

// recvOn performs the receive on sock: through its RawConn (rawIO) if it
// has one, else as a plain blocking call on the descriptor number.
func recvOn(sock any, buf, oob []byte, flags int) (n, oobn, mflags int, err error) {
	var rc syscall.RawConn
	if _, ok := sock.(*net.UnixConn); !ok {
		r, err := resolve(sock, "sock", -1)
		if err != nil {
			return 0, 0, 0, err
		}
		if r.rc == nil {
			n, oobn, mflags, err = recvInt(r.fd, buf, oob, flags)
			if err != nil {
				return 0, 0, 0, os.NewSyscallError("recvmsg", err)
			}
			return n, oobn, mflags, nil
		}
		rc = r.rc
	}
	return rawIO(sock, rc, false, buf, oob, flags)
}

// Recv receives one message on the Unix socket sock: up to len(buf) bytes
// into buf and up to maxFiles descriptors, returned as *os.File values that
// the caller owns and must close. Every one is close-on-exec. sock is any of
// the forms SendMsg accepts; deadlines apply as for RecvMsg.
//
// If the kernel cut the message short — more files than maxFiles, the
// receiver out of descriptors, or a datagram or seqpacket message longer than
// buf — Recv closes every descriptor that arrived and returns the data read
// with an error wrapping ErrTruncated that says which part was cut.
func Recv(sock any, buf []byte, maxFiles int) (n int, files []*os.File, err error) {
	if maxFiles < 0 {
		return 0, nil, &ArgError{Arg: "maxFiles", Type: "int", Err: fmt.Errorf("negative (%d): %w", maxFiles, syscall.EINVAL)}
	}
	var fdBuf [maxFilesPerMsg]int
	fds := fdBuf[:min(maxFiles, maxFilesPerMsg)]
	n, nfds, mflags, err := RecvMsg(sock, buf, fds, 0)
	if err != nil {
		return 0, nil, err
	}
	if mflags&(msgCtrunc|msgTrunc) != 0 {
		CloseFDs(fds[:nfds])
		var what string
		switch {
		case mflags&msgCtrunc != 0 && mflags&msgTrunc != 0:
			what = "files and data cut"
		case mflags&msgCtrunc != 0:
			what = fmt.Sprintf("files cut (more than maxFiles=%d, or the receiver ran out of descriptors); the %d that arrived were closed", maxFiles, nfds)
		default:
			what = fmt.Sprintf("data longer than the %d-byte buffer", len(buf))
			if nfds > 0 {
				what += fmt.Sprintf("; the %d files that arrived were closed", nfds)
			}
		}
		return n, nil, fmt.Errorf("%w: %s", ErrTruncated, what)
	}
	if nfds == 0 {
		return n, nil, nil
	}
	files = make([]*os.File, nfds)
	for i, fd := range fds[:nfds] {
		files[i] = os.NewFile(uintptr(fd), "fdsend-received")
	}
	return n, files, nil
}
