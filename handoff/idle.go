package handoff

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// Taking an idle keep-alive connection away from a running http.Server.
//
// Every connection an HTTPDrainer's server accepts is an idleConn: the
// server reads, writes, sets deadlines and closes through it. Between two
// requests the server's goroutine for the connection waits for the next
// one in a Read on the idleConn. To take the connection, the drainer moves
// the socket's read deadline into the past: that Read returns at once, and
// the server, seeing the error, closes the idleConn, which keeps the socket
// open and gives it to the drainer instead. Nothing of the next request can
// be lost, because of what net/http does (Go 1.26, src/net/http/server.go):
//
//   - After a response, (*conn).serve reports StateIdle (line 2082) and then
//     waits with c.bufr.Peek(4) (line 2103); on any error it returns (line
//     2104), and its deferred c.close() closes c.rwc (lines 1906-1910,
//     1744-1747) after flushing c.bufw, which is empty after the response
//     (finishRequest flushed it, line 1664). It writes nothing else.
//   - c.bufr is a bufio.Reader of 4096 bytes (newBufioReader, line 865)
//     reading from connReader.Read, which reads from c.rwc with the slice it
//     was given (line 812) unless it returns the byte a background read left
//     in cr.byteBuf (hasByte, lines 804-808) without reading c.rwc.
//   - bufio.(*Reader).fill slides the buffered bytes to the start and reads
//     into b.buf[b.w:] (src/bufio/bufio.go), so a read of len(b.buf) bytes
//     means nothing was buffered; with hasByte set, Peek first takes that
//     byte and reads c.rwc for the rest with a shorter slice.
//   - A poller Read whose deadline has passed returns (0, timeout) without
//     reading the socket; it never returns data with that error
//     (src/internal/poll/fd_unix.go, FD.Read).
//
// So a connection is taken only if the server's Read that the deadline
// releases was called, since the server last reported StateIdle and with
// no Read in between, by bufio.(*Reader).Peek directly from (*conn).serve
// through connReader.Read, with a slice as long as the first Read on the
// connection had (the empty buffer's size, 4096 bytes), and if that Read
// returns (0, timeout). Then the server's buffer and byteBuf are empty,
// every byte the client sent after its last request is still in the
// kernel, and the socket is handed over untouched. If the Read returns
// data instead (a request raced with the take), the connection is not
// taken: the server's own deadline is put back and the request is served
// where it is. A connection that has not sent anything since it was
// accepted is taken the same way from its first Read. Once taken, the
// idleConn refuses every further Read and Write, so the server cannot touch
// the socket again whatever it does with the error.
//
// A pipelining client (the next request sent before the previous answer)
// can leave bytes in the server's buffer at StateIdle: the Read then has a
// shorter slice, or is made by readRequest rather than by the idle Peek,
// and the connection is not taken; it is taken after a later request.

// aLongTimeAgo is a read deadline in the past: it releases a blocked Read.
var aLongTimeAgo = time.Unix(1, 0)

// minIdleBuf is the size of net/http's read buffer (bufio's default); a
// first Read with a shorter slice means the assumptions above do not hold,
// and nothing is taken from that connection.
const minIdleBuf = 4096

// idleConn is an accepted connection as the server sees it.
type idleConn struct {
	net.Conn // the socket
	d        *HTTPDrainer

	mu           sync.Mutex
	state        http.ConnState // the last state the server reported
	idleFresh    bool           // no Read started since the server reported StateIdle
	readBefore   bool           // a Read was started on this connection
	bufSize      int            // len of the first Read's slice: the server's buffer
	reading      bool           // a Read is in progress
	readEligible bool           // the Read in progress may be released to take the connection
	readDeadline time.Time      // the read deadline the server asked for
	take         *takeReq       // a take in flight, waiting for the Read to return
	taken        *takeReq       // the take that succeeded, waiting for the server's Close
	closed       bool           // the server closed it (or it was taken)
}

// takeReq is one attempt to take a connection.
type takeReq struct {
	done      chan net.Conn // the socket, or nil if not taken; buffered
	abandoned bool          // the taker is gone: close the socket (guarded by idleConn.mu)
}

func newIdleConn(d *HTTPDrainer, c net.Conn) *idleConn {
	return &idleConn{Conn: c, d: d, state: http.StateNew}
}

// setState records a state the server reported.
func (c *idleConn) setState(st http.ConnState) {
	c.mu.Lock()
	c.state = st
	c.idleFresh = st == http.StateIdle
	c.mu.Unlock()
}

func (c *idleConn) opError(op string) error {
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: net.ErrClosed}
}

