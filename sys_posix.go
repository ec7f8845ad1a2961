//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package fdsend

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"github.com/fdsend/fdsend/internal/socket"
	"github.com/fdsend/fdsend/internal/sockfile"
	"golang.org/x/sys/unix"
)

// The descriptor and socket calls the portable files use, on the systems
// that pass descriptors (SCM_RIGHTS). sys_stub.go has the same names for
// every other system.

// Values the portable files compare with.
const (
	errAgain      = unix.EAGAIN
	errBadFD      = unix.EBADF
	errProtoType  = unix.EPROTOTYPE
	msgDontwait   = unix.MSG_DONTWAIT
	msgCtrunc     = unix.MSG_CTRUNC
	msgTrunc      = unix.MSG_TRUNC
	sockStream    = unix.SOCK_STREAM
	sockSeqpacket = unix.SOCK_SEQPACKET
	sockDgram     = unix.SOCK_DGRAM
)

// isErrno reports whether err is a bare errno of a system call.
func isErrno(err error) bool {
	_, ok := err.(syscall.Errno)
	return ok
}

// closeFD closes a descriptor we own.
func closeFD(fd int) { unix.Close(fd) }

// closeOne closes a descriptor and returns the raw errno.
func closeOne(fd int) error { return unix.Close(fd) }

// sockType returns the SO_TYPE of a socket, as the raw errno on failure.
func sockType(fd int) (int, error) {
	return unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
}

// dupCloexec duplicates fd to a close-on-exec descriptor numbered min or
// above, returning the raw errno.
func dupCloexec(fd uintptr, min int) (int, error) {
	return unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, min)
}

// socketpairCloexec creates a connected pair, both ends close-on-exec.
func socketpairCloexec(typ int) ([2]int, error) { return socket.Pair(typ) }

// listenUnix makes the listening socket of ListenConfig.Listen with
// listenFD and hands it to package net (the file is removed by the
// Listener's Close, not by net's).
func listenUnix(path string, abstract bool, mode uint32) (*net.UnixListener, os.FileInfo, error) {
	fd, made, err := listenFD(path, abstract, mode)
	if err != nil {
		return nil, nil, err
	}
	f := os.NewFile(uintptr(fd), path)
	nl, err := net.FileListener(f)
	f.Close()
	if err != nil {
		if !abstract {
			os.Remove(path)
		}
		return nil, nil, err
	}
	ul := nl.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	return ul, made, nil
}

// listenFD makes the listening socket of ListenConfig.Listen: it clears
// path by the rule of internal/sockfile (unless abstract), creates a
// close-on-exec SOCK_STREAM socket, binds it with the file mode mode given
// before anyone can connect, checks the file is the one made, and listens.
// It returns the descriptor, which the caller owns, and the socket file as
// made (nil for an abstract address). Errors are final: *net.OpError values
// naming the address, or sockfile's.
func listenFD(path string, abstract bool, mode uint32) (int, os.FileInfo, error) {
	if !abstract {
		if err := sockfile.Clear(path); err != nil {
			return -1, nil, err
		}
	}
	fd, err := socket.Open(unix.AF_UNIX, unix.SOCK_STREAM)
	if err != nil {
		return -1, nil, &net.OpError{Op: "listen", Net: "unix", Err: os.NewSyscallError("socket", err)}
	}
	addr := &net.UnixAddr{Name: path, Net: "unix"}
	fail := func(err error) (int, os.FileInfo, error) {
		unix.Close(fd)
		return -1, nil, &net.OpError{Op: "listen", Net: "unix", Addr: addr, Err: err}
	}
	var made os.FileInfo
	if abstract {
		if err := unix.Bind(fd, &unix.SockaddrUnix{Name: "\x00" + path[1:]}); err != nil {
			return fail(os.NewSyscallError("bind", err))
		}
	} else {
		// Nobody can connect before listen(2). The mode is given to the
		// socket itself, never by a chmod of the path (which could follow
		// a symlink someone swapped in): see bindMode.
		umaskNote, err := bindMode(fd, path, mode)
		if err != nil {
			return fail(err)
		}
		made, err = checkOurSocket(path, mode, umaskNote)
		if err != nil {
			return fail(err)
		}
	}
	// The longest backlog the system allows: the kernel cuts what it is
	// asked for to its own maximum (net.core.somaxconn on Linux,
	// kern.ipc.somaxconn on the BSDs), where SOMAXCONN would keep 128 on
	// the BSDs even when the administrator allows more. A longer backlog
	// takes a burst of connections without making clients wait (EAGAIN).
	const backlog = 1<<16 - 1
	if err := unix.Listen(fd, backlog); err != nil {
		if !abstract {
			os.Remove(path)
		}
		return fail(os.NewSyscallError("listen", err))
	}
	return fd, made, nil
}

// removeSocketFile removes the socket file at path if it is still made
// (same device and inode); see sockfile.Remove.
func removeSocketFile(path string, made os.FileInfo) { sockfile.Remove(path, made) }

// checkOurSocket checks, right after bind, that path is the socket file this
// process made, with the permission bits mode, and returns it as it is (for
// sockfile.Remove). If it is a socket of ours with other bits (the process umask took
// some, umaskNote says why) it is removed; anything else is left alone: an
// error either way.
func checkOurSocket(path string, mode uint32, umaskNote error) (os.FileInfo, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || fi.Mode().Type() != os.ModeSocket || int(st.Uid) != os.Geteuid() {
		return nil, &os.PathError{Op: "listen", Path: path, Err: fmt.Errorf("replaced by someone else right after bind, left alone: %w", syscall.EEXIST)}
	}
	if got := uint32(st.Mode) & 0o7777; got != mode {
		os.Remove(path)
		why := umaskNote
		if why == nil {
			why = errors.New("the system did not apply it")
		}
		return nil, &os.PathError{Op: "listen", Path: path, Err: fmt.Errorf("socket file got mode %#o, not %#o, and was removed: %w", got, mode, why)}
	}
	return fi, nil
}
