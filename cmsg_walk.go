//go:build darwin || illumos || openbsd

package fdsend

import "golang.org/x/sys/unix"

// What receives that cannot rely on the kernel alone need: descriptors to
// close when the library call failed after they arrived (libc interfaces),
// or to mark close-on-exec after the receive (no MSG_CMSG_CLOEXEC).

// closeRights closes every descriptor of every SCM_RIGHTS header in oob.
func closeRights(oob []byte) {
	forEachRight(oob, func(fd int) { unix.Close(fd) })
}

// forEachRight calls f for every descriptor of every SCM_RIGHTS header.
func forEachRight(oob []byte, f func(fd int)) {
	rest := oob
	for {
		var level, typ int32
		var data []byte
		var ok bool
		level, typ, data, rest, ok = nextCmsg(rest)
		if !ok {
			return
		}
		if level != unix.SOL_SOCKET || typ != unix.SCM_RIGHTS {
			continue
		}
		for i := 0; i < len(data)/4; i++ {
			if fd := fdAt(data, i); fd >= 0 {
				f(fd)
			}
		}
	}
}
