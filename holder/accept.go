package holder

// The accept loop and the connection slots: who is served, who is refused,
// and how a refusal lingers.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/jsonmsg"
)

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

func (a unixAcceptor) Close() error { return a.ul.Close() }

func (a unixAcceptor) Addr() net.Addr { return a.ul.Addr() }

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
	// The accept loop answers and closes some connections itself (a busy
	// answer in passing, a flood dropped): Close waits for it as for the
	// connections' goroutines, so that nothing is answered after Close.
	s.handlers.Add(1)
	s.mu.Unlock()
	defer s.handlers.Done()
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

// connOf makes a Conn of a connected Unix stream socket's descriptor (from
// acceptRaw or connectQueued), which it takes over: fd itself is closed
// either way, the Conn holding a duplicate in the runtime's poller.
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
		jsonmsg.Write(c, failResponse(refusal))
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
	if jsonmsg.Write(c, failResponse(f)) != nil {
		return
	}
	c.UnixConn().CloseWrite()
	c.SetReadDeadline(time.Now().Add(lingerTimeout))
	for {
		_, files, err := c.ReadMsg()
		jsonmsg.CloseAll(files)
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
