//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package spawn

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// maxScan bounds the descriptor numbers cloexecScan tries one by one when the
// descriptor directory cannot be read.
const maxScan = 1 << 16

// cloexecScan makes every open descriptor numbered low or above
// close-on-exec, listing them in dir (/proc/self/fd, /dev/fd) or, if that
// cannot be read, trying every number up to the soft RLIMIT_NOFILE (at most
// maxScan).
func cloexecScan(low int, dir string) error {
	if names, err := readFDDir(dir); err == nil {
		for _, name := range names {
			fd, err := strconv.Atoi(name)
			if err != nil || fd < low {
				continue
			}
			setCloexec(fd)
		}
		return nil
	}
	var lim unix.Rlimit
	top := maxScan
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err == nil {
		if c := uint64(lim.Cur); c < uint64(top) {
			top = int(c)
		}
	}
	for fd := low; fd < top; fd++ {
		setCloexec(fd)
	}
	return nil
}

// readFDDir lists a descriptor directory. On FreeBSD without fdescfs,
// /dev/fd shows only 0, 1 and 2; a listing that short is treated as
// unreadable.
func readFDDir(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	if len(names) <= 3 {
		return nil, fmt.Errorf("%s lists only %d entries", dir, len(names))
	}
	return names, nil
}

// setCloexec sets FD_CLOEXEC on fd if it is open.
func setCloexec(fd int) {
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil || flags&unix.FD_CLOEXEC != 0 {
		return
	}
	unix.FcntlInt(uintptr(fd), unix.F_SETFD, flags|unix.FD_CLOEXEC)
}
