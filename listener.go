package fdsend

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// ListenConfig says how Listen creates its socket and whom it accepts.
type ListenConfig struct {
	// Mode is the permission bits of the socket file; 0 means 0600. It is
	// applied whatever the umask, before anyone can connect, and never by a
	// chmod that could follow a symlink swapped in at the path: on Linux the
	// file is created with it (on a thread whose umask is cleared), elsewhere
	// it is set with fchmodat(AT_SYMLINK_NOFOLLOW). Where neither can be done
	// (a sandbox that refuses unshare(CLONE_FS), and a umask that takes bits
	// of Mode) Listen fails and leaves no file.
	Mode os.FileMode
	// AllowUIDs and AllowGIDs, if either is non-empty, restrict Accept to
	// peers whose UID or primary GID is listed, checked with PeerCred before
	// any byte is read. A refused peer is closed.
	AllowUIDs []int
	AllowGIDs []int
}

// Listener accepts Conns on a SOCK_STREAM Unix socket.
type Listener struct {
	ul      *net.UnixListener
	cfg     ListenConfig
	path    string            // "" for an abstract address
	made    os.FileInfo       // the socket file as Listen made it; nil for abstract
	refused func(Cred, error) // test hook: told about each refused peer

	removeOnce sync.Once
}

// Listen listens on the Unix socket path with the default ListenConfig:
// mode 0600, every peer accepted.
func Listen(path string) (*Listener, error) {
	return ListenConfig{}.Listen(path)
}

// Listen creates a listening Unix socket at path, or on Linux at the
// abstract address "@name" (elsewhere "@name" is an ordinary file name). A socket file left behind by a listener that is gone is
// replaced; one that still has a listener is refused (EADDRINUSE), and a path
// that holds anything but a socket is refused and left alone (EEXIST). The
// socket is close-on-exec and owned by the Listener; Close removes the file
// if it is still the one this Listener created.
func (lc ListenConfig) Listen(path string) (*Listener, error) {
	if path == "" {
		return nil, &ArgError{Arg: "path", Type: "string", Err: fmt.Errorf("empty: %w", syscall.EINVAL)}
	}
	mode := lc.Mode.Perm()
	if mode == 0 {
		mode = 0o600
	}
	abstract := abstractAddrs && strings.HasPrefix(path, "@")
	if (len(lc.AllowUIDs) > 0 || len(lc.AllowGIDs) > 0) && !peerCredSupported {
		return nil, &ArgError{Arg: "lc", Type: "ListenConfig", Err: fmt.Errorf("an allow-list needs peer credentials, which this system does not give: %w", errors.ErrUnsupported)}
	}
	ul, made, err := listenUnix(path, abstract, uint32(mode))
	if err != nil {
		return nil, err
	}
	return &Listener{ul: ul, cfg: lc, path: path, made: made}, nil
}

// Accept waits for a peer and returns a Conn for it. With an allow-list, a
// peer whose UID and GID are both unlisted is closed before any byte is read
// and Accept goes on waiting. Close unblocks it with an error wrapping
// net.ErrClosed.
func (l *Listener) Accept() (*Conn, error) {
	for {
		uc, err := l.ul.AcceptUnix()
		if err != nil {
			return nil, err
		}
		if len(l.cfg.AllowUIDs) == 0 && len(l.cfg.AllowGIDs) == 0 {
			return NewConn(uc), nil
		}
		cred, err := PeerCred(uc)
		if err == nil && (slices.Contains(l.cfg.AllowUIDs, cred.UID) || slices.Contains(l.cfg.AllowGIDs, cred.GID)) {
			return NewConn(uc), nil
		}
		uc.Close()
		if l.refused != nil {
			l.refused(cred, err)
		}
	}
}

// Addr returns the listener's address.
func (l *Listener) Addr() net.Addr { return l.ul.Addr() }

// File returns a duplicate of the listening socket (close-on-exec), for
// handing it to another process; the caller owns it.
func (l *Listener) File() (*os.File, error) { return l.ul.File() }

// SyscallConn gives access to the listening socket (so a Listener can be
// passed to Send as a file).
func (l *Listener) SyscallConn() (syscall.RawConn, error) { return l.ul.SyscallConn() }

// Close stops listening, which unblocks Accept, and removes the socket file
// if it is still the one this Listener created (same device and inode), so
// that a successor that took the path over keeps its socket. A second Close
// removes nothing and returns an error wrapping net.ErrClosed.
func (l *Listener) Close() error {
	l.removeOnce.Do(func() {
		// Compare and remove while our socket still holds its inode:
		// once it is closed, a successor's new socket file may get the
		// same inode number. For the same reason only once: after our
		// file is gone, its inode number is free for the next file.
		removeSocketFile(l.path, l.made)
	})
	return l.ul.Close()
}
