//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package activation

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"

	"github.com/fdsend/fdsend/activation/internal/pidfd"
	"golang.org/x/sys/unix"
)

// loadInherited reads this process's LISTEN_* variables and adopts the
// descriptors they describe: each one is checked, made close-on-exec and
// wrapped in an *os.File. On error nothing is adopted and nothing is opened;
// the descriptors are left as they were.
func loadInherited() ([]entry, error) {
	v, err := parseVars(os.LookupEnv, os.Getpid(), pidfd.OwnID)
	if err != nil || v.n == 0 {
		return nil, err
	}
	fdsValue := strconv.Itoa(v.n)
	for i := 0; i < v.n; i++ {
		fd := listenStart + i
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil {
			return nil, &EnvError{Var: envFDs, Value: fdsValue, Err: fmt.Errorf("descriptor %d is not open: %w", fd, os.NewSyscallError("fcntl", err))}
		}
		if flags&unix.FD_CLOEXEC != 0 {
			// exec(2) closes every close-on-exec descriptor, so this one was
			// opened by this process (the Go runtime's poller, say), not
			// inherited: the launcher passed fewer than it said, or some
			// other code has adopted the descriptors already.
			return nil, &EnvError{Var: envFDs, Value: fdsValue, Err: fmt.Errorf("descriptor %d was not inherited (it is close-on-exec, so this process opened it): %w", fd, syscall.EBADF)}
		}
	}
	entries := make([]entry, v.n)
	for i := range entries {
		fd := listenStart + i
		// Cannot fail: the descriptor was just seen open, and nothing else
		// in this process knows its number.
		unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
		name := v.name(i)
		entries[i] = entry{
			fd:   fd,
			name: name,
			file: os.NewFile(uintptr(fd), "LISTEN_FDS:"+strconv.Itoa(fd)+":"+name),
		}
	}
	return entries, nil
}

// pollableCopy returns a new *os.File holding a close-on-exec duplicate of
// f's descriptor, put in non-blocking mode when the poller can wait on it so
// that the file is pollable. f is left open.
func pollableCopy(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, os.NewSyscallError("fcntl", derr)
	}
	var st unix.Stat_t
	if err := unix.Fstat(nfd, &st); err != nil {
		unix.Close(nfd)
		return nil, os.NewSyscallError("fstat", err)
	}
	if pollableType(uint32(st.Mode)) {
		if err := unix.SetNonblock(nfd, true); err != nil {
			unix.Close(nfd)
			return nil, os.NewSyscallError("fcntl", err)
		}
	}
	// os.NewFile registers a non-blocking descriptor with the poller.
	return os.NewFile(uintptr(nfd), f.Name()), nil
}

// pollableType reports whether the poller can wait on a file of this type:
// not on regular files and directories, and not on FIFOs where kqueue misses
// the last writer's close (Go issue 24164).
func pollableType(mode uint32) bool {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG, unix.S_IFDIR:
		return false
	case unix.S_IFIFO:
		return fifoPollable
	}
	return true
}

// fifoPollable says whether the poller handles FIFOs (kqueue on darwin does
// not report the last writer's close).
const fifoPollable = runtime.GOOS != "darwin"
