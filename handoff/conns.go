package handoff

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdname"
	"github.com/fdsend/fdsend/internal/jsonmsg"
)

// MaxConnState is the largest state blob PassConn sends with a connection.
const MaxConnState = 1 << 20

// maxPassInFlight bounds the connections on their way to the successor at
// once: sent but not yet decided. Further PassConn calls wait for a place.
// The successor refuses an older instance that exceeds it.
const maxPassInFlight = 64

// maxConnMsgBytes is the largest opConn message a successor reads: the
// state blob in base64 and the rest of the message.
const maxConnMsgBytes = MaxConnState/3*4 + 8192

// ErrNoTaker is wrapped by the error of PassConn when no newer instance
// takes connections: none has taken over yet, the one that did has not set
// Config.TakeConns (or runs a version that cannot), or it is gone. The
// connection stays the caller's, to serve or close as it would without
// hand-off.
var ErrNoTaker = errors.New("handoff: no newer instance takes connections")

// PassedConn is a connection an older instance passed with PassConn, as
// the newer one receives it from Conns.
type PassedConn struct {
	// Name is the name the older instance passed it under.
	Name string
	// Conn is the connection, a *net.TCPConn, *net.UnixConn or the like
	// (what net.FileConn makes of the descriptor): pollable, close-on-exec,
	// and the receiver's to serve and close.
	Conn net.Conn
	// State is the blob the older instance passed with it.
	State []byte
}

// PassConn passes the live connection c, under name, with an opaque state
// blob, to the newer instance that has taken over this one's hand-off point,
// if that instance set Config.TakeConns. Call it after Draining has closed,
// at a message boundary of c: nothing of c is read or written while
// PassConn runs, and state holds whatever the newer instance needs to go on
// (what this side's reader had buffered past the last whole message, the
// connection's position in the conversation, ...), at most MaxConnState
// bytes. Any number of goroutines may call it at once; at most 64
// connections are on their way at a time, further calls wait for a place.
//
// On success the connection is the newer instance's, which has received it
// from its Conns: PassConn has closed c. On error c is still the caller's,
// open and untouched, to serve on or to close: nothing reached the newer
// instance's application. That includes ErrNoTaker (no newer instance
// takes connections, or it is gone), a connection the newer instance cannot
// use, and a newer instance that dies or does not answer within 15 seconds
// (after which it is given nothing more). c must be a socket with a
// descriptor (syscall.Conn): a *tls.Conn cannot move, for lack of a way to
// export its state.
//
// The connection goes only to the instance this one handed its hand-off
// point to, over the same connection, whose peer was checked (Config's
// PeerUIDs and PeerGIDs) when it connected.
func (u *Upgrader) PassConn(name string, c net.Conn, state []byte) error {
	if err := fdname.Check(name); err != nil {
		return fmt.Errorf("handoff: PassConn: %w", err)
	}
	if c == nil {
		return fmt.Errorf("handoff: PassConn %q: nil connection: %w", name, syscall.EINVAL)
	}
	if _, ok := c.(syscall.Conn); !ok {
		return fmt.Errorf("handoff: PassConn %q: a %T has no descriptor to pass: %w", name, c, syscall.EINVAL)
	}
	if len(state) > MaxConnState {
		return fmt.Errorf("handoff: PassConn %q: state of %d bytes, at most %d: %w", name, len(state), MaxConnState, syscall.EMSGSIZE)
	}
	u.mu.Lock()
	p := u.passer
	u.mu.Unlock()
	if p == nil {
		return fmt.Errorf("handoff: PassConn %q: %w", name, ErrNoTaker)
	}
	if err := p.pass(name, c, state); err != nil {
		return fmt.Errorf("handoff: PassConn %q: %w", name, err)
	}
	c.Close()
	return nil
}

