// Package sockfile holds the one rule fdsend follows for the file of a Unix
// socket: when an existing file at a path may be replaced by a new socket
// (Clear), and when a socket file may be removed on close (Remove, given
// the file as it was when it was made). The root package's Listener,
// handoff's successor and the command's socket addresses all use it.
package sockfile

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
	"time"
)

// probeTimeout bounds a probe. Connecting to a Unix socket does not wait
// for the peer (a full backlog fails at once), so this is only a backstop.
const probeTimeout = time.Second

// Clear makes path free for a new socket. Nothing there is fine. A socket
// file that no process serves (connecting is refused) is stale and removed.
// A socket some process serves, of any socket type, is refused with an
// error wrapping syscall.EADDRINUSE; so is one whose backlog is full. A path
// that holds anything but a socket is refused and left alone
// (syscall.EEXIST). When it cannot tell (the probe is not permitted, say),
// it removes nothing and returns an error wrapping the probe's. Errors are
// *fs.PathError values with Op "listen".
func Clear(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode().Type() != fs.ModeSocket {
		return &fs.PathError{Op: "listen", Path: path, Err: fmt.Errorf("exists and is not a socket (%s), left alone: %w", st.Mode().Type(), syscall.EEXIST)}
	}
	inUse, err := probe(path)
	if err != nil {
		return &fs.PathError{Op: "listen", Path: path, Err: fmt.Errorf("cannot tell whether it is in use: %w", err)}
	}
	if inUse {
		return &fs.PathError{Op: "listen", Path: path, Err: fmt.Errorf("a process is serving on it: %w", syscall.EADDRINUSE)}
	}
	// Remove only the file probed: another instance starting at the same
	// moment may have replaced it with its own live socket meanwhile.
	return Remove(path, st)
}

// probe connects to path with each socket type in turn (a socket of another
// type answers EPROTOTYPE whether or not anyone serves it) and reports
// whether some process serves it: a connection made, or a full backlog
// (EAGAIN), means in use; a refused one means stale. The net package
// connects without blocking, so a full backlog fails at once.
func probe(path string) (inUse bool, err error) {
	for _, network := range []string{"unix", "unixpacket", "unixgram"} {
		c, err := net.DialTimeout(network, path, probeTimeout)
		switch {
		case err == nil:
			c.Close()
			return true, nil
		case errors.Is(err, syscall.EAGAIN):
			return true, nil
		case errors.Is(err, syscall.ECONNREFUSED):
			return false, nil
		case errors.Is(err, syscall.EPROTOTYPE), errors.Is(err, syscall.EPROTONOSUPPORT), errors.Is(err, syscall.ESOCKTNOSUPPORT):
			continue
		}
		return false, err
	}
	// No socket type can connect to it: nothing serves it.
	return false, nil
}

// Stat describes the socket file at path as it is now, not following a
// symlink, for a later Remove.
func Stat(path string) (os.FileInfo, error) { return os.Lstat(path) }

// Remove removes path if it is still the file made describes (same device
// and inode); a file that is gone or another one (a successor that took the
// path over keeps its socket) is no error. Call it while the socket is
// still open, so that its inode number cannot have been given to a new file.
func Remove(path string, made os.FileInfo) error {
	if made == nil {
		return nil
	}
	now, err := os.Lstat(path)
	if err != nil || !os.SameFile(now, made) {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
