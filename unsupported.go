//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package fdsend

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"
	"time"
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

// ErrProtocol is wrapped by framing errors on systems that have them.
var ErrProtocol = errors.New("fdsend: protocol error")

// Default read limits of a Conn.
const (
	DefaultMaxMsgBytes = 64 << 20
	DefaultMaxMsgFiles = 16384
)

// Cred is the identity of a socket's peer.
type Cred struct{ PID, UID, GID int }

// PeerCred is not supported on this system.
func PeerCred(sock any) (Cred, error) { return Cred{}, errUnsupported }

// Conn is not supported on this system: every method returns an error
// wrapping errors.ErrUnsupported.
type Conn struct{ uc *net.UnixConn }

// NewConn wraps c; every call on the result fails on this system.
func NewConn(c *net.UnixConn) *Conn { return &Conn{uc: c} }

// Dial is not supported on this system.
func Dial(path string) (*Conn, error) { return nil, errUnsupported }

// SetReadLimits does nothing on this system.
func (c *Conn) SetReadLimits(maxBytes int64, maxFiles int) {}

// WriteMsg is not supported on this system.
func (c *Conn) WriteMsg(data []byte, files ...any) error { return errUnsupported }

// ReadMsg is not supported on this system.
func (c *Conn) ReadMsg() ([]byte, []*os.File, error) { return nil, nil, errUnsupported }

// PeerCred is not supported on this system.
func (c *Conn) PeerCred() (Cred, error) { return Cred{}, errUnsupported }

// Close closes the underlying socket.
func (c *Conn) Close() error {
	if c.uc == nil {
		return errUnsupported
	}
	return c.uc.Close()
}

// SetDeadline is not supported on this system.
func (c *Conn) SetDeadline(t time.Time) error { return errUnsupported }

// SetReadDeadline is not supported on this system.
func (c *Conn) SetReadDeadline(t time.Time) error { return errUnsupported }

// SetWriteDeadline is not supported on this system.
func (c *Conn) SetWriteDeadline(t time.Time) error { return errUnsupported }

// LocalAddr returns nil on this system.
func (c *Conn) LocalAddr() net.Addr { return nil }

// RemoteAddr returns nil on this system.
func (c *Conn) RemoteAddr() net.Addr { return nil }

// UnixConn returns the wrapped socket.
func (c *Conn) UnixConn() *net.UnixConn { return c.uc }

// ListenConfig says how Listen creates its socket and whom it accepts.
type ListenConfig struct {
	Mode      os.FileMode
	AllowUIDs []int
	AllowGIDs []int
}

// Listener is not supported on this system.
type Listener struct{}

// Listen is not supported on this system.
func Listen(path string) (*Listener, error) { return nil, errUnsupported }

// Listen is not supported on this system.
func (lc ListenConfig) Listen(path string) (*Listener, error) { return nil, errUnsupported }

// Accept is not supported on this system.
func (l *Listener) Accept() (*Conn, error) { return nil, errUnsupported }

// Addr returns nil on this system.
func (l *Listener) Addr() net.Addr { return nil }

// File is not supported on this system.
func (l *Listener) File() (*os.File, error) { return nil, errUnsupported }

// SyscallConn is not supported on this system.
func (l *Listener) SyscallConn() (syscall.RawConn, error) { return nil, errUnsupported }

// Close does nothing on this system.
func (l *Listener) Close() error { return errUnsupported }

// DupFD is not supported on this system.
func DupFD(file any, min int) (int, error) { return -1, errUnsupported }

// Dup is not supported on this system.
func Dup(file any) (*os.File, error) { return nil, errUnsupported }
