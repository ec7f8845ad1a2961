package handoff

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultIdleGrace is the idle grace of an HTTPDrainer made with 0.
const DefaultIdleGrace = 5 * time.Second

// HTTPDrainer serves an http.Server so that it can be drained without
// losing a request: every request that reaches a connection the server
// accepted gets an answer.
//
// http.Server.Shutdown does not promise that: a request read after Shutdown
// began is dropped without an answer (the server sees it is shutting down
// and closes the connection; golang/go#75591), which happens to a request
// sent on a connection accepted just before, and an idle keep-alive
// connection is closed at once, racing with a request the client may be
// sending on it. Drain instead stops accepting, lets the server go on
// reading requests, answers each with "Connection: close" so the client
// opens its next connection elsewhere (to the newer instance), closes a
// connection that stays idle (or sends nothing after being accepted) for
// the idle grace period, and waits until no connection is left. The last
// race of HTTP/1.1 keep-alive remains for a client that sends on a
// connection just as its grace period ends; Go's http.Transport retries
// idempotent requests in that case.
//
// It covers HTTP/1.x; HTTP/2 connections are closed after the grace period
// like idle ones. Hijacked connections are the handler's to close.
//
// Instead of being drained, idle keep-alive connections can be taken from
// the running server (TakeIdle, TakeAll) and served by another one
// (ServeConn), in this process or, passed as descriptors, in another: the
// client keeps its TCP connection and sees no close. The server sees each
// connection through a wrapper of the drainer's; see idle.go for how the
// idle moment is found without a byte of the next request being read.
type HTTPDrainer struct {
	srv   *http.Server
	grace time.Duration

	draining atomic.Bool

	mu        sync.Mutex
	conns     map[net.Conn]*connInfo
	listeners map[net.Listener]struct{}
	serving   sync.WaitGroup
	changed   chan struct{} // signalled on every connection state change
	wake      chan struct{} // closed on the next change (TakeAll); nil if none waits
	inject    *injectListener
	raced     atomic.Int64 // takes given up because a request arrived
}

// connInfo is what the drainer knows of one connection.
type connInfo struct {
	state http.ConnState
	since time.Time // when it entered state
}

// NewHTTPDrainer prepares srv to be drained: it wraps srv.Handler (nil
// means http.DefaultServeMux) and srv.ConnState (an existing hook is still
// called). Call it before serving, and serve with the drainer's Serve.
// idleGrace is how long Drain leaves an idle or silent connection open for
// a last request; 0 means DefaultIdleGrace.
// A nil srv gives a drainer whose Serve fails.
func NewHTTPDrainer(srv *http.Server, idleGrace time.Duration) *HTTPDrainer {
	if idleGrace <= 0 {
		idleGrace = DefaultIdleGrace
	}
	d := &HTTPDrainer{
		srv:       srv,
		grace:     idleGrace,
		conns:     make(map[net.Conn]*connInfo),
		listeners: make(map[net.Listener]struct{}),
		changed:   make(chan struct{}, 1),
	}
	if srv == nil {
		return d
	}
	next := srv.Handler
	if next == nil {
		next = http.DefaultServeMux
	}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.draining.Load() {
			// The server closes the connection after this response, and
			// the client opens its next one elsewhere.
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
	hook := srv.ConnState
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		d.track(c, st)
		if hook != nil {
			hook(c, st)
		}
	}
	return d
}

// track records a connection's new state.
func (d *HTTPDrainer) track(c net.Conn, st http.ConnState) {
	if ic, ok := c.(*idleConn); ok {
		ic.setState(st)
	}
	d.mu.Lock()
	switch st {
	case http.StateClosed, http.StateHijacked:
		delete(d.conns, c)
	default:
		d.conns[c] = &connInfo{state: st, since: time.Now()}
	}
	if d.wake != nil {
		close(d.wake)
		d.wake = nil
	}
	d.mu.Unlock()
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// Serve serves srv on l until Drain closes l, then returns
// http.ErrServerClosed; other errors are srv.Serve's. l belongs to the
// drainer from here: Drain closes it. Serve on a drainer that is draining
// closes l and returns http.ErrServerClosed at once.
func (d *HTTPDrainer) Serve(l net.Listener) error {
	if d.srv == nil || l == nil {
		return fmt.Errorf("handoff: HTTPDrainer.Serve with a nil server or listener: %w", syscall.EINVAL)
	}
	d.mu.Lock()
	if d.draining.Load() {
		d.mu.Unlock()
		l.Close()
		return http.ErrServerClosed
	}
	d.listeners[l] = struct{}{}
	d.serving.Add(1)
	d.mu.Unlock()
	defer d.serving.Done()
	err := d.srv.Serve(idleListener{l, d})
	if d.draining.Load() {
		return http.ErrServerClosed
	}
	return err
}

// Drain stops accepting (it closes the listeners given to Serve), answers
// every request still to come on an accepted connection with
// "Connection: close", closes connections idle for the grace period, and
// returns nil once no connection is left; the server is then closed. If ctx
// ends first, the remaining connections are closed and ctx's error is
// returned. Calling Drain again waits again.
func (d *HTTPDrainer) Drain(ctx context.Context) error {
	if d.srv == nil {
		return fmt.Errorf("handoff: HTTPDrainer.Drain with a nil server: %w", syscall.EINVAL)
	}
	d.mu.Lock()
	d.draining.Store(true)
	var errs []error
	for l := range d.listeners {
		if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
		delete(d.listeners, l)
	}
	d.mu.Unlock()

	// Once every Serve has returned, every connection it accepted has been
	// reported as StateNew: none can be missed below.
	served := make(chan struct{})
	go func() { d.serving.Wait(); close(served) }()
	select {
	case <-served:
	case <-ctx.Done():
		d.srv.Close()
		return ctx.Err()
	}

	start := time.Now()
	timer := time.NewTimer(d.grace)
	defer timer.Stop()
	for {
		left, wait := d.closeIdle(start)
		if left == 0 {
			break
		}
		timer.Reset(wait)
		select {
		case <-d.changed:
		case <-timer.C:
		case <-ctx.Done():
			d.srv.Close()
			return ctx.Err()
		}
	}
	d.srv.Close() // nothing left: this only marks the server closed
	return errors.Join(errs...)
}

// closeIdle closes connections idle or silent for the grace period (counted
// from the later of start and the time they became so) and returns how many
// connections are left and how long until the next one's grace ends.
func (d *HTTPDrainer) closeIdle(start time.Time) (left int, wait time.Duration) {
	now := time.Now()
	wait = d.grace
	d.mu.Lock()
	defer d.mu.Unlock()
	for c, ci := range d.conns {
		if ci.state != http.StateIdle && ci.state != http.StateNew {
			left++
			continue
		}
		end := ci.since
		if end.Before(start) {
			end = start
		}
		end = end.Add(d.grace)
		if !now.Before(end) {
			c.Close() // the server reports StateClosed when it notices
			delete(d.conns, c)
			continue
		}
		left++
		wait = min(wait, end.Sub(now))
	}
	return left, wait
}
