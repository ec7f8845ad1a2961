//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package holder

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// describe says what the descriptor of f is: for a socket its protocol,
// whether it listens, and its addresses ("tcp listener 127.0.0.1:8080",
// "udp 0.0.0.0:53", "unix stream listener /run/x.sock", "tcp connected
// 10.0.0.1:5000 -> 10.0.0.2:80"); for anything else its type and, where the
// system tells it, its path ("file /var/log/x", "pipe", "character device
// /dev/null"). f stays open.
func describe(f *os.File) string {
	rc, err := f.SyscallConn()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	var s string
	if err := rc.Control(func(fd uintptr) { s = describeFD(int(fd)) }); err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return s
}

// describeFD describes descriptor fd.
func describeFD(fd int) string {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "unknown (fstat: " + err.Error() + ")"
	}
	path := fdPath(fd)
	withPath := func(what string) string {
		if path == "" {
			return what
		}
		return what + " " + path
	}
	switch uint32(st.Mode) & unix.S_IFMT {
	case unix.S_IFSOCK:
		return describeSocket(fd)
	case unix.S_IFREG:
		return withPath("file")
	case unix.S_IFDIR:
		return withPath("directory")
	case unix.S_IFIFO:
		if path == "" || strings.HasPrefix(path, "pipe:") {
			return "pipe"
		}
		return withPath("fifo")
	case unix.S_IFCHR:
		return withPath("character device")
	case unix.S_IFBLK:
		return withPath("block device")
	case 0:
		// Linux anonymous inodes read "anon_inode:[eventfd]" or
		// "anon_inode:inotify".
		if k, ok := strings.CutPrefix(path, "anon_inode:"); ok {
			return strings.Trim(k, "[]")
		}
		return withPath("anonymous inode")
	}
	return withPath(fmt.Sprintf("file of type %#o", uint32(st.Mode)&unix.S_IFMT))
}

// describeSocket describes the socket fd.
func describeSocket(fd int) string {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return "socket (" + err.Error() + ")"
	}
	local, lerr := unix.Getsockname(fd)
	var proto string
	switch local.(type) {
	case *unix.SockaddrInet4, *unix.SockaddrInet6:
		switch typ {
		case unix.SOCK_STREAM:
			proto = "tcp"
		case unix.SOCK_DGRAM:
			proto = "udp"
		case unix.SOCK_SEQPACKET:
			proto = "sctp"
		case unix.SOCK_RAW:
			proto = "raw ip"
		default:
			proto = "ip socket of type " + strconv.Itoa(typ)
		}
	case *unix.SockaddrUnix:
		proto = "unix " + sockType(typ)
	default:
		if lerr != nil {
			return "socket (" + sockType(typ) + ", getsockname: " + lerr.Error() + ")"
		}
		return otherFamily(local, typ)
	}
	var b strings.Builder
	b.WriteString(proto)
	if (typ == unix.SOCK_STREAM || typ == unix.SOCK_SEQPACKET) && listening(fd) {
		b.WriteString(" listener")
		if s := formatAddr(local); s != "" {
			b.WriteString(" " + s)
		}
		return b.String()
	}
	peer, perr := unix.Getpeername(fd)
	if perr == nil {
		b.WriteString(" connected")
	}
	if s := formatAddr(local); s != "" {
		b.WriteString(" " + s)
	}
	if perr == nil {
		if s := formatAddr(peer); s != "" {
			b.WriteString(" -> " + s)
		}
	}
	return b.String()
}

// sockType names a socket type.
func sockType(typ int) string {
	switch typ {
	case unix.SOCK_STREAM:
		return "stream"
	case unix.SOCK_DGRAM:
		return "dgram"
	case unix.SOCK_SEQPACKET:
		return "seqpacket"
	case unix.SOCK_RAW:
		return "raw"
	}
	return "type " + strconv.Itoa(typ)
}

// listening reports whether a stream socket is in the listening state.
func listening(fd int) bool {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	return err == nil && v != 0
}

// formatAddr formats a socket address: "127.0.0.1:8080", "[::1]:8080",
// "/run/x.sock", "@abstract"; "" for an unnamed Unix socket.
func formatAddr(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrInet6:
		ip := netip.AddrFrom16(a.Addr)
		if a.ZoneId != 0 {
			ip = ip.WithZone(strconv.Itoa(int(a.ZoneId)))
		}
		return netip.AddrPortFrom(ip, uint16(a.Port)).String()
	case *unix.SockaddrUnix:
		// An unnamed socket reads "" here, or "@" on Linux (x/sys takes
		// its all-zero path for an abstract one).
		if a.Name == "" || a.Name == "@" {
			return ""
		}
		if a.Name[0] == 0 || a.Name[0] == '@' {
			return "@" + a.Name[1:]
		}
		return a.Name
	}
	return ""
}
