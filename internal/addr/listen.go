//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package addr

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/fdsend/fdsend/internal/fdkind"
	"github.com/fdsend/fdsend/internal/socket"
	"github.com/fdsend/fdsend/internal/sockfile"
	"golang.org/x/sys/unix"
)

// backlog is the listen(2) backlog asked for; the kernel caps it at its own
// limit (net.core.somaxconn on Linux). Connections made while no child is
// running wait here.
const backlog = 65535

// Listener is a socket opened by Listen.
type Listener struct {
	// File is the socket: close-on-exec and in blocking mode, not registered
	// with Go's network poller. The Listener owns it; Close closes it.
	File *os.File
	// Bound is the address the socket is bound to, as the kernel reports it:
	// "127.0.0.1:8080", "[::]:8080", "/run/app.sock", "@app". For port 0 it
	// shows the port the kernel picked.
	Bound string

	path string      // socket file to remove on Close, if still ours
	made os.FileInfo // that file as Listen made it
}

// Listen opens a socket of type typ (syscall.SOCK_STREAM, SOCK_DGRAM or
// SOCK_SEQPACKET) on a, binds it, and for stream and seqpacket sockets
// listens on it. The socket is close-on-exec and in blocking mode. IP stream
// sockets get SO_REUSEADDR. A bare port (Kind Any) is one IPv6 socket that
// also takes IPv4 connections, or an IPv4 socket where IPv6 is not
// available.
//
// For a Path address the parent directories are created (mode 0755) if
// missing. An existing socket file that no one listens on any more (connect
// is refused) is removed first; one that is still in use is an error wrapping
// EADDRINUSE, and a file that is not a socket an error wrapping EEXIST:
// unlike systemd-socket-activate, Listen never removes someone else's file.
//
// The caller owns the Listener and must Close it. Errors name the address
// and wrap the kernel's errno.
func Listen(a Addr, typ int) (*Listener, error) {
	switch typ {
	case syscall.SOCK_STREAM, syscall.SOCK_DGRAM, syscall.SOCK_SEQPACKET:
	default:
		return nil, &Error{Addr: a.String(), Err: fmt.Errorf("socket type %d: %w", typ, syscall.EINVAL)}
	}
	l, err := listen(a, typ)
	if err != nil {
		return nil, &Error{Addr: a.String(), Err: err}
	}
	return l, nil
}

func listen(a Addr, typ int) (*Listener, error) {
	var family int
	var sa unix.Sockaddr
	switch a.Kind {
	case Any:
		fd, err := newSocket(unix.AF_INET6, typ)
		if err == nil {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
				unix.Close(fd)
				return nil, os.NewSyscallError("setsockopt IPV6_V6ONLY", err)
			}
			return bindListen(fd, typ, &unix.SockaddrInet6{Port: int(a.Port)}, "")
		}
		if !errors.Is(err, unix.EAFNOSUPPORT) {
			return nil, err
		}
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: int(a.Port)}
	case IP:
		if a.IP.Is4() {
			family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: int(a.Port), Addr: a.IP.As4()}
		} else {
			zone, err := zoneID(a.IP.Zone())
			if err != nil {
				return nil, err
			}
			family, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: int(a.Port), Addr: a.IP.As16(), ZoneId: zone}
		}
	case Path:
		if err := prepareSocketPath(a.Name); err != nil {
			return nil, err
		}
		family, sa = unix.AF_UNIX, &unix.SockaddrUnix{Name: a.Name}
	case Abstract:
		if !abstractSupported {
			return nil, fmt.Errorf("abstract sockets exist only on Linux: %w", errors.ErrUnsupported)
		}
		family, sa = unix.AF_UNIX, &unix.SockaddrUnix{Name: "@" + a.Name}
	default:
		return nil, fmt.Errorf("invalid address: %w", syscall.EINVAL)
	}
	fd, err := newSocket(family, typ)
	if err != nil {
		return nil, err
	}
	path := ""
	if a.Kind == Path {
		path = a.Name
	}
	return bindListen(fd, typ, sa, path)
}

// bindListen binds fd to sa and listens; it owns fd and closes it on error.
func bindListen(fd, typ int, sa unix.Sockaddr, path string) (*Listener, error) {
	switch sa.(type) {
	case *unix.SockaddrInet4, *unix.SockaddrInet6:
		if typ == unix.SOCK_STREAM {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
				unix.Close(fd)
				return nil, os.NewSyscallError("setsockopt SO_REUSEADDR", err)
			}
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	l := &Listener{}
	if path != "" {
		if fi, err := sockfile.Stat(path); err == nil {
			l.path, l.made = path, fi
		}
	}
	if typ != unix.SOCK_DGRAM {
		if err := unix.Listen(fd, backlog); err != nil {
			unix.Close(fd)
			l.removePath()
			return nil, os.NewSyscallError("listen", err)
		}
	}
	bound, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		l.removePath()
		return nil, os.NewSyscallError("getsockname", err)
	}
	l.Bound = formatSockaddr(bound)
	l.File = os.NewFile(uintptr(fd), l.Bound)
	return l, nil
}

