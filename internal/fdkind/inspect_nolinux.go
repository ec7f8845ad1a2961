//go:build darwin || dragonfly || freebsd || illumos || netbsd || openbsd

package fdkind

import "golang.org/x/sys/unix"

// fdPath returns "": these systems have no portable way to read a
// descriptor's path, so files are described by their type alone.
func fdPath(fd int) string { return "" }

// otherFamily names the family of an address that is neither IP nor Unix.
func otherFamily(sa unix.Sockaddr) Family { return OtherFamily }
