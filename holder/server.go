package holder

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/activation"
)

// Defaults of a Config.
const (
	// DefaultMax is the most entries a holder keeps when Config.Max is 0.
	DefaultMax = 1024
	// DefaultMaxConns is the most connections a holder serves at once when
	// Config.MaxConns is 0.
	DefaultMaxConns = 1024
	// DefaultTimeout bounds each request and response when Config.Timeout
	// is 0.
	DefaultTimeout = 30 * time.Second
)

// maxRequestBytes is the largest request the server reads; a fetch of
// DefaultMax names of 255 bytes fits with room to spare.
const maxRequestBytes = 1 << 20

// busyTimeout bounds writing the "busy" answer to a connection over
// MaxConns; it goes into an empty socket buffer and never waits in practice.
const busyTimeout = 100 * time.Millisecond

// Config is how a Server behaves. The zero value holds up to DefaultMax
// entries for the server's own user only.
type Config struct {
	// Max is the most entries held at once (0: DefaultMax). A store beyond
	// it fails with ErrFull; replacing a held name always works.
	Max int
	// Rules grant operations to other users and groups. The effective UID
	// of the server's process always has every right; any other peer has
	// the union of the operations of the rules that match its UID or
	// primary GID, and none if no rule matches.
	Rules []Rule
	// MaxConns is the most connections served at once (0: DefaultMaxConns).
	// A connection beyond it gets an ErrBusy answer and is closed at once.
	//
	// Entries and connections each take a descriptor: if Max plus MaxConns
	// do not fit in the process's limit on open descriptors
	// (RLIMIT_NOFILE) with a few to spare, they are lowered (connections to
	// a quarter of what is left at most, entries to the rest; Logf is told), so that a full holder can still accept the
	// connections that would empty it. Server.Limits says what applies.
	MaxConns int
	// Timeout bounds how long a connection may take to send each whole
	// request (counted from the end of the previous one, so it is also how
	// long an idle connection is kept) and to take each response (0:
	// DefaultTimeout). A connection that exceeds it is closed.
	Timeout time.Duration
	// Logf, if not nil, is told about refused requests, hostile or broken
	// clients, expiries and the like, one line each.
	Logf func(format string, args ...any)
}

// SocketMode is the mode Listen gives the socket file: 0600 when every rule
// is about the server's own UID (or there are none), 0666 when rules let
// other users or groups in. The server enforces the rules itself on every
// request; the mode only lets those peers reach it.
func (cfg Config) SocketMode() os.FileMode {
	uid := os.Geteuid()
	for _, r := range cfg.Rules {
		if r.GID >= 0 || (r.UID >= 0 && r.UID != uid) {
			return 0o666
		}
	}
	return 0o600
}

