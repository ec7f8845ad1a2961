package fdsend

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// Send sends msg and the descriptors of files over the Unix socket sock in
// one sendmsg(2), and returns how many bytes of msg were written. It is
// SendMsg with no flags.
//
// The sender keeps its files: the receiver gets new descriptors for the same
// open files, and the caller may close its own as soon as Send returns.
func Send(sock any, msg []byte, files ...any) (int, error) {
	return SendMsg(sock, msg, files, 0)
}

// SendMsg sends msg and the descriptors of files over the Unix socket sock in
// one sendmsg(2) with the given flags (MSG_NOSIGNAL is always added where the
// system has it), and returns how many bytes of msg were written. On a stream
// socket that may be fewer than len(msg); the files travel with the first
// byte.
//
// sock and each file may be an *os.File, a syscall.Conn, a value with an
// Fd() uintptr method, or an int, int32, int64 or uintptr descriptor. Files
// and sock given as *os.File or syscall.Conn are held open through their
// RawConn for the whole call, so a concurrent Close cannot recycle the
// number. When sock is a syscall.Conn its deadlines apply and a blocked send
// waits in the network poller; other socks get a blocking call.
//
// At most 253 files fit in one message; more is an error before any system
// call, as are files with an empty msg on a stream socket (the kernel would
// drop them silently). Kernel errors are *os.SyscallError values naming
// "sendmsg"; errors.Is(err, syscall.ENOTSOCK) and the like work. The caller
// keeps ownership of every file.
func SendMsg(sock any, msg []byte, files []any, flags int) (int, error) {
	if len(files) > maxFilesPerMsg {
		return 0, fmt.Errorf("fdsend: files: %d files, at most %d fit in one message: %w", len(files), maxFilesPerMsg, syscall.EINVAL)
	}
	if needsDataByte && len(msg) == 0 && len(files) > 0 {
		return 0, &ArgError{Arg: "msg", Type: "[]byte", Err: errEmptyNeedsByte}
	}
	if !allInts(files) {
		return sendHeld(sock, msg, files, flags)
	}
	var oobBuf [oobSendMax]byte
	var oob []byte
	if len(files) > 0 {
		oob = oobBuf[:putRightsHeader(oobBuf[:], len(files))]
		for i, f := range files {
			fd, _, bad := intFD(f)
			if bad {
				return 0, argError("files", i, f, errBadFD)
			}
			putFD(oob, i, fd)
		}
	}
	return sendOn(sock, msg, oob, flags)
}

// allInts reports whether every file is a plain integer, so no descriptor
// needs to be held through a RawConn.
func allInts(files []any) bool {
	for _, f := range files {
		if _, isInt, _ := intFD(f); !isInt {
			return false
		}
	}
	return true
}

// sendHeld resolves every file, holds each one that has a RawConn open for
// the duration of the send, and sends. Its closures escape, so its control
// buffer is allocated here rather than taken from the caller's stack.
func sendHeld(sock any, msg []byte, files []any, flags int) (int, error) {
	var n int
	err := holdFDs(files, func(fds []int) error {
		oob := make([]byte, rightsSpace(len(fds)))
		putRightsHeader(oob, len(fds))
		for i, fd := range fds {
			putFD(oob, i, fd)
		}
		var err error
		n, err = sendOn(sock, msg, oob, flags)
		return err
	})
	return n, err
}

// holdFDs resolves every file to its descriptor number and calls fn with
// them while each file that has a RawConn is held open by its Control (nested
// calls), so that no number can be closed and reused before fn returns. A
// file that cannot be resolved, or is closed, is an *ArgError naming
// files[i], and fn is not called.
func holdFDs(files []any, fn func(fds []int) error) error {
	if len(files) == 0 {
		return fn(nil)
	}
	res := make([]resolved, len(files))
	for i, f := range files {
		r, err := resolve(f, "files", i)
		if err != nil {
			return err
		}
		r.v = f
		res[i] = r
	}
	fds := make([]int, len(files))
	var hold func(i int) error
	hold = func(i int) error {
		for ; i < len(res); i++ {
			if res[i].rc == nil {
				fds[i] = res[i].fd
				continue
			}
			j := i
			var inner error
			cerr := res[j].rc.Control(func(fd uintptr) {
				fds[j] = int(fd)
				inner = hold(j + 1)
			})
			if cerr != nil {
				return argError("files", j, res[j].v, closedError{cerr})
			}
			return inner
		}
		return fn(fds)
	}
	return hold(0)
}

// sendOn performs the send on sock: through its RawConn (rawIO) if it has
// one, else as a plain blocking call on the descriptor number.
func sendOn(sock any, msg, oob []byte, flags int) (int, error) {
	var rc syscall.RawConn
	if _, ok := sock.(*net.UnixConn); !ok {
		r, err := resolve(sock, "sock", -1)
		if err != nil {
			return 0, err
		}
		if r.rc == nil {
			if err := checkEmptyOnStream(r.fd, msg, oob); err != nil {
				return 0, err
			}
			n, err := sendInt(r.fd, msg, oob, flags)
			if err != nil {
				return 0, os.NewSyscallError("sendmsg", err)
			}
			return n, nil
		}
		rc = r.rc
	}
	n, _, _, err := rawIO(sock, rc, true, msg, oob, flags)
	return n, err
}

// errEmptyOnStream is the cause of the error for files with an empty message
// on a stream socket.
var errEmptyOnStream = fmt.Errorf("files need at least one byte of msg on a stream socket (the kernel would drop them): %w", syscall.EINVAL)

// errEmptyNeedsByte is the cause of the error for an empty message with
// files, or an empty receive buffer, where the system's message calls would
// add a byte of their own (darwin, OpenBSD).
var errEmptyNeedsByte = fmt.Errorf("must not be empty on this system (its libc interface adds a dummy byte): %w", syscall.EINVAL)

// checkEmptyOnStream refuses files with an empty message on a SOCK_STREAM
// socket. It costs a getsockopt only in that case.
func checkEmptyOnStream(fd int, msg, oob []byte) error {
	if len(msg) > 0 || len(oob) == 0 {
		return nil
	}
	typ, err := sockType(fd)
	if err != nil {
		return os.NewSyscallError("getsockopt", err)
	}
	if typ == sockStream {
		return &ArgError{Arg: "msg", Type: "[]byte", Err: errEmptyOnStream}
	}
	return nil
}