// Close closes the socket and, for a Path address, removes the socket file
// if it is still the one Listen created (same device and inode), so a file
// another process has put there since is left alone.
func (l *Listener) Close() error {
	// Compare and remove while our socket still holds its inode.
	l.removePath()
	return l.File.Close()
}

func (l *Listener) removePath() {
	if l.path == "" {
		return
	}
	sockfile.Remove(l.path, l.made)
	l.path = ""
}

// prepareSocketPath makes the parent directories of path and clears it for
// a new socket by the rule of internal/sockfile: a stale socket file is
// replaced, one in use or anything else is refused.
func prepareSocketPath(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return sockfile.Clear(path)
}

// zoneID turns an IPv6 zone (interface name or number) into a scope id.
func zoneID(zone string) (uint32, error) {
	if zone == "" {
		return 0, nil
	}
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n), nil
	}
	ifi, err := net.InterfaceByName(zone)
	if err != nil {
		return 0, fmt.Errorf("zone %q: %w", zone, err)
	}
	return uint32(ifi.Index), nil
}

// formatSockaddr formats a bound address the way Addr.String does. It is
// fdkind.FormatAddr but for three cases: an IPv6 zone is written by its
// interface's name where there is one (the form Parse reads), an unnamed
// Unix socket reads "@", and another family its Go type.
func formatSockaddr(sa unix.Sockaddr) string {
	if ap, ok := fdkind.AddrPort(sa); ok {
		if id, err := strconv.Atoi(ap.Addr().Zone()); err == nil {
			if ifi, err := net.InterfaceByIndex(id); err == nil {
				ap = netip.AddrPortFrom(ap.Addr().WithZone(ifi.Name), ap.Port())
			}
		}
		return ap.String()
	}
	if s := fdkind.FormatAddr(sa); s != "" {
		return s
	}
	if _, ok := sa.(*unix.SockaddrUnix); ok {
		return "@"
	}
	return fmt.Sprintf("%T", sa)
}

// Local returns the local address of the socket f, formatted as Bound is
// ("127.0.0.1:8080", "/run/app.sock", "@app"). f stays open and owned by
// the caller.
func Local(f *os.File) (string, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return "", err
	}
	var sa unix.Sockaddr
	var serr error
	if err := rc.Control(func(fd uintptr) { sa, serr = unix.Getsockname(int(fd)) }); err != nil {
		return "", err
	}
	if serr != nil {
		return "", os.NewSyscallError("getsockname", serr)
	}
	return formatSockaddr(sa), nil
}

// newSocket opens a close-on-exec, blocking socket.
func newSocket(family, typ int) (int, error) {
	fd, err := socket.Open(family, typ)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	return fd, nil
}

// Handover is what a process needs to take over a Listener after this one
// execs into it: the socket's descriptor number (the caller makes it
// survive the exec), the address, and the socket file Listen made, if any,
// by path, device and inode.
type Handover struct {
	FD    int    `json:"fd"`
	Bound string `json:"bound"`
	Path  string `json:"path,omitempty"`
	Dev   uint64 `json:"dev,omitempty"`
	Ino   uint64 `json:"ino,omitempty"`
}

// Handover describes l for the process this one execs into; fd is the
// socket's number.
func (l *Listener) Handover(fd int) Handover {
	h := Handover{FD: fd, Bound: l.Bound}
	if l.path != "" && l.made != nil {
		if st, ok := l.made.Sys().(*syscall.Stat_t); ok {
			h.Path, h.Dev, h.Ino = l.path, uint64(st.Dev), uint64(st.Ino)
		}
	}
	return h
}

// Adopt takes over a Listener a process opened before it exec'd into this
// one, as Handover described it. Its Close removes the socket file only if
// the file at the path is still the one Listen made then (device and
// inode); a file that is another by now is left alone, and so is a file
// Adopt cannot check.
func Adopt(h Handover) *Listener {
	l := &Listener{File: os.NewFile(uintptr(h.FD), h.Bound), Bound: h.Bound}
	if h.Path == "" {
		return l
	}
	if st, err := os.Lstat(h.Path); err == nil {
		if s, ok := st.Sys().(*syscall.Stat_t); ok && uint64(s.Dev) == h.Dev && uint64(s.Ino) == h.Ino {
			l.path, l.made = h.Path, st
		}
	}
	return l
}