func (c *idleConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if c.closed || c.taken != nil {
		c.mu.Unlock()
		return 0, c.opError("read")
	}
	eligible := false
	switch {
	case c.state == http.StateNew && !c.readBefore:
		// Nothing was read yet, so nothing can be lost.
		eligible = len(p) >= minIdleBuf
	case c.state == http.StateIdle && c.idleFresh:
		eligible = len(p) == c.bufSize && calledFromIdlePeek()
	}
	if !c.readBefore {
		c.readBefore = true
		c.bufSize = len(p)
	}
	c.idleFresh = false
	c.reading, c.readEligible = true, eligible
	c.mu.Unlock()
	if eligible {
		c.d.notify()
	}

	n, err := c.Conn.Read(p)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.reading, c.readEligible = false, false
	t := c.take
	if t == nil {
		return n, err
	}
	c.take = nil
	var ne net.Error
	if n == 0 && errors.As(err, &ne) && ne.Timeout() && !c.closed {
		// Released by the take with nothing read: from here the server
		// only closes the connection, and gets it no more.
		c.taken = t
		return 0, err
	}
	// A request raced in, or the connection failed: it stays.
	if n > 0 {
		c.d.raced.Add(1)
	}
	c.Conn.SetReadDeadline(c.readDeadline)
	t.done <- nil
	return n, err
}

func (c *idleConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	gone := c.closed || c.taken != nil
	c.mu.Unlock()
	if gone {
		return 0, c.opError("write")
	}
	return c.Conn.Write(p)
}

