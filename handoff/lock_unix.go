//go:build linux || darwin || freebsd || netbsd || openbsd

package handoff

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// lock is a held flock(2) on the lock file of a hand-off point. The kernel
// releases it when the process dies, so a crashed upgrade never blocks the
// next one.
type lock struct {
	f        *os.File
	writable bool
}

// acquireLock takes the exclusive lock on path, creating the file with mode
// if it does not exist, and waits up to timeout for another holder. The file
// is never removed: removing a lock file races with its next user.
func acquireLock(path string, mode os.FileMode, timeout time.Duration) (*lock, error) {
	f, created, writable, err := openLockFile(path, mode)
	if err != nil {
		return nil, err
	}
	if created {
		// Whatever the umask, as for the socket.
		if err := f.Chmod(mode); err != nil {
			f.Close()
			return nil, err
		}
	}
	deadline := time.Now().Add(timeout)
	delay := time.Millisecond
	for {
		err := flock(f, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			f.Close()
			return nil, &os.PathError{Op: "flock", Path: path, Err: err}
		}
		left := time.Until(deadline)
		if left <= 0 {
			holder := lockHolder(f)
			f.Close()
			return nil, fmt.Errorf("handoff: another upgrade at this hand-off point holds %s%s and did not finish within %v: %w", path, holder, timeout, syscall.EWOULDBLOCK)
		}
		time.Sleep(min(delay, left))
		delay = min(2*delay, 20*time.Millisecond)
	}
	l := &lock{f: f, writable: writable}
	if writable {
		// For the error message of whoever waits next.
		if f.Truncate(0) == nil {
			f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		}
	}
	return l, nil
}

// openLockFile opens (or creates) the lock file, read-write if it may, else
// read-only: flock needs no write access. It never follows a symlink, and an
// existing lock file must be a regular file with one link, owned by us or by
// root — anything else may have been planted by another user to make us
// truncate a file of ours, or to hold the lock forever.
func openLockFile(path string, mode os.FileMode) (f *os.File, created, writable bool, err error) {
	const flags = syscall.O_NOFOLLOW | syscall.O_CLOEXEC
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|flags, mode)
	if err == nil {
		return f, true, true, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, false, false, err
	}
	f, err = os.OpenFile(path, os.O_RDWR|flags, 0)
	if err == nil {
		writable = true
	} else if errors.Is(err, fs.ErrPermission) {
		f, err = os.OpenFile(path, os.O_RDONLY|flags, 0)
	}
	if err != nil {
		return nil, false, false, err
	}
	if err := trustLockFile(f); err != nil {
		f.Close()
		return nil, false, false, fmt.Errorf("handoff: lock file %s: %w", path, err)
	}
	return f, false, writable, nil
}

// trustLockFile checks an existing lock file: a regular file with one link,
// owned by our effective user or root.
func trustLockFile(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if !st.Mode().IsRegular() || sys.Nlink != 1 {
		return fmt.Errorf("not a regular file with one link (%v, %d links): %w", st.Mode(), sys.Nlink, syscall.EPERM)
	}
	if uid := int(sys.Uid); uid != os.Geteuid() && uid != 0 {
		return fmt.Errorf("owned by uid %d, not by us or root: %w", uid, syscall.EPERM)
	}
	return nil
}

// lockHolder describes who holds the lock, from what its holder wrote.
func lockHolder(f *os.File) string {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	s := strings.TrimSpace(string(buf[:n]))
	if pid, err := strconv.Atoi(s); err == nil && pid > 0 {
		return " (process " + s + ")"
	}
	return ""
}

// release gives the lock up. Safe to call more than once.
func (l *lock) release() {
	if l == nil || l.f == nil {
		return
	}
	if l.writable {
		l.f.Truncate(0)
	}
	l.f.Close() // closing the last descriptor of the open file drops the flock
	l.f = nil
}

// flock runs flock(2) on f's descriptor, held open for the call.
func flock(f *os.File, how int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = unix.Flock(int(fd), how) }); err != nil {
		return err
	}
	return ferr
}

// supported is nil where the package works.
var supported error