// checked returns cfg with defaults filled in, or what is wrong with it.
func (cfg Config) checked() (Config, error) {
	if cfg.Max < 0 {
		return cfg, fmt.Errorf("holder: Config.Max %d is negative: %w", cfg.Max, syscall.EINVAL)
	}
	if cfg.MaxConns < 0 {
		return cfg, fmt.Errorf("holder: Config.MaxConns %d is negative: %w", cfg.MaxConns, syscall.EINVAL)
	}
	if cfg.Timeout < 0 {
		return cfg, fmt.Errorf("holder: Config.Timeout %v is negative: %w", cfg.Timeout, syscall.EINVAL)
	}
	for _, r := range cfg.Rules {
		if err := r.valid(); err != nil {
			return cfg, err
		}
	}
	if cfg.Max == 0 {
		cfg.Max = DefaultMax
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	cfg.Rules = slices.Clone(cfg.Rules)
	return cfg, nil
}

// Server is a descriptor holder: it keeps descriptors that clients store
// under names and hands duplicates of them to clients that fetch them, so
// that they outlive the processes that made them.
//
// Descriptors: the server owns every descriptor it holds (close-on-exec)
// and closes it when the entry is dropped — replaced, removed, fetched with
// delete, expired — and when the server is closed. A fetch sends
// duplicates and keeps the entry. Descriptors that arrive with a request
// that is refused or malformed are closed at once.
//
// Each connection is served by a goroutine of its own with deadlines
// (Config.Timeout), so one client never waits for another, and no client
// can make the server block, leak, or stop serving others.
type Server struct {
	cfg  Config
	uid  int
	ln   acceptor
	done chan struct{}

	slots slots // how many connections of each sort, lingering included

	mu       sync.Mutex
	entries  map[string]*entry
	conns    map[*fdsend.Conn]struct{} // served and lingering
	closed   bool
	serving  bool
	handlers sync.WaitGroup // every connection's goroutine; Add only under mu, before closed
	served   int            // connections of peers with rights, being served
	noRights int            // connections of peers no rule grants anything
	lingers  int            // refused connections lingering

	// Refusals not yet logged and when the last was (see refused); only
	// the accept loop uses them.
	refusals      int
	refusalLogged time.Time

	// beforeAnswer, if set (by tests), runs before each response is
	// written.
	beforeAnswer atomic.Pointer[func()]
	// describeHook, if set (by tests), describes descriptors in place of
	// describe.
	describeHook atomic.Pointer[func(*os.File) string]
}

// describeTimeout bounds describing descriptors for a response: fstat of a
// file on a file system that stops answering (a hung FUSE or network
// mount) may never return.
const describeTimeout = time.Second

// describing is the descriptions of some entries, under way.
type describing struct {
	kinds   []string
	got     []bool
	results chan describeResult
	pending int
}

type describeResult struct {
	i    int
	kind string
}

// describeLocked starts describing es (s.mu held), each in a goroutine of
// its own that holds a reference to its entry, so the descriptor stays open
// while it is looked at. No system call that could block runs under the
// lock. An entry whose description from an earlier request is still out
// (it does not answer) is not asked again.
func (s *Server) describeLocked(es []*entry) *describing {
	fn := describe
	if hook := s.describeHook.Load(); hook != nil {
		fn = *hook
	}
	d := &describing{kinds: make([]string, len(es)), got: make([]bool, len(es)), results: make(chan describeResult, len(es))}
	for i, e := range es {
		if e.describing {
			continue
		}
		e.describing = true
		e.refs++
		d.pending++
		go func() {
			kind := fn(e.file)
			s.mu.Lock()
			e.describing = false
			e.kind = kind
			e.refs--
			last := e.refs == 0
			s.mu.Unlock()
			if last {
				e.file.Close()
			}
			d.results <- describeResult{i, kind}
		}()
	}
	return d
}

// wait returns the descriptions, waiting at most describeTimeout; an entry
// that has not answered by then is reported as such, with what it was last
// found to be.
func (d *describing) wait(es []*entry, s *Server) []string {
	t := time.NewTimer(describeTimeout)
	defer t.Stop()
wait:
	for ; d.pending > 0; d.pending-- {
		select {
		case r := <-d.results:
			d.kinds[r.i], d.got[r.i] = r.kind, true
		case <-t.C:
			break wait
		}
	}
	s.mu.Lock()
	for i, e := range es {
		if !d.got[i] {
			if e.kind == "" {
				d.kinds[i] = fmt.Sprintf("unknown (did not answer within %v)", describeTimeout)
			} else {
				d.kinds[i] = e.kind + " (not answering)"
			}
		}
	}
	s.mu.Unlock()
	return d.kinds
}

// entry is one held descriptor.
//
// Its file is closed when the last reference goes (see release): the map
// holds one, and so does each fetch sending it, so a fetch sends the held
// descriptor itself, never a duplicate.
type entry struct {
	name       string
	file       *os.File
	refs       int    // under Server.mu
	kind       string // what it was last found to be, under Server.mu
	describing bool   // a description is under way, under Server.mu
	stored     time.Time
	expires    time.Time // zero: never
	timer      *time.Timer
	by         fdsend.Cred
}

func (e *entry) expired(now time.Time) bool {
	return !e.expires.IsZero() && !now.Before(e.expires)
}

// wire describes e for a response.
func (e *entry) wire(now time.Time, kind string) wireEntry {
	w := wireEntry{
		Name: e.name,
		Kind: kind,
		Age:  int64(now.Sub(e.stored)),
		UID:  e.by.UID,
		GID:  e.by.GID,
		PID:  e.by.PID,
	}
	if !e.expires.IsZero() {
		w.ExpiresIn = max(int64(e.expires.Sub(now)), 1)
	}
	return w
}

// acceptor is where connections come from: an fdsend.Listener or a
// *net.UnixListener.
type acceptor interface {
	Accept() (*fdsend.Conn, error)
	SyscallConn() (syscall.RawConn, error)
	Close() error
	Addr() net.Addr
}

// unixAcceptor adapts a *net.UnixListener.
type unixAcceptor struct{ ul *net.UnixListener }

func (a unixAcceptor) Accept() (*fdsend.Conn, error) {
	c, err := a.ul.AcceptUnix()
	if err != nil {
		return nil, err
	}
	return fdsend.NewConn(c), nil
}
func (a unixAcceptor) SyscallConn() (syscall.RawConn, error) { return a.ul.SyscallConn() }
func (a unixAcceptor) Close() error                          { return a.ul.Close() }
func (a unixAcceptor) Addr() net.Addr                        { return a.ul.Addr() }

// Listen creates the holder's socket at path (or at the Linux abstract
// address "@name") with the mode cfg.SocketMode gives, and returns a Server
// for it; call Serve to serve it. Connections made before Serve wait in the
// socket's backlog. A stale socket file at path is replaced, one in use is
// an error (see fdsend.ListenConfig.Listen). The server owns the socket:
// Close closes it and removes the file.
func Listen(path string, cfg Config) (*Server, error) {
	cfg, err := cfg.checked()
	if err != nil {
		return nil, err
	}
	l, err := fdsend.ListenConfig{Mode: cfg.SocketMode()}.Listen(path)
	if err != nil {
		return nil, err
	}
	cfg, sl := fitLimits(cfg, openLimit())
	return newServer(l, cfg, sl), nil
}

// NewServer returns a Server for a listening Unix stream socket made
// elsewhere, such as one inherited by socket activation
// (activation.Listener). l must be a *net.UnixListener; the Server owns it
// and closes it on Close. Its file mode is the caller's business.
func NewServer(l net.Listener, cfg Config) (*Server, error) {
	ul, ok := l.(*net.UnixListener)
	if !ok || ul == nil {
		return nil, &fdsend.ArgError{Arg: "l", Type: fmt.Sprintf("%T", l), Err: fmt.Errorf("want a *net.UnixListener: %w", syscall.EINVAL)}
	}
	cfg, err := cfg.checked()
	if err != nil {
		return nil, err
	}
	cfg, sl := fitLimits(cfg, openLimit())
	return newServer(unixAcceptor{ul}, cfg, sl), nil
}

// fdReserve is how many descriptors fitLimits leaves for everything but
// entries and connections: standard streams, the runtime's poller, the
// listening socket, the connection the accept loop is sorting out and one
// it refuses in passing.
const fdReserve = 32

// slots are how many connections of each sort beyond MaxConns a server
// keeps at once: maxNoRights, ownerReserve and maxLingers, lowered by
// fitLimits under a small limit on open descriptors.
type slots struct {
	noRights     int // of peers no rule grants anything
	ownerReserve int // of the holder's own user, beyond MaxConns
	lingers      int // refused and lingering (see linger)
}

// Descriptors a connection may hold at once. A served one: its socket, and
// what its reads may hold — a request carries at most one descriptor, and
// an fdsend.Conn under that read limit receives at most one per system
// call and holds at most two (the message's and the next one's) besides.
// A lingering one reads with a limit of none, so the kernel installs none,
// but it is made a Conn from a bare descriptor by duplicating it (connOf),
// so it holds two for a moment.
const (
	servedCost = 1 + 3
	lingerCost = 2
)

// fitLimits fits everything a holder can be made to hold at once in limit
// open descriptors (RLIMIT_NOFILE; 0 when unknown), with fdReserve to
// spare: the entries, and the connections of every sort with what each may
// hold (servedCost, lingerCost). A holder whose descriptor table filled up
// could no longer accept the connection that would empty it. When it does
// not fit, the slots beyond MaxConns are cut to a small share each, then
// connections get at most a quarter of what is left and entries the rest.
func fitLimits(cfg Config, limit int) (Config, slots) {
	sl := slots{noRights: maxNoRights, ownerReserve: ownerReserve, lingers: maxLingers}
	need := fdReserve + cfg.Max + servedCost*(cfg.MaxConns+sl.noRights+sl.ownerReserve) + lingerCost*sl.lingers
	if limit <= 0 || need <= limit {
		return cfg, sl
	}
	budget := max(limit-fdReserve, 0)
	sl = slots{
		noRights:     min(max(budget/32, 1), maxNoRights),
		ownerReserve: min(max(budget/32, 1), ownerReserve),
		lingers:      min(max(budget/(16*lingerCost), 1), maxLingers),
	}
	rest := budget - servedCost*(sl.noRights+sl.ownerReserve) - lingerCost*sl.lingers
	asked := cfg
	cfg.MaxConns = min(asked.MaxConns, max(1, rest/4/servedCost))
	cfg.Max = min(asked.Max, max(1, rest-servedCost*cfg.MaxConns))
	if cfg.Logf != nil {
		cfg.Logf("only %d descriptors may be open (RLIMIT_NOFILE): holding at most %d entries and serving %d connections at once (not %d and %d), %d more of the holder's own user, %d of users without rights, and letting %d refused connections linger", limit, cfg.Max, cfg.MaxConns, asked.Max, asked.MaxConns, sl.ownerReserve, sl.noRights, sl.lingers)
	}
	return cfg, sl
}

// Limits returns the most entries the server holds and the most
// connections it serves at once: Config.Max and Config.MaxConns, or their
// defaults, lowered if need be to fit the process's limit on open
// descriptors.
func (s *Server) Limits() (maxEntries, maxConns int) { return s.cfg.Max, s.cfg.MaxConns }

func newServer(ln acceptor, cfg Config, sl slots) *Server {
	return &Server{
		cfg:     cfg,
		slots:   sl,
		uid:     os.Geteuid(),
		ln:      ln,
		done:    make(chan struct{}),
		entries: make(map[string]*entry),
		conns:   make(map[*fdsend.Conn]struct{}),
	}
}

// Addr returns the address of the holder's socket.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// logf reports an event if the Config asked for it.
func (s *Server) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

// Serve accepts connections and serves each in a goroutine of its own until
// Close, then returns ErrServerClosed. Accept errors that pass (out of
// descriptors, memory) are retried with a growing pause; any other ends
// Serve with that error, and the caller should then Close the Server. Serve
// may be called only once.
//
// The accept loop does no per-connection work that can wait: it asks the
// kernel who the peer is, and either hands the connection to a goroutine or
// refuses it, so that a flood of connections is drained as fast as it comes
// and the owner's reserve stays reachable. Where it can (rawAccept), it
// takes each connection as a bare descriptor and makes a Conn of it only
// to serve it or answer it, so that a connection of a peer without rights
// beyond what the holder keeps for such peers costs three system calls.
func (s *Server) Serve() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	if s.serving {
		s.mu.Unlock()
		return errors.New("holder: Serve called twice")
	}
	s.serving = true
	s.mu.Unlock()
	var rc syscall.RawConn
	if rawAccept {
		rc, _ = s.ln.SyscallConn() // nil: Accept it is
	}
	var pause time.Duration
	for {
		c, fd, err := s.accept(rc)
		if err != nil {
			select {
			case <-s.done:
				return ErrServerClosed
			default:
			}
			if !passing(err) {
				return err
			}
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			s.logf("accept: %v; retrying in %v", err, pause)
			select {
			case <-time.After(pause):
			case <-s.done:
				return ErrServerClosed
			}
			continue
		}
		pause = 0
		if !s.admit(c, fd) {
			return ErrServerClosed
		}
	}
}

