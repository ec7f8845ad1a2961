//go:build dragonfly || freebsd || illumos || linux || netbsd || openbsd

package socket

import "golang.org/x/sys/unix"

// Open creates a socket of family and typ, close-on-exec (SOCK_CLOEXEC).
func Open(family, typ int) (int, error) {
	return unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
}

// Pair creates a connected pair of Unix sockets of type typ, both ends
// close-on-exec (SOCK_CLOEXEC).
func Pair(typ int) ([2]int, error) {
	return unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
}