// CloseWrite is for net/http's closeWriteAndWait.
func (c *idleConn) CloseWrite() error {
	c.mu.Lock()
	gone := c.closed || c.taken != nil
	c.mu.Unlock()
	if gone {
		return c.opError("close")
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *idleConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

func (c *idleConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readDeadline = t
	if c.take != nil || c.taken != nil || c.closed {
		return nil // put back, or not needed, once the Read returns
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *idleConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.taken != nil || c.closed {
		return nil
	}
	return c.Conn.SetWriteDeadline(t)
}

// Close closes the socket, or, if the connection was taken, gives it to
// the taker.
func (c *idleConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.opError("close")
	}
	c.closed = true
	if t := c.taken; t != nil && !t.abandoned {
		c.Conn.SetDeadline(time.Time{})
		t.done <- c.Conn
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// startTake releases the server's Read if the connection may be taken now;
// it returns nil if not.
func (c *idleConn) startTake() *takeReq {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.reading || !c.readEligible || c.take != nil || c.taken != nil || c.closed {
		return nil
	}
	t := &takeReq{done: make(chan net.Conn, 1)}
	if err := c.Conn.SetReadDeadline(aLongTimeAgo); err != nil {
		return nil
	}
	c.take = t
	return t
}

// abandon gives up waiting for t: a socket it already yielded, or yields
// later, is closed.
func (c *idleConn) abandon(t *takeReq) {
	c.mu.Lock()
	t.abandoned = true
	c.mu.Unlock()
	select {
	case s := <-t.done:
		if s != nil {
			s.Close()
		}
	default:
	}
}

// idleWaitFrames are the callers of idleConn.Read, innermost first, when
// the server waits for the next request on a keep-alive connection.
var idleWaitFrames = [...]string{
	"net/http.(*connReader).Read",
	"bufio.(*Reader).fill",
	"bufio.(*Reader).Peek",
	"net/http.(*conn).serve",
}

// calledFromIdlePeek reports whether idleConn.Read was called by the
// server's wait for a next request (server.go line 2103), not by
// readRequest or a handler reading a body (as for a request that was
// pipelined and read from the buffer without a Read).
func calledFromIdlePeek() bool {
	var pcs [16]uintptr
	n := runtime.Callers(3, pcs[:]) // skip Callers, this function, idleConn.Read
	frames := runtime.CallersFrames(pcs[:n])
	for _, want := range idleWaitFrames {
		f, more := frames.Next()
		if f.Function != want {
			return false
		}
		if !more && want != idleWaitFrames[len(idleWaitFrames)-1] {
			return false
		}
	}
	return true
}

// idleListener wraps every connection its listener accepts in an idleConn.
type idleListener struct {
	net.Listener
	d *HTTPDrainer
}

func (l idleListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if _, ok := c.(*tls.Conn); ok {
		return c, nil // TLS state cannot move: drained as before
	}
	return newIdleConn(l.d, c), nil
}

// handedAddr is the address of the listener that yields handed-in
// connections.
type handedAddr struct{}

func (handedAddr) Network() string { return "handoff" }
func (handedAddr) String() string  { return "handed-in connections" }

// injectListener yields the connections given to ServeConn.
type injectListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *injectListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: "handoff", Addr: handedAddr{}, Err: net.ErrClosed}
	}
}

func (l *injectListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *injectListener) Addr() net.Addr { return handedAddr{} }

// notify wakes every TakeAll waiting for a change.
func (d *HTTPDrainer) notify() {
	d.mu.Lock()
	if d.wake != nil {
		close(d.wake)
		d.wake = nil
	}
	d.mu.Unlock()
}

// wakeLocked returns a channel closed at the next change; d.mu is held.
func (d *HTTPDrainer) wakeLocked() <-chan struct{} {
	if d.wake == nil {
		d.wake = make(chan struct{})
	}
	return d.wake
}

// TakeIdle takes from the server every connection that is idle now:
// between two HTTP/1.x requests with nothing of the next one read, or
// accepted with nothing read yet. The server lets go of each without
// noticing (its StateClosed hook runs), and the sockets returned are the
// caller's, with no byte the client sent consumed and no deadline set: the
// caller serves them elsewhere (ServeConn on another drainer, or passed to
// another process) or closes them. A connection in the middle of a request
// is left to finish it; so is one whose next request arrives as it is
// being taken. TLS and HTTP/2 connections are never taken. If ctx ends
// while the server lets go, TakeIdle returns what it has with ctx's error;
// connections let go of later are closed.
func (d *HTTPDrainer) TakeIdle(ctx context.Context) ([]net.Conn, error) {
	if d.srv == nil {
		return nil, fmt.Errorf("handoff: HTTPDrainer.TakeIdle with a nil server: %w", syscall.EINVAL)
	}
	d.mu.Lock()
	cands := make([]*idleConn, 0, len(d.conns))
	for c := range d.conns {
		if ic, ok := c.(*idleConn); ok {
			cands = append(cands, ic)
		}
	}
	d.mu.Unlock()
	type pending struct {
		c *idleConn
		t *takeReq
	}
	var takes []pending
	for _, c := range cands {
		if t := c.startTake(); t != nil {
			takes = append(takes, pending{c, t})
		}
	}
	var got []net.Conn
	for i, p := range takes {
		select {
		case s := <-p.t.done:
			if s != nil {
				got = append(got, s)
			}
		case <-ctx.Done():
			for _, q := range takes[i:] {
				q.c.abandon(q.t)
			}
			return got, ctx.Err()
		}
	}
	return got, nil
}

// TakeAll takes every connection of the server as it becomes idle (see
// TakeIdle) and passes each to give, which then owns it, until the server
// has no connection left; then it returns nil. Connections in the middle
// of a request finish it first. Stop accepting first (close or hand over
// the listeners), or new connections keep it going. If ctx ends first, it
// returns ctx's error and the connections not taken stay with the server:
// Drain them. Run at most one TakeAll at a time.
func (d *HTTPDrainer) TakeAll(ctx context.Context, give func(net.Conn)) error {
	if d.srv == nil || give == nil {
		return fmt.Errorf("handoff: HTTPDrainer.TakeAll with a nil server or give: %w", syscall.EINVAL)
	}
	for {
		d.mu.Lock()
		left := len(d.conns)
		wake := d.wakeLocked()
		d.mu.Unlock()
		if left == 0 {
			return nil
		}
		got, err := d.TakeIdle(ctx)
		for _, c := range got {
			give(c)
		}
		if err != nil {
			return err
		}
		if len(got) > 0 {
			continue
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ServeConn serves c, a connection accepted elsewhere (taken from another
// server with TakeIdle, or received from another process), as if the
// server had accepted it; c is the drainer's from here. Its bytes not yet
// read are read as the start of its next request. ServeConn returns once
// the server has c; on a drainer that is draining it closes c and returns
// http.ErrServerClosed.
func (d *HTTPDrainer) ServeConn(c net.Conn) error {
	if d.srv == nil || c == nil {
		if c != nil {
			c.Close()
		}
		return fmt.Errorf("handoff: HTTPDrainer.ServeConn with a nil server or connection: %w", syscall.EINVAL)
	}
	d.mu.Lock()
	if d.draining.Load() {
		d.mu.Unlock()
		c.Close()
		return http.ErrServerClosed
	}
	if d.inject == nil {
		l := &injectListener{conns: make(chan net.Conn), done: make(chan struct{})}
		d.inject = l
		d.listeners[l] = struct{}{}
		d.serving.Add(1)
		go func() {
			defer d.serving.Done()
			d.srv.Serve(idleListener{l, d})
		}()
	}
	l := d.inject
	d.mu.Unlock()
	select {
	case l.conns <- c:
		return nil
	case <-l.done:
		c.Close()
		return http.ErrServerClosed
	}
}