// accept waits for the next connection. With rc, the listening socket's,
// it takes one waiting in the backlog as a bare descriptor (c nil); with
// none waiting, or without rc, it waits in the acceptor's Accept (fd -1).
func (s *Server) accept(rc syscall.RawConn) (c *fdsend.Conn, fd int, err error) {
	if rc != nil {
		fd = -1
		var aerr error
		err = rc.Control(func(lfd uintptr) { fd, aerr = acceptRaw(int(lfd)) })
		switch {
		case err != nil:
			return nil, -1, err
		case aerr == nil:
			return nil, fd, nil
		case aerr != syscall.EAGAIN:
			return nil, -1, os.NewSyscallError("accept", aerr)
		}
	}
	c, err = s.ln.Accept()
	return c, -1, err
}

// connOf makes a Conn of a descriptor acceptRaw returned, which it takes
// over (closes on failure).
func connOf(fd int) (*fdsend.Conn, error) {
	f := os.NewFile(uintptr(fd), "holder-connection")
	fc, err := net.FileConn(f) // a duplicate, in the runtime's poller
	f.Close()
	if err != nil {
		return nil, err
	}
	uc, ok := fc.(*net.UnixConn)
	if !ok {
		fc.Close()
		return nil, fmt.Errorf("accepted a %T, not a Unix connection", fc)
	}
	return fdsend.NewConn(uc), nil
}