// passer is the older instance's side of passing connections: the
// connection from the successor that took over and asked for them.
//
// Each connection goes in three steps: opConn carries the descriptor and
// the state; the successor converts it and answers opAck (or opNack), and
// keeps it aside; the older instance then writes opCommit and closes its
// copy, and only an opCommit it has read lets the successor hand the
// connection to its application. The commit is the one point of decision,
// taken by one side: whatever breaks before it was written (the successor
// dies, stops answering, or the stream fails) leaves the connection with
// the older instance, and the successor closes the copies it holds
// uncommitted when the stream ends; a commit written reaches the successor
// even if this side closes right after. So a connection is never served by
// both instances, and never left with neither while both live.
type passer struct {
	c   *fdsend.Conn
	pid int

	started chan struct{}  // closed once opDraining is written
	slots   chan struct{}  // one token per connection on its way
	done    chan struct{}  // closed when the stream has ended
	calls   sync.WaitGroup // PassConn calls in progress

	mu      sync.Mutex
	next    uint64
	waiting map[uint64]chan error // nil: acknowledged
	closed  bool                  // no new calls (Close, or the stream ended)
	err     error                 // why the stream ended
}

func newPasser(c *fdsend.Conn, pid int) *passer {
	return &passer{
		c:       c,
		pid:     pid,
		started: make(chan struct{}),
		slots:   make(chan struct{}, maxPassInFlight),
		done:    make(chan struct{}),
		waiting: make(map[uint64]chan error),
	}
}

// pass sends one connection and decides it. A nil error means committed.
func (p *passer) pass(name string, c net.Conn, state []byte) error {
	p.mu.Lock()
	if p.closed {
		err := p.err
		p.mu.Unlock()
		if err != nil {
			return fmt.Errorf("%w: the newer instance (process %d) is gone: %v", ErrNoTaker, p.pid, err)
		}
		return ErrNoTaker
	}
	p.calls.Add(1)
	p.mu.Unlock()
	defer p.calls.Done()

	timer := time.NewTimer(exchangeTimeout)
	defer timer.Stop()
	select {
	case p.slots <- struct{}{}:
	case <-p.done:
		return p.goneError()
	case <-timer.C:
		return fmt.Errorf("no place among the %d connections on their way to the newer instance (process %d) within %v: %w", maxPassInFlight, p.pid, exchangeTimeout, syscall.ETIMEDOUT)
	}
	defer func() { <-p.slots }()
	select {
	case <-p.started:
	case <-p.done:
		return p.goneError()
	}
	timer.Reset(exchangeTimeout)

	ch := make(chan error, 1)
	p.mu.Lock()
	p.next++
	id := p.next
	p.waiting[id] = ch
	p.mu.Unlock()
	forget := func() {
		p.mu.Lock()
		delete(p.waiting, id)
		p.mu.Unlock()
	}

	err := send(p.c, message{Op: opConn, ID: id, Name: name, State: state}, c)
	var ae *fdsend.ArgError
	if errors.As(err, &ae) {
		forget() // nothing was written: c is closed or not a socket
		return err
	}
	if err != nil {
		forget()
		p.end(err)
		return p.goneError()
	}
	select {
	case err = <-ch:
	case <-p.done:
		forget()
		return p.goneError()
	case <-timer.C:
		// A successor that does not answer is given nothing more: it
		// closes what it holds uncommitted when it sees the stream end.
		forget()
		p.end(fmt.Errorf("no answer within %v: %w", exchangeTimeout, syscall.ETIMEDOUT))
		return p.goneError()
	}
	if err != nil {
		return err // refused by the successor; it kept nothing
	}
	if err := send(p.c, message{Op: opCommit, ID: id}); err != nil {
		p.end(err)
		return p.goneError()
	}
	return nil
}

func (p *passer) goneError() error {
	p.mu.Lock()
	err := p.err
	p.mu.Unlock()
	if err == nil {
		err = net.ErrClosed
	}
	return fmt.Errorf("%w: the newer instance (process %d) is gone: %v", ErrNoTaker, p.pid, err)
}

// end ends the stream for good: every call waiting is failed (its
// connection stays with this instance), and the connection is closed, so
// that the successor drops what it holds uncommitted.
func (p *passer) end(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
		close(p.done)
	}
	p.closed = true
	p.mu.Unlock()
	p.c.Close()
}

// shut refuses new calls and waits for those in progress (each bounded by
// exchangeTimeout), then ends the stream.
func (p *passer) shut() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.calls.Wait()
	p.end(net.ErrClosed)
}

