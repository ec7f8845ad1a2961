//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package fdkind

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Of reports what the descriptor of f is, without changing it.
func Of(f *os.File) (Info, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return Info{}, err
	}
	var info Info
	var ierr error
	if err := rc.Control(func(fd uintptr) { info, ierr = ofFD(int(fd)) }); err != nil {
		return Info{}, err
	}
	return info, ierr
}

// ofFD reports what descriptor fd is.
func ofFD(fd int) (Info, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return Info{}, os.NewSyscallError("fstat", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return Info{Desc: fileTypeDesc(uint32(st.Mode)), Kind: File}, nil
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return Info{}, os.NewSyscallError("getsockopt", err)
	}
	family := ""
	if sa, err := unix.Getsockname(fd); err == nil {
		switch sa.(type) {
		case *unix.SockaddrInet4:
			family = "IPv4"
		case *unix.SockaddrInet6:
			family = "IPv6"
		case *unix.SockaddrUnix:
			family = "Unix"
		}
	}
	switch typ {
	case unix.SOCK_DGRAM:
		return Info{Desc: sockDesc("", family, "datagram"), Kind: Packet}, nil
	case unix.SOCK_RAW:
		return Info{Desc: sockDesc("", family, "raw"), Kind: Packet}, nil
	case unix.SOCK_STREAM, unix.SOCK_SEQPACKET:
		name := "stream"
		if typ == unix.SOCK_SEQPACKET {
			name = "seqpacket"
		}
		if listening(fd) {
			return Info{Desc: sockDesc("listening", family, name), Kind: Listener}, nil
		}
		if _, err := unix.Getpeername(fd); err != nil {
			return Info{Desc: sockDesc("unconnected", family, name), Kind: File}, nil
		}
		return Info{Desc: sockDesc("connected", family, name), Kind: Conn}, nil
	}
	return Info{Desc: sockDesc("", family, "type "+strconv.Itoa(typ)), Kind: File}, nil
}

// sockDesc describes a socket: "a listening IPv4 stream socket", "an IPv6
// datagram socket", "a type 10 socket".
func sockDesc(state, family, typ string) string {
	var words []string
	for _, w := range []string{state, family, typ, "socket"} {
		if w != "" {
			words = append(words, w)
		}
	}
	article := "a"
	switch words[0][0] {
	case 'a', 'e', 'i', 'o', 'u', 'I':
		article = "an"
	}
	return article + " " + strings.Join(words, " ")
}

// listening reports whether the stream socket fd is in the listening state.
func listening(fd int) bool {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	if err == nil {
		return v != 0
	}
	// No SO_ACCEPTCONN: a listening socket has no peer, and listen(2) on it
	// again is harmless; but guessing is worse than saying no.
	return false
}

// fileTypeDesc describes a non-socket file type from st_mode.
func fileTypeDesc(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "a regular file"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFIFO:
		return "a pipe or FIFO"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFLNK:
		return "a symbolic link"
	case 0:
		return "an anonymous inode (eventfd, epoll, pidfd, ...)"
	}
	return fmt.Sprintf("a file of type %#o", mode&unix.S_IFMT)
}
