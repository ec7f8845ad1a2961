//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package handoff

import (
	"fmt"
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
// read-only: flock needs no write access. Another user who can write in the
// directory may have put anything at path: a FIFO or a device, whose open
// could block for ever; a file of theirs with a lease on it, whose open
// would wait for the lease to break; a symlink or a second hard link to a
// file of ours, to make us truncate it; a file of theirs, to hold the lock
// for ever. So
// every open is non-blocking, follows no symlink and takes no controlling
// terminal, and what it opened is checked on the descriptor (never by path)
// before anything else is done with it: an existing lock file must be a
// regular file with one link, owned by us or by root.
func openLockFile(path string, mode os.FileMode) (f *os.File, created, writable bool, err error) {
	fd, err := openNonblock(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, mode)
	if err == nil {
		created, writable = true, true
	} else if err == unix.EEXIST {
		fd, err = openNonblock(path, unix.O_RDWR, 0)
		if err == nil {
			writable = true
		} else if err == unix.EACCES || err == unix.EPERM || err == unix.EROFS || err == unix.EWOULDBLOCK {
			// Not writable by us, or someone holds a read lease
			// (F_SETLEASE), which a blocking open would wait on for
			// the kernel's lease-break-time.
			fd, err = openNonblock(path, unix.O_RDONLY, 0)
		}
	}
	if err != nil {
		return nil, false, false, lockOpenError(path, err)
	}
	if !created {
		if err := trustLockFile(fd); err != nil {
			unix.Close(fd)
			return nil, false, false, fmt.Errorf("handoff: lock file %s: %w", path, err)
		}
	}
	// A regular file, checked: blocking mode is what os.File expects of it.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, false, false, &os.PathError{Op: "fcntl", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), created, writable, nil
}

// openNonblock opens path with flags and the flags that make the open safe
// on whatever is there: O_NONBLOCK, O_NOFOLLOW, O_NOCTTY and O_CLOEXEC. It
// returns the bare errno.
func openNonblock(path string, flags int, mode os.FileMode) (int, error) {
	flags |= unix.O_NONBLOCK | unix.O_NOFOLLOW | unix.O_NOCTTY | unix.O_CLOEXEC
	for {
		fd, err := unix.Open(path, flags, uint32(mode.Perm()))
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// lockOpenError describes a failed open of the lock file, naming what was
// found there when the errno says.
func lockOpenError(path string, err error) error {
	var what string
	switch err {
	case unix.ELOOP:
		what = "is a symbolic link"
	case unix.EISDIR:
		what = "is a directory"
	case unix.ENXIO, unix.EOPNOTSUPP:
		what = "is a socket or a device without a driver"
	case unix.EWOULDBLOCK:
		what = "is leased by another process (F_SETLEASE)"
	default:
		return fmt.Errorf("handoff: lock file: %w", &os.PathError{Op: "open", Path: path, Err: err})
	}
	return fmt.Errorf("handoff: lock file %s %s, not a regular file; left alone: %w", path, what, err)
}

// trustLockFile checks an existing lock file by its descriptor: a regular
// file with one link, owned by our effective user or root.
func trustLockFile(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return os.NewSyscallError("fstat", err)
	}
	if typ := st.Mode & unix.S_IFMT; typ != unix.S_IFREG {
		return fmt.Errorf("not a regular file (%s); left alone: %w", fileType(uint32(typ)), syscall.EPERM)
	}
	if st.Nlink != 1 {
		return fmt.Errorf("a regular file with %d links, not 1 (a hard link to another file?); left alone: %w", st.Nlink, syscall.EPERM)
	}
	if uid := int(st.Uid); uid != os.Geteuid() && uid != 0 {
		return fmt.Errorf("owned by uid %d, not by us or root; left alone: %w", uid, syscall.EPERM)
	}
	return nil
}

// fileType names a file type from the S_IFMT bits of a mode.
func fileType(typ uint32) string {
	switch typ {
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFLNK:
		return "a symbolic link"
	case unix.S_IFSOCK:
		return "a socket"
	}
	return fmt.Sprintf("file type %#o", typ)
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

// errUnsupported is nil where the package works.
var errUnsupported error