// admit decides about a connection just accepted, c or, if c is nil, the
// bare descriptor fd: it serves it, refuses it, or, once the server is
// closed, closes it. It reports whether the server is still open. All
// that it does itself is ask the kernel who the peer is and count; a
// connection it keeps is made a Conn (connOf) by the goroutine that serves
// it or lets it linger.
func (s *Server) admit(c *fdsend.Conn, fd int) bool {
	drop := func() {
		if c != nil {
			c.Close()
		} else {
			closeRaw(fd)
		}
	}
	// Who is it? Peers no rule grants anything are served apart, with
	// slots of their own (every request of theirs is denied), so that they
	// cannot take the slots of those with rights; the holder's own user has
	// a reserve of slots beyond the limit.
	var cred fdsend.Cred
	var cerr error
	if c != nil {
		cred, cerr = c.PeerCred()
	} else {
		cred, cerr = fdsend.PeerCred(fd)
	}
	if cerr != nil {
		s.logf("refusing a connection: cannot tell who the peer is: %v", cerr)
		drop()
		return true
	}
	none := s.rights(cred) == 0
	var refusal *failure
	s.mu.Lock()
	if s.closed {
		// Close has run or is running: nothing accepted now is served.
		s.mu.Unlock()
		drop()
		return false
	}
	switch {
	case none && s.noRights < s.slots.noRights:
		s.noRights++
	case none:
		refusal = fail(codeDenied, "uid %d gid %d may not do anything on this holder (no rule grants it an operation)", cred.UID, cred.GID)
	case s.served < s.cfg.MaxConns || (cred.UID == s.uid && s.served < s.cfg.MaxConns+s.slots.ownerReserve):
		s.served++
	default:
		refusal = fail(codeBusy, "the holder is serving %d connections, its limit; try again later", s.cfg.MaxConns)
	}
	lingering := refusal != nil && s.lingers < s.slots.lingers
	if lingering {
		s.lingers++
	}
	if refusal == nil || lingering {
		s.handlers.Add(1)
	}
	s.mu.Unlock()
	if refusal == nil {
		go s.run(c, fd, cred, none, nil)
		return true
	}
	if none {
		s.refused(cred, "no rule grants it anything, and %d such are connected", s.slots.noRights)
	} else {
		s.refused(cred, "%d connections already (the limit)", s.cfg.MaxConns)
	}
	switch {
	case lingering:
		go s.run(c, fd, cred, none, refusal)
	case none:
		// A flood: as many refused connections linger as may. The rest
		// of those of peers without rights are closed at once,
		// unanswered, at the cost of accepting them and nothing more.
		drop()
	default:
		// Answered in passing: the answer goes into the empty buffer of
		// a new socket, which takes it without waiting.
		if c == nil {
			var err error
			if c, err = connOf(fd); err != nil {
				return true
			}
		}
		c.SetWriteDeadline(time.Now().Add(busyTimeout))
		c.WriteMsg(failResponse(refusal))
		c.Close()
	}
	return true
}

