//go:build darwin || dragonfly || freebsd || illumos || netbsd || openbsd

package holder

import "golang.org/x/sys/unix"

// fdPath returns "": these systems have no portable way to read a
// descriptor's path, so files are described by their type alone.
func fdPath(fd int) string { return "" }

// otherFamily describes a socket of a family other than IP and Unix.
func otherFamily(sa unix.Sockaddr, typ int) string {
	return "socket (" + sockType(typ) + ")"
}
