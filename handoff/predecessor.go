package handoff

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdname"
	"github.com/fdsend/fdsend/internal/jsonmsg"
)

// serve accepts the next instance's connections on our socket at the
// hand-off point until it is closed.
func (u *Upgrader) serve(l *fdsend.Listener) {
	defer u.wg.Done()
	delay := 5 * time.Millisecond
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors or the like: wait and go on.
			time.Sleep(delay)
			delay = min(2*delay, time.Second)
			continue
		}
		delay = 5 * time.Millisecond
		u.mu.Lock()
		if u.state != stServing || u.point != l {
			u.mu.Unlock()
			c.Close()
			return
		}
		u.conns[c] = struct{}{}
		u.wg.Add(1)
		u.mu.Unlock()
		go u.serveConn(c)
	}
}

// serveConn answers one newer instance: its requests for sockets, then
// prepare and ready. It drops a peer that is not allowed, that breaks the
// protocol, or that is not ready within ReadyTimeout; none of that changes
// anything for this instance, which goes on serving.
func (u *Upgrader) serveConn(c *fdsend.Conn) {
	prepared := false
	defer func() {
		u.mu.Lock()
		delete(u.conns, c)
		if u.committing == c {
			u.committing = nil
		}
		serving := u.state == stServing
		u.mu.Unlock()
		c.Close()
		if prepared && serving {
			// The newer instance vanished between prepare and ready: if it
			// had renamed its socket over the point first, take it back.
			go u.reclaim()
		}
		u.wg.Done()
	}()
	c.SetReadLimits(maxRequestBytes, 0) // requests carry no descriptors
	cred, err := c.PeerCred()
	if err != nil || !u.cfg.allowed(cred) {
		why := fmt.Sprintf("uid %d gid %d is not allowed", cred.UID, cred.GID)
		if err != nil {
			why = "its credentials cannot be read: " + err.Error()
		}
		send(c, message{Op: opRefused, Error: why})
		return
	}
	if send(c, message{Op: opHello, Version: protocolVersion, PID: os.Getpid(), Features: []string{featureConns, featureKeys}}) != nil {
		return
	}
	c.SetReadDeadline(time.Now().Add(u.cfg.ReadyTimeout))
	var sent []string // names handed to this peer
	for {
		m, files, err := receive(c)
		jsonmsg.CloseAll(files)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				send(c, message{Op: opError, Error: fmt.Sprintf("not ready within %v (the serving instance's ReadyTimeout); it goes on serving", u.cfg.ReadyTimeout)})
			} else if errors.Is(err, errProtocol) || errors.Is(err, fdsend.ErrProtocol) {
				send(c, message{Op: opError, Error: err.Error()})
			}
			return
		}
		switch m.Op {
		case opKeys:
			if prepared {
				send(c, message{Op: opError, Error: "keys after prepare"})
				return
			}
			if send(c, message{Op: opKeys, Keys: u.keysToSend()}) != nil {
				return
			}
		case opTake:
			if prepared {
				send(c, message{Op: opError, Error: "take after prepare"})
				return
			}
			names, err := u.answerTake(c, m.Want)
			if err != nil {
				return
			}
			sent = append(sent, names...)
		case opPrepare:
			u.mu.Lock()
			busy := u.state != stServing || u.committing != nil || prepared
			if !busy {
				u.committing = c
			}
			u.mu.Unlock()
			if busy {
				send(c, message{Op: opError, Error: "another hand-over is in progress, or this instance is shutting down"})
				return
			}
			prepared = true
			// From here the newer instance binds its socket and renames it
			// over the point, which takes moments: a newer instance that
			// hangs instead of dying must not stall every later upgrade,
			// so it gets exchangeTimeout, after which we take the point
			// back as if it had died.
			c.SetReadDeadline(time.Now().Add(exchangeTimeout))
			if send(c, message{Op: opPrepared}) != nil {
				return
			}
		case opReady:
			if !prepared {
				send(c, message{Op: opError, Error: "ready without prepare"})
				return
			}
			prepared = false
			var p *passer
			if m.Conns {
				pid := cred.PID
				p = newPasser(c, pid)
			}
			u.handOver(c, sent, p)
			err := send(c, message{Op: opDraining})
			if p == nil {
				return
			}
			if err != nil {
				p.end(err)
				return
			}
			// The connection now carries the connections the application
			// passes, and opens to them only after opDraining.
			close(p.started)
			p.read()
			return
		default:
			send(c, message{Op: opError, Error: fmt.Sprintf("unknown request %q", m.Op)})
			return
		}
	}
}

// answerTake answers an opTake: for each want, the socket or file of that
// name if it is open and matches. It returns the names handed over.
func (u *Upgrader) answerTake(c *fdsend.Conn, wants []want) ([]string, error) {
	if err := checkWants(wants); err != nil {
		send(c, message{Op: opError, Error: err.Error()})
		return nil, err
	}
	// A file the caller closes between the check and the write makes
	// WriteMsg refuse the whole message (writing nothing): look again.
	for attempt := 0; ; attempt++ {
		items, files, names := u.match(wants)
		err := send(c, message{Op: opFiles, Items: items}, files...)
		var ae *fdsend.ArgError
		if errors.As(err, &ae) && attempt < 3 {
			continue
		}
		return names, err
	}
}