// refused logs a refused connection; when connections are refused faster
// than one a second, one line a second says how many were.
func (s *Server) refused(cred fdsend.Cred, why string, args ...any) {
	if s.cfg.Logf == nil {
		return
	}
	now := time.Now()
	s.refusals++
	if now.Sub(s.refusalLogged) < time.Second {
		return
	}
	if s.refusals > 1 {
		s.logf("refused %d connections in %v, the last: %s (pid %d uid %d gid %d)", s.refusals, now.Sub(s.refusalLogged).Round(time.Millisecond), fmt.Sprintf(why, args...), cred.PID, cred.UID, cred.GID)
	} else {
		s.logf("refusing a connection: %s (pid %d uid %d gid %d)", fmt.Sprintf(why, args...), cred.PID, cred.UID, cred.GID)
	}
	s.refusals, s.refusalLogged = 0, now
}

// run serves a connection admit kept (refusal nil) or lets it linger with
// refusal as its answer (see linger), then closes it and frees its slot.
// A bare descriptor (c nil) is made a Conn first.
func (s *Server) run(c *fdsend.Conn, fd int, cred fdsend.Cred, noRights bool, refusal *failure) {
	defer s.handlers.Done()
	defer func() {
		s.mu.Lock()
		switch {
		case refusal != nil:
			s.lingers--
		case noRights:
			s.noRights--
		default:
			s.served--
		}
		s.mu.Unlock()
	}()
	if c == nil {
		var err error
		if c, err = connOf(fd); err != nil {
			s.logf("client pid %d uid %d: connection closed: %v", cred.PID, cred.UID, err)
			return
		}
	}
	s.mu.Lock()
	if s.closed {
		// Close has run or is running and did not see c: it is never
		// served.
		s.mu.Unlock()
		c.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	if refusal != nil {
		s.linger(c, refusal)
	} else {
		s.serveConn(c, cred)
	}
}

// passing reports whether an accept error may go away by itself.
func passing(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// linger answers a connection the holder will not serve with one
// unsolicited failure, which the client reads in place of its first answer.
// Closing a Unix socket with the client's request unread would reset the
// connection and lose that answer, so the refused connection lingers a
// moment, write side shut, discarding what the client sends (descriptors
// are never even received), before run closes it. At most slots.lingers do
// at once (see admit for the rest), and Close closes them too.
func (s *Server) linger(c *fdsend.Conn, f *failure) {
	c.SetReadLimits(maxRequestBytes, 0)
	// The answer goes into an empty socket buffer; the deadline only
	// bounds a goroutine that the scheduler keeps waiting.
	c.SetWriteDeadline(time.Now().Add(lingerTimeout))
	if c.WriteMsg(failResponse(f)) != nil {
		return
	}
	c.UnixConn().CloseWrite()
	c.SetReadDeadline(time.Now().Add(lingerTimeout))
	for {
		_, files, err := c.ReadMsg()
		closeAll(files)
		if err != nil {
			return
		}
	}
}

// How long, and how many at once, refused connections linger (see linger).
const (
	lingerTimeout = 2 * time.Second
	maxLingers    = 64
)

// closeWait bounds how long Close waits for connection goroutines stuck in
// a system call that closing their socket does not interrupt (closing a
// descriptor on a file system that stopped answering).
const closeWait = 5 * time.Second

// Close stops the server: it closes the listening socket (removing its file
// when Listen made it and it is still the same file), closes every
// connection, served or lingering, waits for their goroutines, and closes
// every held descriptor. Requests in progress fail, and no request is
// answered once Close has returned; a connection accepted while it runs is
// closed unserved. Close may be called more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	// From here on no connection is added (admit checks closed under mu
	// before handlers.Add, and run before it puts a connection in conns),
	// so the Wait below cannot race an Add, and every connection a
	// goroutine still makes is closed by that goroutine unserved.
	s.closed = true
	close(s.done)
	entries := s.entries
	s.entries = make(map[string]*entry)
	conns := make([]*fdsend.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	err := s.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	waited := make(chan struct{})
	go func() {
		s.handlers.Wait()
		close(waited)
	}()
	t := time.NewTimer(closeWait)
	defer t.Stop()
	select {
	case <-waited:
	case <-t.C:
		s.logf("closing: connections still busy after %v (a descriptor that does not answer?); going on without them", closeWait)
	}
	drop := make([]*entry, 0, len(entries))
	s.mu.Lock()
	for _, e := range entries {
		if e.timer != nil {
			e.timer.Stop()
			e.timer = nil
		}
		drop = append(drop, e)
	}
	s.mu.Unlock()
	s.releaseAll(drop)
	return err
}

// serveConn serves one connection until it ends, fails or times out; run
// closes it.
func (s *Server) serveConn(c *fdsend.Conn, cred fdsend.Cred) {
	c.SetReadLimits(maxRequestBytes, 1)
	for {
		c.SetReadDeadline(time.Now().Add(s.cfg.Timeout))
		data, files, err := c.ReadMsg()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.logf("client pid %d uid %d: connection closed: %v", cred.PID, cred.UID, err)
			}
			return
		}
		resp, out, after := s.handle(cred, data, files)
		if hook := s.beforeAnswer.Load(); hook != nil {
			(*hook)()
		}
		c.SetWriteDeadline(time.Now().Add(s.cfg.Timeout))
		werr := c.WriteMsg(resp, out...)
		if after != nil {
			after(werr == nil)
		}
		if werr != nil {
			if !errors.Is(werr, net.ErrClosed) {
				s.logf("client pid %d uid %d: answer not delivered, connection closed: %v", cred.PID, cred.UID, werr)
			}
			return
		}
	}
}

