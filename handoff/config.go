package handoff

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fdsend/fdsend"
)

// Defaults for the zero values of Config.
const (
	DefaultReadyTimeout = time.Minute
	DefaultLockTimeout  = 90 * time.Second
)

// exchangeTimeout bounds each request and answer on the hand-off socket, so
// that a peer that stops answering fails the call rather than hanging it.
const exchangeTimeout = 15 * time.Second

// maxSunPath is the longest Unix socket path the kernels take (sun_path
// holds 104 bytes on the BSDs and darwin, 108 on Linux, with the NUL).
const maxSunPath = 103

// Config says where the hand-off point is and whom an instance trusts.
type Config struct {
	// Path is the hand-off point: the Unix socket the serving instance
	// listens on. The lock file is Path+".lock", and Ready binds a
	// temporary socket Path+"."+pid in the same directory. Required; a
	// filesystem path (abstract addresses cannot be renamed), at most
	// about 96 bytes so that the temporary path fits a socket address.
	Path string

	// Mode is the permission bits of the socket and the lock file when this
	// instance creates them; 0 means 0600. Widening it lets other users
	// reach the point, but PeerUIDs and PeerGIDs still decide who is
	// answered.
	Mode os.FileMode

	// PeerUIDs and PeerGIDs list the users and primary groups, besides
	// this process's own effective user (always a peer), that may take this
	// instance's sockets and whose instance this one accepts sockets from.
	// Checked with fdsend.PeerCred on both sides. (Unlike
	// fdsend.ListenConfig's AllowUIDs, which is the whole list, these add
	// to the own user: hence the other name.)
	PeerUIDs []int
	PeerGIDs []int

	// LockTimeout is how long Open waits for another upgrade in progress
	// to finish; 0 means DefaultLockTimeout. Make it longer than the
	// ReadyTimeout of the instances, so that a waiting upgrade outlives
	// one that hangs.
	LockTimeout time.Duration

	// ReadyTimeout bounds the time between Open and Ready. The serving
	// instance drops a successor that has not called Ready within its
	// ReadyTimeout (and keeps serving), and the successor gives up on its
	// own after its ReadyTimeout; 0 means DefaultReadyTimeout.
	ReadyTimeout time.Duration

	// TakeConns makes this instance take the live connections the older
	// instance passes with PassConn once this one is ready: they arrive on
	// Conns. Without it the older instance gets ErrNoTaker and drains its
	// connections itself.
	TakeConns bool

	// ListenConfig opens the sockets that are not inherited (socket
	// options through its Control function, for example). The zero value
	// is what net.Listen uses.
	ListenConfig net.ListenConfig
}

// normalize checks c and fills in its defaults.
func (c Config) normalize() (Config, error) {
	if c.Path == "" {
		return c, fmt.Errorf("handoff: Config.Path is empty: %w", syscall.EINVAL)
	}
	if strings.HasPrefix(c.Path, "@") || strings.ContainsRune(c.Path, 0) {
		return c, fmt.Errorf("handoff: Config.Path %q must be a filesystem path (an abstract address cannot be renamed over): %w", c.Path, syscall.EINVAL)
	}
	if n := len(tempPath(c.Path, os.Getpid())); n > maxSunPath {
		return c, fmt.Errorf("handoff: Config.Path %q is too long: the temporary socket path beside it is %d bytes, at most %d fit a socket address: %w", c.Path, n, maxSunPath, syscall.ENAMETOOLONG)
	}
	if c.Mode&^os.ModePerm != 0 {
		return c, fmt.Errorf("handoff: Config.Mode %v has bits other than permissions: %w", c.Mode, syscall.EINVAL)
	}
	if c.Mode == 0 {
		c.Mode = 0o600
	}
	if c.LockTimeout < 0 || c.ReadyTimeout < 0 {
		return c, fmt.Errorf("handoff: negative timeout (LockTimeout %v, ReadyTimeout %v): %w", c.LockTimeout, c.ReadyTimeout, syscall.EINVAL)
	}
	if c.LockTimeout == 0 {
		c.LockTimeout = DefaultLockTimeout
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = DefaultReadyTimeout
	}
	c.PeerUIDs = slices.Clone(c.PeerUIDs)
	c.PeerGIDs = slices.Clone(c.PeerGIDs)
	return c, nil
}

// allowed reports whether a peer with these credentials may talk to us.
func (c *Config) allowed(cred fdsend.Cred) bool {
	return cred.UID == os.Geteuid() || slices.Contains(c.PeerUIDs, cred.UID) || slices.Contains(c.PeerGIDs, cred.GID)
}

// lockPath is the lock file of the hand-off point.
func lockPath(path string) string { return path + ".lock" }

// tempPath is where an instance binds its socket before renaming it over
// the hand-off point: beside it, so rename(2) stays in one directory.
func tempPath(path string, pid int) string { return path + "." + strconv.Itoa(pid) }
