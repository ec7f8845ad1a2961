//go:build darwin || dragonfly || freebsd || illumos || netbsd || openbsd

package fdsend

import (
	"os"

	"golang.org/x/sys/unix"
)

// bindMode binds the socket fd to the file path and gives the file the
// permission bits mode before anyone can connect (the caller has not called
// listen(2) yet). These systems' bind(2) takes the mode from the umask only,
// so it is set afterwards by fchmodat(2) with AT_SYMLINK_NOFOLLOW, which they
// all have: a symlink swapped in at path is not followed. There is no
// fallback to a chmod that follows links; an error is returned instead.
func bindMode(fd int, path string, mode uint32) (umaskNote, err error) {
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		return nil, os.NewSyscallError("bind", err)
	}
	if err := unix.Fchmodat(unix.AT_FDCWD, path, mode, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		removeIfOurs(path)
		return nil, os.NewSyscallError("fchmodat", err)
	}
	return nil, nil
}

// removeIfOurs removes the socket file at path if it is a socket owned by
// this process's user, after a failure that left it half made.
func removeIfOurs(path string) {
	var st unix.Stat_t
	if unix.Lstat(path, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK && int(st.Uid) == os.Geteuid() {
		os.Remove(path)
	}
}
