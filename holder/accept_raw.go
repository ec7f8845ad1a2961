//go:build linux || freebsd

package holder

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// rawAccept says whether the accept loop takes connections as bare
// descriptors (acceptRaw) here.
const rawAccept = true

// acceptRaw accepts one connection on the listening socket lfd, without
// waiting: a close-on-exec descriptor that is not registered with the
// runtime's poller, so that a connection refused at once costs an accept,
// a getsockopt and a close, and nothing more.
func acceptRaw(lfd int) (int, error) {
	for {
		fd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// closeRaw closes a descriptor acceptRaw returned.
func closeRaw(fd int) { syscall.Close(fd) }