// read reads the successor's answers until the stream ends.
func (p *passer) read() {
	p.c.SetReadLimits(maxRequestBytes, 0)
	p.c.SetReadDeadline(time.Time{})
	for {
		m, files, err := receive(p.c)
		jsonmsg.CloseAll(files)
		if err != nil {
			p.end(err)
			return
		}
		var verdict error
		switch m.Op {
		case opAck:
		case opNack:
			verdict = fmt.Errorf("the newer instance (process %d) refused it: %s", p.pid, m.Error)
		default:
			p.end(fmt.Errorf("%w: %q while passing connections", errProtocol, m.Op))
			return
		}
		p.mu.Lock()
		ch, ok := p.waiting[m.ID]
		delete(p.waiting, m.ID)
		p.mu.Unlock()
		if !ok {
			// An answer to a connection that gave up on it (or to none):
			// the stream cannot be trusted any more.
			p.end(fmt.Errorf("%w: answer %q about connection %d, which is not on its way", errProtocol, m.Op, m.ID))
			return
		}
		ch <- verdict
	}
}

// Conns returns the channel on which an instance with Config.TakeConns
// receives the connections the older instance passes with PassConn, after
// Ready. Each PassedConn received is the receiver's: its connection is
// open until the receiver closes it. The channel is closed when no more
// can come: the older instance has closed its Upgrader or died, there was
// none, Ready failed, or this Upgrader is closed (Close closes the
// connections left in the channel). Without Config.TakeConns it is closed
// from the start. Receive from it until it is closed: a connection waits
// there, and the older instance waits (up to 15 seconds) for the ones
// behind it.
func (u *Upgrader) Conns() <-chan PassedConn { return u.passed }

// endPassed closes u.passed once.
func (u *Upgrader) endPassed() { u.passedOnce.Do(func() { close(u.passed) }) }

// testHookAcked, if set, runs in the successor after it has answered opAck
// for a connection: tests make it die there.
var testHookAcked func(n int)

// receiveConns is the successor's side: it receives the connections the
// older instance passes on c, until the stream ends or Close.
func (u *Upgrader) receiveConns(c *fdsend.Conn) {
	pending := make(map[uint64]PassedConn)
	defer func() {
		c.Close()
		for _, pc := range pending {
			pc.Conn.Close() // never committed: the older instance kept it
		}
		u.endPassed()
		u.recvWG.Done()
	}()
	c.SetReadDeadline(time.Time{})
	acked := 0
	for {
		c.SetReadLimits(maxConnMsgBytes, 1)
		m, files, err := receive(c)
		if err != nil {
			return
		}
		switch m.Op {
		case opConn:
			bad := ""
			switch {
			case len(files) != 1:
				bad = fmt.Sprintf("%d descriptors with a connection", len(files))
			case m.ID == 0:
				bad = "connection without id"
			case len(pending) >= maxPassInFlight:
				bad = fmt.Sprintf("more than %d connections on their way", maxPassInFlight)
			case len(m.State) > MaxConnState:
				bad = fmt.Sprintf("state of %d bytes", len(m.State))
			case fdname.Check(m.Name) != nil:
				bad = fmt.Sprintf("bad name %q", m.Name)
			}
			if _, dup := pending[m.ID]; dup && bad == "" {
				bad = fmt.Sprintf("connection %d twice", m.ID)
			}
			if bad != "" {
				jsonmsg.CloseAll(files)
				send(c, message{Op: opError, Error: bad})
				return
			}
			nc, err := net.FileConn(files[0])
			files[0].Close()
			if err != nil {
				if send(c, message{Op: opNack, ID: m.ID, Error: err.Error()}) != nil {
					return
				}
				continue
			}
			if err := send(c, message{Op: opAck, ID: m.ID}); err != nil {
				nc.Close()
				return
			}
			pending[m.ID] = PassedConn{Name: m.Name, Conn: nc, State: m.State}
			acked++
			if testHookAcked != nil {
				testHookAcked(acked)
			}
		case opCommit:
			jsonmsg.CloseAll(files)
			pc, ok := pending[m.ID]
			if !ok {
				send(c, message{Op: opError, Error: fmt.Sprintf("commit of connection %d, which is not on its way", m.ID)})
				return
			}
			delete(pending, m.ID)
			select {
			case u.passed <- pc:
			case <-u.recvStop:
				pc.Conn.Close()
				return
			}
		default:
			jsonmsg.CloseAll(files)
			send(c, message{Op: opError, Error: fmt.Sprintf("unexpected %q while receiving connections", m.Op)})
			return
		}
	}
}
