package fdsend

import "golang.org/x/sys/unix"

// passesCredentials reports whether receives on the socket fd carry a
// credentials or pidfd header besides the descriptors (SO_PASSCRED,
// SO_PASSPIDFD), which a Conn's control buffer must then make room for.
func passesCredentials(fd int) bool {
	for _, opt := range []int{unix.SO_PASSCRED, unix.SO_PASSPIDFD} {
		if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, opt); err == nil && v != 0 {
			return true
		}
	}
	return false
}