// checkWants checks a request from a peer.
func checkWants(wants []want) error {
	if len(wants) > maxWantPerRequest {
		return fmt.Errorf("%w: %d wants in one request, at most %d", errProtocol, len(wants), maxWantPerRequest)
	}
	seen := make(map[string]bool, len(wants))
	for _, w := range wants {
		if err := fdname.Check(w.Name); err != nil {
			return fmt.Errorf("%w: %v", errProtocol, err)
		}
		if seen[w.Name] {
			return fmt.Errorf("%w: %q asked for twice", errProtocol, w.Name)
		}
		seen[w.Name] = true
		switch w.Kind {
		case kindListener, kindPacket, kindFile:
		default:
			return fmt.Errorf("%w: %q asked for as kind %q", errProtocol, w.Name, w.Kind)
		}
	}
	return nil
}

// match looks up each want.
func (u *Upgrader) match(wants []want) (items []item, files []any, names []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	items = make([]item, len(wants))
	for i, w := range wants {
		e := u.entries[w.Name]
		switch {
		case e == nil || e.obj == nil || !isOpen(e.obj):
			items[i] = item{Name: w.Name, Status: statusAbsent}
		case e.kind != w.Kind || e.network != w.Network || (w.Addr != e.addr && w.Addr != e.local):
			items[i] = item{Name: w.Name, Status: statusDiffers, Kind: e.kind, Network: e.network, Addr: e.addr, Local: e.local}
		default:
			items[i] = item{Name: w.Name, Status: statusOK, Kind: e.kind, Network: e.network, Addr: e.addr, Local: e.local}
			files = append(files, e.obj)
			names = append(names, w.Name)
		}
	}
	return items, files, names
}

// isOpen reports whether the caller still has obj open.
func isOpen(obj any) bool {
	sc, ok := obj.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	return rc.Control(func(uintptr) {}) == nil
}

// handOver makes this instance the old one: the newer instance, connected
// on c, has taken the point over and holds the sockets named in sent.
// If the newer instance takes connections, p passes them.
func (u *Upgrader) handOver(c *fdsend.Conn, sent []string, p *passer) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.state = stHandedOver
	u.committing = nil
	u.passer = p
	for _, name := range sent {
		if e := u.entries[name]; e != nil {
			if ul, ok := e.obj.(*net.UnixListener); ok {
				// The file is the newer instance's now.
				ul.SetUnlinkOnClose(false)
			}
		}
	}
	if u.point != nil {
		u.point.Close() // its path is our old temporary one: nothing is removed
		u.point = nil
	}
	for other := range u.conns {
		if other != c {
			other.Close()
		}
	}
	close(u.draining)
}

// reclaim puts this instance back at the hand-off point if a newer one
// renamed its socket over it and then vanished before saying ready, so
// that the next upgrade finds the instance that still serves.
func (u *Upgrader) reclaim() {
	u.mu.Lock()
	serving := u.state == stServing
	u.mu.Unlock()
	if !serving || u.ownsPoint() {
		return
	}
	lk, err := acquireLock(lockPath(u.cfg.Path), u.cfg.Mode, u.cfg.LockTimeout)
	if err != nil {
		return
	}
	defer lk.release()
	u.mu.Lock()
	serving = u.state == stServing
	u.mu.Unlock()
	if !serving || u.ownsPoint() {
		return
	}
	if c, err := net.Dial("unix", u.cfg.Path); err == nil {
		c.Close() // someone live serves there
		return
	}
	tmp := tempPath(u.cfg.Path, os.Getpid())
	l, info, err := listenPoint(tmp, u.cfg.Mode)
	if err != nil {
		return
	}
	if err := os.Rename(tmp, u.cfg.Path); err != nil {
		l.Close()
		return
	}
	u.mu.Lock()
	if u.state != stServing {
		// Closed meanwhile: undo, we still hold the lock.
		u.mu.Unlock()
		l.Close()
		os.Remove(u.cfg.Path)
		return
	}
	old := u.point
	u.point, u.pointInfo = l, info
	u.wg.Add(1)
	go u.serve(l)
	u.mu.Unlock()
	if old != nil {
		old.Close()
	}
}

// ownsPoint reports whether the hand-off point is still our socket file.
func (u *Upgrader) ownsPoint() bool {
	u.mu.Lock()
	info := u.pointInfo
	u.mu.Unlock()
	if info == nil {
		return false
	}
	fi, err := os.Lstat(u.cfg.Path)
	return err == nil && os.SameFile(fi, info)
}

// listenPoint binds an instance's socket at path with mode (set before
// anyone can connect) and returns it with its file's identity.
func listenPoint(path string, mode os.FileMode) (*fdsend.Listener, os.FileInfo, error) {
	l, err := fdsend.ListenConfig{Mode: mode}.Listen(path)
	if err != nil {
		return nil, nil, err
	}
	info, err := os.Lstat(path)
	if err != nil {
		l.Close()
		return nil, nil, err
	}
	return l, info, nil
}
