package handoff

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/jsonmsg"
	"github.com/fdsend/fdsend/internal/sockfile"
)

// state is where an Upgrader is in its life.
type state int

const (
	stUpgrading  state = iota // lock held, maybe connected to the serving instance
	stCommitting              // inside Ready
	stServing                 // owns the hand-off point
	stHandedOver              // a successor took over: draining
	stAborted                 // gave up before Ready (timeout, error, Close)
	stClosed
)

// ErrNotInherited is wrapped by the error of File when no older instance
// handed over a file of that name and no open function was given.
var ErrNotInherited = errors.New("handoff: not handed over by an older instance")

// ErrUnconfirmed is wrapped by the error of Ready when this instance has
// taken over the hand-off point but the older instance, still connected,
// did not confirm that it drains. The Upgrader is ready all the same.
var ErrUnconfirmed = errors.New("handoff: the older instance did not confirm the hand-over")

// Upgrader is one instance's side of a hand-off point: it takes sockets
// from the instance serving there (Listen, ListenPacket, File), takes the
// point over (Ready), serves its own sockets to the next instance, and tells
// its owner when that one has taken over (Draining). Its methods are safe
// for concurrent use.
//
// The sockets and files it returns belong to the caller; the Upgrader keeps
// only a reference, to hand them on. The descriptors it holds itself (the
// lock file, the connection to the older instance, its socket at the
// hand-off point) are close-on-exec and closed by Ready, Close or when the
// upgrade is abandoned.
type Upgrader struct {
	cfg Config

	readyMu sync.Mutex // held by Ready, so Close waits for it

	mu         sync.Mutex
	state      state
	abortErr   error
	lk         *lock        // held from Open until Ready or abandon
	peer       *fdsend.Conn // connection to the serving instance, until Ready
	peerPID    int
	timer      *time.Timer
	entries    map[string]*entry
	point      *fdsend.Listener // our socket at the hand-off point
	pointInfo  os.FileInfo      // its file, to tell whether the path is still ours
	conns      map[*fdsend.Conn]struct{}
	committing *fdsend.Conn // the successor between prepare and ready
	draining   chan struct{}
	wg         sync.WaitGroup

	peerFeatures []string   // what the older instance announced
	keys         [][32]byte // TLS session-ticket keys, to hand on
	passer       *passer    // the newer instance that takes connections
	passed       chan PassedConn
	passedOnce   sync.Once
	recvConn     *fdsend.Conn // from the older instance, passing connections
	recvStop     chan struct{}
	recvWG       sync.WaitGroup

	takeMu sync.Mutex // one request at a time on peer
}

// entry is a socket or file registered under a name.
type entry struct {
	kind      string
	network   string
	addr      string // as asked for
	local     string // bound address
	obj       any    // net.Listener, net.PacketConn or *os.File: the caller's
	inherited bool
}

// Open joins the hand-off point cfg.Path: it takes the point's lock,
// waiting up to cfg.LockTimeout for an upgrade already in progress, and
// connects to the instance serving there, if any. A socket file nobody
// listens on is taken for a crashed instance's leftover and replaced by
// Ready; a path that holds anything but a socket is refused and left alone.
// So is a lock file that is not a regular file with one link owned by this
// process's user or root (another user may have put a FIFO, a device, a
// symlink or a file of theirs there): Open fails at once, never blocking
// on it.
// The serving instance must run as an allowed user (see Config), and must
// accept this process likewise.
//
// The lock is held until Ready or Close: an Upgrader that is neither ready
// nor closed after cfg.ReadyTimeout gives up on its own (its Ready then
// fails), and the serving instance drops it after its own ReadyTimeout.
// Open's errors wrap the system's: a lock timeout wraps
// syscall.EWOULDBLOCK, a refusal by the serving instance or of it
// syscall.EACCES.
func Open(cfg Config) (*Upgrader, error) {
	if errUnsupported != nil {
		return nil, errUnsupported
	}
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	lk, err := acquireLock(lockPath(cfg.Path), cfg.Mode, cfg.LockTimeout)
	if err != nil {
		return nil, err
	}
	u := &Upgrader{
		cfg:      cfg,
		lk:       lk,
		entries:  make(map[string]*entry),
		conns:    make(map[*fdsend.Conn]struct{}),
		draining: make(chan struct{}),
		passed:   make(chan PassedConn, maxPassInFlight),
		recvStop: make(chan struct{}),
	}
	if !cfg.TakeConns {
		u.endPassed()
	}
	if err := u.connect(); err != nil {
		lk.release()
		return nil, err
	}
	u.mu.Lock()
	u.timer = time.AfterFunc(cfg.ReadyTimeout, u.readyTimedOut)
	u.mu.Unlock()
	return u, nil
}