// handle answers one request. It owns files (the request's descriptors) and
// closes every one it does not keep. It returns the response's data, its
// descriptors, and what to do once the response has been written or has
// failed (nil for nothing).
func (s *Server) handle(cred fdsend.Cred, data []byte, files []*os.File) (resp []byte, out []any, after func(sent bool)) {
	var req request
	if err := json.Unmarshal(data, &req); err != nil {
		closeAll(files)
		return failResponse(fail(codeInvalid, "request is not a JSON object of the holder protocol: %v", err)), nil, nil
	}
	need, ok := opRights[req.Op]
	if !ok {
		closeAll(files)
		return failResponse(fail(codeInvalid, "unknown operation %q (want store, fetch, list or remove)", req.Op)), nil, nil
	}
	if req.Op == opFetch && req.Delete {
		need |= OpDelete
	}
	if !s.allowed(cred, need) {
		closeAll(files)
		s.logf("refused %s from pid %d uid %d gid %d: not allowed", req.Op, cred.PID, cred.UID, cred.GID)
		return failResponse(fail(codeDenied, "uid %d gid %d may not %s (the holder's rules do not allow it)", cred.UID, cred.GID, need.verb())), nil, nil
	}
	if req.Op != opStore && len(files) > 0 {
		closeAll(files)
		return failResponse(fail(codeInvalid, "a %s request carries no descriptors, %d arrived (closed)", req.Op, len(files))), nil, nil
	}
	var r response
	var held []*os.File
	var err *failure
	switch req.Op {
	case opStore:
		err = s.store(cred, req, files)
	case opFetch:
		r.Entries, held, after, err = s.fetch(req)
	case opList:
		r.Entries, err = s.list()
	case opRemove:
		err = s.remove(req.Name)
	}
	if err != nil {
		return failResponse(err), nil, nil
	}
	r.OK = true
	b, _ := json.Marshal(r)
	for _, f := range held {
		out = append(out, f)
	}
	return b, out, after
}

// opRights are the rights each operation needs.
var opRights = map[string]Op{opStore: OpStore, opFetch: OpFetch, opList: OpList, opRemove: OpDelete}

