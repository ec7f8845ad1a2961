//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package fdkind

import (
	"net/netip"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Inspect looks at the descriptor of f once and says what it is. f stays
// open and unchanged. The error is for a descriptor nothing could be learnt
// about (f closed, fstat failing); a socket step that fails after fstat is
// in Desc.Err instead.
func Inspect(f *os.File) (Desc, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return Desc{}, err
	}
	var d Desc
	var ierr error
	if err := rc.Control(func(fd uintptr) { d, ierr = inspectFD(int(fd)) }); err != nil {
		return Desc{}, err
	}
	return d, ierr
}

// inspectFD is Inspect for descriptor fd.
func inspectFD(fd int) (Desc, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return Desc{}, os.NewSyscallError("fstat", err)
	}
	d := Desc{Mode: uint32(st.Mode) & unix.S_IFMT}
	switch d.Mode {
	case unix.S_IFSOCK:
		d.Type = Socket
		inspectSocket(fd, &d)
		return d, nil
	case unix.S_IFREG:
		d.Type = Regular
	case unix.S_IFDIR:
		d.Type = Directory
	case unix.S_IFIFO:
		d.Type = FIFO
	case unix.S_IFCHR:
		d.Type = CharDevice
	case unix.S_IFBLK:
		d.Type = BlockDevice
	case unix.S_IFLNK:
		d.Type = Symlink
	case 0:
		d.Type = AnonInode
	default:
		d.Type = OtherType
	}
	d.Path = fdPath(fd)
	return d, nil
}

// inspectSocket fills in d's socket fields for the socket fd.
func inspectSocket(fd int, d *Desc) {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		d.Err = os.NewSyscallError("getsockopt", err)
		return
	}
	d.SockNum = typ
	switch typ {
	case unix.SOCK_STREAM:
		d.SockType = Stream
	case unix.SOCK_DGRAM:
		d.SockType = Datagram
	case unix.SOCK_SEQPACKET:
		d.SockType = SeqPacket
	case unix.SOCK_RAW:
		d.SockType = Raw
	default:
		d.SockType = OtherSock
	}
	if sa, err := unix.Getsockname(fd); err != nil {
		d.Err = os.NewSyscallError("getsockname", err)
	} else {
		d.Family = family(sa)
		d.Local = FormatAddr(sa)
	}
	if d.SockType == Stream || d.SockType == SeqPacket {
		d.Listening = listening(fd)
	}
	if !d.Listening {
		if sa, err := unix.Getpeername(fd); err == nil {
			d.Connected = true
			d.Peer = FormatAddr(sa)
		}
	}
}

// family names the family of a socket address.
func family(sa unix.Sockaddr) Family {
	switch sa.(type) {
	case *unix.SockaddrInet4:
		return IPv4
	case *unix.SockaddrInet6:
		return IPv6
	case *unix.SockaddrUnix:
		return Unix
	}
	return otherFamily(sa)
}

// listening reports whether the stream or seqpacket socket fd is in the
// listening state. Without SO_ACCEPTCONN it says no: guessing is worse.
func listening(fd int) bool {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	return err == nil && v != 0
}

// FormatAddr formats a socket address: "127.0.0.1:8080", "[::1]:8080",
// "[fe80::1%2]:8080" (an IPv6 zone by its number), "/run/x.sock",
// "@abstract"; "" for an unnamed Unix socket and for other families.
func FormatAddr(sa unix.Sockaddr) string {
	if ap, ok := AddrPort(sa); ok {
		return ap.String()
	}
	if a, ok := sa.(*unix.SockaddrUnix); ok {
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

// AddrPort returns the address and port of an IPv4 or IPv6 socket address,
// with an IPv6 zone by its number; ok is false for other families.
func AddrPort(sa unix.Sockaddr) (ap netip.AddrPort, ok bool) {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)), true
	case *unix.SockaddrInet6:
		ip := netip.AddrFrom16(a.Addr)
		if a.ZoneId != 0 {
			ip = ip.WithZone(strconv.Itoa(int(a.ZoneId)))
		}
		return netip.AddrPortFrom(ip, uint16(a.Port)), true
	}
	return netip.AddrPort{}, false
}