// connect looks for an instance serving at the hand-off point and, if one
// answers, checks it and reads its greeting.
func (u *Upgrader) connect() error {
	path := u.cfg.Path
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("handoff: %w", err)
	}
	if st.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("handoff: %s exists and is not a socket (%v); left alone: %w", path, st.Mode().Type(), syscall.EEXIST)
	}
	c, err := fdsend.Dial(path)
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
		return nil // a crashed instance's socket, or gone since the Lstat
	}
	if err != nil {
		return fmt.Errorf("handoff: connecting to the instance at %s: %w", path, err)
	}
	cred, err := c.PeerCred()
	if err != nil {
		c.Close()
		return fmt.Errorf("handoff: the credentials of the instance at %s: %w", path, err)
	}
	if !u.cfg.allowed(cred) {
		c.Close()
		return fmt.Errorf("handoff: the instance at %s (process %d) runs as uid %d gid %d, which Config does not allow: %w", path, cred.PID, cred.UID, cred.GID, syscall.EACCES)
	}
	c.SetReadLimits(maxRequestBytes, 0)
	c.SetReadDeadline(time.Now().Add(exchangeTimeout))
	m, files, err := receive(c)
	jsonmsg.CloseAll(files) // a greeting carries none; ReadMsg's limit refuses them anyway
	if err != nil {
		c.Close()
		return fmt.Errorf("handoff: no greeting from the instance at %s (process %d): %w", path, cred.PID, err)
	}
	switch {
	case m.Op == opRefused:
		c.Close()
		return fmt.Errorf("handoff: the instance at %s (process %d) refused this process: %s: %w", path, cred.PID, m.Error, syscall.EACCES)
	case m.Op != opHello:
		c.Close()
		return fmt.Errorf("%w: the instance at %s greeted with %q", errProtocol, path, m.Op)
	case m.Version != protocolVersion:
		c.Close()
		return fmt.Errorf("handoff: the instance at %s speaks hand-off protocol version %d, this one %d: %w", path, m.Version, protocolVersion, syscall.EPROTONOSUPPORT)
	}
	c.SetReadDeadline(time.Time{})
	u.peer, u.peerPID, u.peerFeatures = c, cred.PID, m.Features
	return nil
}

// readyTimedOut abandons an upgrade that did not become ready in time.
func (u *Upgrader) readyTimedOut() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.state == stUpgrading {
		u.abortLocked(fmt.Errorf("handoff: not ready within %v (Config.ReadyTimeout); the upgrade was abandoned: %w", u.cfg.ReadyTimeout, os.ErrDeadlineExceeded))
	}
}

// abortLocked abandons the upgrade: the older instance is left as it was.
// u.mu is held.
func (u *Upgrader) abortLocked(err error) {
	u.state = stAborted
	u.abortErr = err
	u.endPassed()
	if u.timer != nil {
		u.timer.Stop()
	}
	if u.peer != nil {
		u.peer.Close()
		u.peer = nil
	}
	u.lk.release()
}

// Draining returns a channel that is closed when a newer instance has
// taken over: this one should stop accepting (close its listeners or drain
// its servers), finish what it has in flight, call Close and exit. The
// sockets were handed over before the channel closes, so closing them
// does not disturb the newer instance.
func (u *Upgrader) Draining() <-chan struct{} { return u.draining }

// Inherited reports whether the socket or file registered under name was
// handed over by an older instance (rather than opened afresh).
func (u *Upgrader) Inherited(name string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	e := u.entries[name]
	return e != nil && e.inherited
}

// Close leaves the hand-off point. Before Ready it abandons the upgrade:
// the lock is released and the older instance goes on serving. After
// Ready it stops serving hand-off requests and, unless a newer instance has
// taken the point over, removes the socket file (under the lock, so it
// never removes a newer instance's; it waits for an upgrade in progress,
// up to Config.LockTimeout, and leaves the file if that runs out). The
// sockets and files handed out stay open: they are the caller's. After a
// hand-over to an instance that takes connections, Close waits for the
// PassConn calls in progress and then tells it that no more come (its
// Conns closes); on the receiving side it stops receiving and closes the
// connections still waiting in Conns. Close waits for a Ready in progress,
// and may be called more than once.
func (u *Upgrader) Close() error {
	u.readyMu.Lock()
	defer u.readyMu.Unlock()
	u.mu.Lock()
	switch u.state {
	case stUpgrading:
		u.abortLocked(fmt.Errorf("handoff: closed: %w", net.ErrClosed))
		u.state = stClosed
		u.mu.Unlock()
		return nil
	case stAborted:
		u.state = stClosed
		u.mu.Unlock()
		return nil
	case stClosed:
		u.mu.Unlock()
		return nil
	}
	serving := u.state == stServing
	p := u.passer
	u.mu.Unlock()
	if p != nil {
		// Let the connections on their way be decided, then tell the
		// newer instance that no more come.
		p.shut()
	}
	u.mu.Lock()
	u.state = stClosed
	u.stopServingLocked()
	info := u.pointInfo
	u.mu.Unlock()
	u.wg.Wait()
	u.stopReceiving()
	if !serving {
		return nil
	}
	lk, err := acquireLock(lockPath(u.cfg.Path), u.cfg.Mode, u.cfg.LockTimeout)
	if err != nil {
		return fmt.Errorf("handoff: %s left in place: %w", u.cfg.Path, err)
	}
	defer lk.release()
	if err := sockfile.Remove(u.cfg.Path, info); err != nil {
		return fmt.Errorf("handoff: %w", err)
	}
	return nil
}

// stopReceiving stops taking connections from the older instance: those
// not yet committed stay the older instance's, and those committed but not
// received from Conns are closed.
func (u *Upgrader) stopReceiving() {
	u.mu.Lock()
	rc := u.recvConn
	u.recvConn = nil
	u.mu.Unlock()
	if rc == nil {
		return
	}
	close(u.recvStop)
	rc.Close()
	u.recvWG.Wait()
	for pc := range u.passed {
		pc.Conn.Close()
	}
}

// stopServingLocked closes our socket at the hand-off point and every
// connection on it. u.mu is held.
func (u *Upgrader) stopServingLocked() {
	if u.point != nil {
		// Its path is our temporary one, gone since the rename, so this
		// never removes the hand-off point.
		u.point.Close()
		u.point = nil
	}
	for c := range u.conns {
		c.Close()
	}
}
