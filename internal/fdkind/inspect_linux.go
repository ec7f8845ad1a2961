package fdkind

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// fdPath returns what /proc/self/fd says descriptor fd is ("/var/log/x",
// "pipe:[1234]", "anon_inode:[eventfd]"), "" if it cannot be read.
func fdPath(fd int) string {
	buf := make([]byte, 4096)
	n, err := unix.Readlink("/proc/self/fd/"+strconv.Itoa(fd), buf)
	if err != nil || n >= len(buf) {
		return ""
	}
	return string(buf[:n])
}

// otherFamily names the family of an address that is neither IP nor Unix.
func otherFamily(sa unix.Sockaddr) Family {
	switch sa.(type) {
	case *unix.SockaddrNetlink:
		return Netlink
	case *unix.SockaddrLinklayer:
		return LinkLayer
	case *unix.SockaddrVM:
		return Vsock
	}
	return OtherFamily
}
