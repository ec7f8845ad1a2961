package acttest

import (
	"os"
	"sort"
	"strconv"

	"golang.org/x/sys/unix"
)

// FD is one open descriptor of this process, with its flags.
type FD struct {
	FD       int
	Target   string // what /proc/self/fd says it points at
	Cloexec  bool
	Nonblock bool
}

// OpenFDs lists this process's open descriptors in order. It is for
// children, which report what they found rather than fail a test, so it
// panics if /proc/self/fd cannot be read.
func OpenFDs() []FD {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		panic(err)
	}
	var out []FD
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the directory's own descriptor, gone by now
		}
		fdfl, err1 := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		fl, err2 := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, FD{FD: fd, Target: target, Cloexec: fdfl&unix.FD_CLOEXEC != 0, Nonblock: fl&unix.O_NONBLOCK != 0})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FD < out[j].FD })
	return out
}