// verb names the operations of o for a message.
func (o Op) verb() string {
	if o == OpFetch|OpDelete {
		return "fetch and delete"
	}
	return o.String()
}

// allowed reports whether a peer may do every operation of need.
func (s *Server) allowed(cred fdsend.Cred, need Op) bool {
	return s.rights(cred)&need == need
}

// rights is every operation the rules grant a peer; the holder's own user
// has them all.
func (s *Server) rights(cred fdsend.Cred) Op {
	if cred.UID == s.uid {
		return AllOps
	}
	var have Op
	for _, r := range s.cfg.Rules {
		if r.matches(cred.UID, cred.GID) {
			have |= r.Ops
		}
	}
	return have
}

// maxNoRights is how many connections of peers that may do nothing are
// served at once, apart from MaxConns.
const maxNoRights = 32

// ownerReserve is how many connections beyond MaxConns the holder's own
// user may open, so that others filling the slots cannot lock it out.
const ownerReserve = 16

func failResponse(f *failure) []byte {
	b, _ := json.Marshal(response{Code: f.code, Error: f.msg})
	return b
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// takeLocked removes e from the map and stops its timer; the caller closes
// its file (outside the lock) or puts it back.
func (s *Server) takeLocked(e *entry) {
	delete(s.entries, e.name)
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
}

// getLocked returns the live entry held under name. An expired one whose
// timer has not fired yet is taken out and appended to *drop.
func (s *Server) getLocked(name string, now time.Time, drop *[]*entry) *entry {
	e := s.entries[name]
	if e == nil {
		return nil
	}
	if e.expired(now) {
		s.takeLocked(e)
		*drop = append(*drop, e)
		return nil
	}
	return e
}

// sweepLocked takes out every expired entry into *drop.
func (s *Server) sweepLocked(now time.Time, drop *[]*entry) {
	for _, e := range s.entries {
		if e.expired(now) {
			s.takeLocked(e)
			*drop = append(*drop, e)
		}
	}
}

// closeEntries lets go of dropped entries (see releaseAll).
func (s *Server) closeEntries(drop []*entry, why string) {
	s.releaseAll(drop)
	for _, e := range drop {
		s.logf("dropped %q (%s)", e.name, why)
	}
}

// releaseAll drops a reference to each of es (taken out of the map, or
// sent) and closes the file of each that no one refers to any more. The
// closing happens outside the lock: closing a file on a file system that
// stopped answering may block.
func (s *Server) releaseAll(es []*entry) {
	var last []*entry
	s.mu.Lock()
	for _, e := range es {
		e.refs--
		if e.refs == 0 {
			last = append(last, e)
		}
	}
	s.mu.Unlock()
	for _, e := range last {
		e.file.Close()
	}
}

// armLocked starts e's expiry timer, if it has an expiry.
func (s *Server) armLocked(e *entry, now time.Time) {
	if e.expires.IsZero() {
		return
	}
	e.timer = time.AfterFunc(e.expires.Sub(now), func() { s.expire(e) })
}

// expire drops e when its time has come, if it is still held.
func (s *Server) expire(e *entry) {
	s.mu.Lock()
	if s.entries[e.name] != e {
		s.mu.Unlock()
		return
	}
	s.takeLocked(e)
	s.mu.Unlock()
	s.closeEntries([]*entry{e}, "expired")
}

// store holds files[0] under req.Name.
func (s *Server) store(cred fdsend.Cred, req request, files []*os.File) *failure {
	if len(files) != 1 {
		closeAll(files)
		return fail(codeInvalid, "a store request carries exactly one descriptor, %d arrived", len(files))
	}
	if err := activation.ValidateName(req.Name); err != nil {
		closeAll(files)
		return fail(codeInvalid, "%v", err)
	}
	if req.TTL < 0 {
		closeAll(files)
		return fail(codeInvalid, "negative expiry %v", time.Duration(req.TTL))
	}
	now := time.Now()
	e := &entry{name: req.Name, file: files[0], refs: 1, stored: now, by: cred}
	if req.TTL > 0 {
		e.expires = now.Add(time.Duration(req.TTL))
	}
	var drop []*entry
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		closeAll(files)
		return fail(codeClosed, "the holder is shutting down")
	}
	old := s.getLocked(req.Name, now, &drop)
	switch {
	case old != nil && !req.Replace:
		s.mu.Unlock()
		s.closeEntries(drop, "expired")
		closeAll(files)
		return fail(codeExists, "%q is already held (store with replace to replace it)", req.Name)
	case old != nil:
		s.takeLocked(old)
		drop = append(drop, old)
	default:
		if len(s.entries) >= s.cfg.Max {
			s.sweepLocked(now, &drop)
		}
		if len(s.entries) >= s.cfg.Max {
			s.mu.Unlock()
			s.closeEntries(drop, "expired")
			closeAll(files)
			return fail(codeFull, "the holder holds %d entries, its limit", s.cfg.Max)
		}
	}
	s.entries[e.name] = e
	s.armLocked(e, now)
	s.mu.Unlock()
	s.releaseAll(drop)
	for _, d := range drop {
		if d == old {
			s.logf("replaced %q", d.name)
		} else {
			s.logf("dropped %q (expired)", d.name)
		}
	}
	return nil
}

