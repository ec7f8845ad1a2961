package handoff

import (
	"context"
	"errors"
	"net"
)

// PassIdle hands the HTTP/1.1 keep-alive connections d serves to the newer
// instance that has taken over u, each under name as soon as it is idle
// (TakeAll: between requests, with nothing of the next one read), so that
// its client keeps its TCP connection. Call it once u.Draining() has
// closed. It first stops d from accepting (it closes the listeners d
// serves; the newer instance accepts from the same sockets), then passes
// connections until d has none left or ctx ends, and returns how many went.
//
// A connection that cannot be passed — the newer instance did not ask for
// connections (ErrNoTaker), or the transfer failed — is closed, as a drain
// closes an idle connection, and PassIdle stops passing: what is left
// then, and what is left when ctx ends (TLS and HTTP/2 connections never
// move, nor does a client that keeps requests in flight), is for Drain,
// which the caller runs after PassIdle as before.
func (d *HTTPDrainer) PassIdle(ctx context.Context, u *Upgrader, name string) (int, error) {
	d.mu.Lock()
	for l := range d.listeners {
		if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			d.mu.Unlock()
			return 0, err
		}
	}
	d.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	passed := 0
	var failed error
	err := d.TakeAll(ctx, func(c net.Conn) {
		if failed != nil {
			c.Close()
			return
		}
		if err := u.PassConn(name, c, nil); err != nil {
			c.Close()
			failed = err
			cancel()
			return
		}
		passed++
	})
	if failed != nil {
		return passed, failed
	}
	return passed, err
}

// ServePassed serves on d every connection an older instance passes to u
// under name (Config.TakeConns), as if d had accepted it, until u's
// Conns channel closes; a connection under another name is closed. Run it
// in a goroutine of its own once d serves.
func (d *HTTPDrainer) ServePassed(u *Upgrader, name string) {
	for pc := range u.Conns() {
		if pc.Name != name {
			pc.Conn.Close()
			continue
		}
		d.ServeConn(pc.Conn)
	}
}
