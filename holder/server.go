package holder

import (
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fdsend/fdsend"
)

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
	// close(2) of a file on a file system that stopped answering (a hung
	// FUSE mount's flush) may not return: bounded like the connections.
	released := make(chan struct{})
	go func() {
		s.releaseAll(drop)
		close(released)
	}()
	t.Reset(closeWait)
	select {
	case <-released:
	case <-t.C:
		s.logf("closing: held descriptors still closing after %v (a file system that does not answer?); going on without them", closeWait)
	}
	return err
}
