package holder

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

// otherFamily describes a socket of a family other than IP and Unix.
func otherFamily(sa unix.Sockaddr, typ int) string {
	switch sa.(type) {
	case *unix.SockaddrNetlink:
		return "netlink " + sockType(typ)
	case *unix.SockaddrLinklayer:
		return "packet " + sockType(typ)
	case *unix.SockaddrVM:
		return "vsock " + sockType(typ)
	}
	return "socket (" + sockType(typ) + ")"
}
