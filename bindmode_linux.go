package fdsend

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// bindMode binds the socket fd to the file path so that the file has the
// permission bits mode from the moment it exists: nothing is ever changed by
// path, so no file another user swaps in at path can have its mode changed.
//
// Linux's bind(2) gives the new socket file the mode of the socket's own inode
// less the umask. bindMode sets the former with fchmod on the descriptor and
// clears the latter on a thread of its own: after unshare(CLONE_FS) the
// thread has its own umask, so other goroutines' files keep the process's.
// The goroutine ends locked to that thread, and the runtime then ends the
// thread instead of reusing it.
//
// If the thread cannot get a umask of its own, the bind happens under the
// process's umask and umaskNote says why; the caller checks the mode the
// file got.
func bindMode(fd int, path string, mode uint32) (umaskNote, err error) {
	type result struct{ note, err error }
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: see above.
		note, err := bindOnOwnThread(fd, path, mode)
		done <- result{note, err}
	}()
	r := <-done
	return r.note, r.err
}

// bindOnOwnThread is bindMode's work, on a thread locked for it alone.
func bindOnOwnThread(fd int, path string, mode uint32) (umaskNote, err error) {
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		umaskNote = fmt.Errorf("no umask of its own for the bind (unshare CLONE_FS: %w), so the process umask applied", err)
	} else {
		unix.Umask(0)
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return umaskNote, os.NewSyscallError("fchmod", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		return umaskNote, os.NewSyscallError("bind", err)
	}
	return umaskNote, nil
}
