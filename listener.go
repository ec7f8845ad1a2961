//go:build linux || darwin || freebsd || netbsd || openbsd

package fdsend

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"

	"github.com/fdsend/fdsend/internal/sockfile"
	"golang.org/x/sys/unix"
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
	if !abstract {
		if err := sockfile.Clear(path); err != nil {
			return nil, err
		}
	}
	fd, err := socketCloexec()
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "unix", Err: os.NewSyscallError("socket", err)}
	}
	name := path
	if abstract {
		name = "\x00" + path[1:]
	}
	addr := &net.UnixAddr{Name: path, Net: "unix"}
	fail := func(err error) (*Listener, error) {
		unix.Close(fd)
		return nil, &net.OpError{Op: "listen", Net: "unix", Addr: addr, Err: err}
	}
	l := &Listener{cfg: lc, path: path}
	if abstract {
		if err := unix.Bind(fd, &unix.SockaddrUnix{Name: name}); err != nil {
			return fail(os.NewSyscallError("bind", err))
		}
	} else {
		// Nobody can connect before listen(2). The mode is given to the
		// socket itself, never by a chmod of the path (which could follow
		// a symlink someone swapped in): see bindMode.
		umaskNote, err := bindMode(fd, path, uint32(mode))
		if err != nil {
			return fail(err)
		}
		made, err := checkOurSocket(path, uint32(mode), umaskNote)
		if err != nil {
			return fail(err)
		}
		l.made = made
	}
	// The longest backlog the system allows: the kernel cuts what it is
	// asked for to its own maximum (net.core.somaxconn on Linux,
	// kern.ipc.somaxconn on the BSDs), where SOMAXCONN would keep 128 on
	// the BSDs even when the administrator allows more. A longer backlog
	// takes a burst of connections without making clients wait (EAGAIN).
	const backlog = 1<<16 - 1
	if err := unix.Listen(fd, backlog); err != nil {
		if !abstract {
			os.Remove(path)
		}
		return fail(os.NewSyscallError("listen", err))
	}
	f := os.NewFile(uintptr(fd), path)
	nl, err := net.FileListener(f)
	f.Close()
	if err != nil {
		if !abstract {
			os.Remove(path)
		}
		return nil, err
	}
	l.ul = nl.(*net.UnixListener)
	l.ul.SetUnlinkOnClose(false)
	return l, nil
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
// that a successor that took the path over keeps its socket.
func (l *Listener) Close() error {
	// Compare and remove while our socket still holds its inode: once it is
	// closed, a successor's new socket file may get the same inode number.
	sockfile.Remove(l.path, l.made)
	return l.ul.Close()
}

// checkOurSocket checks, right after bind, that path is the socket file this
// process made, with the permission bits mode, and returns it as it is (for
// sockfile.Remove). If it is a socket of ours with other bits (the process umask took
// some, umaskNote says why) it is removed; anything else is left alone: an
// error either way.
func checkOurSocket(path string, mode uint32, umaskNote error) (os.FileInfo, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || fi.Mode().Type() != os.ModeSocket || int(st.Uid) != os.Geteuid() {
		return nil, &os.PathError{Op: "listen", Path: path, Err: fmt.Errorf("replaced by someone else right after bind, left alone: %w", syscall.EEXIST)}
	}
	if got := uint32(st.Mode) & 0o7777; got != mode {
		os.Remove(path)
		why := umaskNote
		if why == nil {
			why = errors.New("the system did not apply it")
		}
		return nil, &os.PathError{Op: "listen", Path: path, Err: fmt.Errorf("socket file got mode %#o, not %#o, and was removed: %w", got, mode, why)}
	}
	return fi, nil
}