// fetch answers a fetch: the held descriptors themselves, referenced
// until they are sent (no duplicates: a fetch costs no descriptors), and
// with Delete taken out of the holder. after lets go of them once they are
// in the client's socket; if the response could not be written, deleted
// entries are put back when their names are still free, so a client that
// dies mid-request loses nothing.
func (s *Server) fetch(req request) ([]wireEntry, []*os.File, func(bool), *failure) {
	names := req.Names
	if len(names) == 0 {
		return nil, nil, nil, fail(codeInvalid, "a fetch request names at least one entry")
	}
	if len(names) > s.cfg.Max {
		return nil, nil, nil, fail(codeInvalid, "a fetch of %d names, more than the %d the holder can hold", len(names), s.cfg.Max)
	}
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if err := activation.ValidateName(n); err != nil {
			return nil, nil, nil, fail(codeInvalid, "%v", err)
		}
		if seen[n] {
			return nil, nil, nil, fail(codeInvalid, "%q is named twice", n)
		}
		seen[n] = true
	}
	now := time.Now()
	var drop []*entry
	defer func() { s.closeEntries(drop, "expired") }()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, nil, nil, fail(codeClosed, "the holder is shutting down")
	}
	found := make([]*entry, len(names))
	for i, n := range names {
		e := s.getLocked(n, now, &drop)
		if e == nil {
			s.mu.Unlock()
			return nil, nil, nil, fail(codeNotHeld, "%q is not held", n)
		}
		found[i] = e
	}
	desc := s.describeLocked(found)
	files := make([]*os.File, len(found))
	for i, e := range found {
		files[i] = e.file
		if req.Delete {
			s.takeLocked(e) // the map's reference goes with the response
		} else {
			e.refs++
		}
	}
	s.mu.Unlock()
	kinds := desc.wait(found, s)
	wire := make([]wireEntry, len(found))
	for i, e := range found {
		wire[i] = e.wire(now, kinds[i])
	}
	if req.Delete {
		return wire, files, func(sent bool) { s.afterDelete(found, sent) }, nil
	}
	return wire, files, func(bool) { s.releaseAll(found) }, nil
}

// afterDelete finishes a fetch with delete: the entries are closed if the
// response went out, and otherwise put back where possible.
func (s *Server) afterDelete(taken []*entry, sent bool) {
	if sent {
		s.releaseAll(taken)
		return
	}
	now := time.Now()
	var lost []*entry
	s.mu.Lock()
	for _, e := range taken {
		if s.closed || s.entries[e.name] != nil || e.expired(now) || len(s.entries) >= s.cfg.Max {
			lost = append(lost, e)
			continue
		}
		s.entries[e.name] = e
		s.armLocked(e, now)
	}
	s.mu.Unlock()
	s.closeEntries(lost, "fetched with delete by a client that went away, and could not be put back")
}

// list describes every entry, sorted by name.
func (s *Server) list() ([]wireEntry, *failure) {
	now := time.Now()
	var drop []*entry
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fail(codeClosed, "the holder is shutting down")
	}
	s.sweepLocked(now, &drop)
	es := make([]*entry, 0, len(s.entries))
	for _, e := range s.entries {
		es = append(es, e)
	}
	desc := s.describeLocked(es)
	s.mu.Unlock()
	kinds := desc.wait(es, s)
	out := make([]wireEntry, len(es))
	for i, e := range es {
		out[i] = e.wire(now, kinds[i])
	}
	s.closeEntries(drop, "expired")
	slices.SortFunc(out, func(a, b wireEntry) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out, nil
}

// remove drops the entry held under name.
func (s *Server) remove(name string) *failure {
	if err := activation.ValidateName(name); err != nil {
		return fail(codeInvalid, "%v", err)
	}
	var drop []*entry
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fail(codeClosed, "the holder is shutting down")
	}
	e := s.getLocked(name, time.Now(), &drop)
	if e != nil {
		s.takeLocked(e)
	}
	s.mu.Unlock()
	s.closeEntries(drop, "expired")
	if e == nil {
		return fail(codeNotHeld, "%q is not held", name)
	}
	s.releaseAll([]*entry{e})
	s.logf("removed %q", name)
	return nil
}
