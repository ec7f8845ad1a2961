//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package fdsend

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
)

// errUnsupported is returned by every call on a system without SCM_RIGHTS.
var errUnsupported = fmt.Errorf("fdsend: passing descriptors is not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)

// Send is not supported on this system; see the unix documentation.
func Send(sock any, msg []byte, files ...any) (int, error) { return 0, errUnsupported }

// SendMsg is not supported on this system.
func SendMsg(sock any, msg []byte, files []any, flags int) (int, error) {
	return 0, errUnsupported
}

// Recv is not supported on this system.
func Recv(sock any, buf []byte, maxFiles int) (int, []*os.File, error) {
	return 0, nil, errUnsupported
}

// RecvMsg is not supported on this system.
func RecvMsg(sock any, buf []byte, fds []int, flags int) (n, nfds, msgFlags int, err error) {
	return 0, 0, 0, errUnsupported
}

// Socketpair is not supported on this system.
func Socketpair(typ int) (*net.UnixConn, *net.UnixConn, error) {
	return nil, nil, errUnsupported
}
