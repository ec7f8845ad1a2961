package handoff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdname"
	"github.com/fdsend/fdsend/internal/jsonmsg"
	"github.com/fdsend/fdsend/internal/sockfile"
)

// Endpoint names one socket for ListenAll: the name it is handed over
// under, and the network and address it listens on, as for net.Listen.
type Endpoint struct {
	Name    string
	Network string
	Address string
}

// Listen returns the listening socket registered as name: the older
// instance's, if it has one of that name listening on the same network and
// address (the address as it was asked for, or the one it is bound to),
// and otherwise a new one from cfg.ListenConfig. Either way it is
// registered under name, to be handed to the next instance. The listener
// belongs to the caller; it is pollable (deadlines and Close work) and its
// descriptor is close-on-exec.
//
// Names follow the rules of activation.ValidateName, and each may be
// registered once. An inherited Unix socket's file is left to the older
// instance until Ready, then removed by this listener's Close unless it is
// handed on in turn. A stale Unix socket file (nobody listening) at address
// is replaced.
func (u *Upgrader) Listen(name, network, address string) (net.Listener, error) {
	ls, err := u.ListenAll([]Endpoint{{Name: name, Network: network, Address: address}})
	if err != nil {
		return nil, err
	}
	return ls[0], nil
}

// ListenAll is Listen for many sockets at once, asking the older instance
// for up to 1024 of them per request: the way to take thousands. The
// listeners are in the order of eps. On error nothing is registered and
// every socket opened or received for the call is closed.
func (u *Upgrader) ListenAll(eps []Endpoint) ([]net.Listener, error) {
	wants := make([]want, len(eps))
	for i, ep := range eps {
		wants[i] = want{Name: ep.Name, Kind: kindListener, Network: ep.Network, Addr: ep.Address}
	}
	return obtain(u, "listen", wants, func(f *os.File) (net.Listener, error) {
		return net.FileListener(f)
	}, func(w want) (net.Listener, error) {
		if err := removeStaleUnix(w.Network, w.Addr); err != nil {
			return nil, err
		}
		return u.cfg.ListenConfig.Listen(context.Background(), w.Network, w.Addr)
	}, func(l net.Listener) string { return l.Addr().String() },
		func(l net.Listener) { l.Close() })
}

// ListenPacket is Listen for packet sockets ("udp", "unixgram", ...): the
// older instance's socket of that name on the same network and address, or
// a new one from cfg.ListenConfig. Ownership and rules are as for Listen.
// While both instances run, a datagram goes to whichever reads first.
func (u *Upgrader) ListenPacket(name, network, address string) (net.PacketConn, error) {
	cs, err := obtain(u, "listen", []want{{Name: name, Kind: kindPacket, Network: network, Addr: address}},
		func(f *os.File) (net.PacketConn, error) {
			return net.FilePacketConn(f)
		}, func(w want) (net.PacketConn, error) {
			if err := removeStaleUnix(w.Network, w.Addr); err != nil {
				return nil, err
			}
			return u.cfg.ListenConfig.ListenPacket(context.Background(), w.Network, w.Addr)
		}, func(c net.PacketConn) string { return c.LocalAddr().String() },
		func(c net.PacketConn) { c.Close() })
	if err != nil {
		return nil, err
	}
	return cs[0], nil
}

// File returns the file registered as name: the older instance's file of
// that name if it has one (sharing its open file description: offset,
// flags, and for a socket its connection), otherwise what open returns, or,
// if open is nil, an error wrapping ErrNotInherited. The file is registered
// under name to be handed to the next instance, and belongs to the caller;
// it is close-on-exec, and pollable if the older instance's was
// non-blocking.
func (u *Upgrader) File(name string, open func() (*os.File, error)) (*os.File, error) {
	fs, err := obtain(u, "file", []want{{Name: name, Kind: kindFile}},
		func(f *os.File) (*os.File, error) { return f, nil },
		func(w want) (*os.File, error) {
			if open == nil {
				return nil, fmt.Errorf("handoff: file %q: %w", w.Name, ErrNotInherited)
			}
			f, err := open()
			if err == nil && f == nil {
				err = fmt.Errorf("handoff: file %q: open returned neither a file nor an error: %w", w.Name, syscall.EINVAL)
			}
			return f, err
		}, func(*os.File) string { return "" },
		func(f *os.File) { f.Close() })
	if err != nil {
		return nil, err
	}
	return fs[0], nil
}

// obtain is Listen, ListenPacket and File: it checks and reserves the
// names, asks the older instance for them in batches, converts what
// arrives (fromFile; the received file is closed unless fromFile returns
// it), opens the rest afresh, and registers the lot. On error everything
// obtained is closed and nothing stays registered.
func obtain[T any](u *Upgrader, op string, wants []want,
	fromFile func(*os.File) (T, error), fresh func(want) (T, error),
	local func(T) string, closeT func(T)) ([]T, error) {
	if len(wants) == 0 {
		return nil, nil
	}
	if err := u.reserve(wants); err != nil {
		return nil, err
	}
	out := make([]T, 0, len(wants))
	inherited := make([]bool, 0, len(wants))
	fail := func(err error) ([]T, error) {
		for _, v := range out {
			closeT(v)
		}
		u.unreserve(wants)
		return nil, err
	}
	for start := 0; start < len(wants); start += takeBatch {
		chunk := wants[start:min(start+takeBatch, len(wants))]
		files, err := u.take(chunk)
		if err != nil {
			return fail(err)
		}
		// Convert what arrived at once (each received descriptor is
		// closed as soon as it is converted), then open the rest afresh,
		// in order.
		got := make([]T, len(chunk))
		have := make([]bool, len(chunk))
		dropGot := func(from int) {
			for j := from; j < len(chunk); j++ {
				if have[j] {
					closeT(got[j])
				}
			}
		}
		for i, w := range chunk {
			if files[i] == nil {
				continue
			}
			v, err := fromFile(files[i])
			if any(v) != any(files[i]) {
				files[i].Close() // converted into a duplicate (or failed)
			}
			files[i] = nil
			if err != nil {
				jsonmsg.CloseAll(files)
				dropGot(0)
				return fail(fmt.Errorf("handoff: %s %q: the descriptor the older instance handed over: %w", op, w.Name, err))
			}
			got[i], have[i] = v, true
		}
		for i, w := range chunk {
			if !have[i] {
				v, err := fresh(w)
				if err != nil {
					dropGot(i + 1)
					return fail(freshError(op, w, err))
				}
				got[i] = v
			}
			out = append(out, got[i])
			inherited = append(inherited, have[i])
		}
	}
	u.mu.Lock()
	for i, w := range wants {
		u.entries[w.Name] = &entry{kind: w.Kind, network: w.Network, addr: w.Addr, local: local(out[i]), obj: out[i], inherited: inherited[i]}
	}
	u.mu.Unlock()
	return out, nil
}

func freshError(op string, w want, err error) error {
	if w.Kind == kindFile {
		return err
	}
	return fmt.Errorf("handoff: %s %q on %s %s: %w", op, w.Name, w.Network, w.Addr, err)
}

// reserve checks the names and claims them, so that concurrent calls
// cannot register one twice.
func (u *Upgrader) reserve(wants []want) error {
	seen := make(map[string]bool, len(wants))
	for _, w := range wants {
		if err := fdname.Check(w.Name); err != nil {
			return fmt.Errorf("handoff: %w", err)
		}
		if seen[w.Name] {
			return fmt.Errorf("handoff: name %q asked for twice: %w", w.Name, syscall.EINVAL)
		}
		seen[w.Name] = true
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	switch u.state {
	case stAborted:
		return u.abortErr
	case stCommitting:
		return fmt.Errorf("handoff: Ready is running: %w", syscall.EBUSY)
	case stHandedOver:
		return fmt.Errorf("handoff: a newer instance has taken over: %w", net.ErrClosed)
	case stClosed:
		return fmt.Errorf("handoff: closed: %w", net.ErrClosed)
	}
	for _, w := range wants {
		if _, ok := u.entries[w.Name]; ok {
			return fmt.Errorf("handoff: name %q is registered already: %w", w.Name, syscall.EEXIST)
		}
	}
	for _, w := range wants {
		u.entries[w.Name] = &entry{kind: w.Kind} // placeholder, obj nil
	}
	return nil
}

func (u *Upgrader) unreserve(wants []want) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, w := range wants {
		if e := u.entries[w.Name]; e != nil && e.obj == nil {
			delete(u.entries, w.Name)
		}
	}
}

// take asks the older instance for wants (at most takeBatch) and returns,
// in the same order, the file it handed over for each, or nil where it has
// none that matches. Without an older instance every entry is nil.
func (u *Upgrader) take(wants []want) ([]*os.File, error) {
	u.takeMu.Lock()
	defer u.takeMu.Unlock()
	out := make([]*os.File, len(wants))
	u.mu.Lock()
	peer, pid := u.peer, u.peerPID
	u.mu.Unlock()
	if peer == nil {
		return out, nil
	}
	if err := send(peer, message{Op: opTake, Want: wants}); err != nil {
		return nil, u.peerError(pid, "asking for sockets", err)
	}
	peer.SetReadLimits(maxAnswerBytes, len(wants))
	peer.SetReadDeadline(time.Now().Add(exchangeTimeout))
	m, files, err := receive(peer)
	if err != nil {
		return nil, u.peerError(pid, "reading its answer", err)
	}
	if m.Op == opError {
		jsonmsg.CloseAll(files)
		return nil, fmt.Errorf("handoff: the older instance (process %d) answered: %s", pid, m.Error)
	}
	if err := checkAnswer(m, wants, len(files)); err != nil {
		jsonmsg.CloseAll(files)
		return nil, fmt.Errorf("%w (older instance, process %d)", err, pid)
	}
	k := 0
	for i, it := range m.Items {
		if it.Status == statusOK {
			out[i] = files[k]
			k++
		}
	}
	return out, nil
}

// checkAnswer checks an opFiles answer against the request: one item per
// want, each naming its want, and one file per item that says it has one.
// The names, not the positions of the files, tie each socket to a want.
func checkAnswer(m message, wants []want, nfiles int) error {
	if m.Op != opFiles {
		return fmt.Errorf("%w: answer %q to a %q request", errProtocol, m.Op, opTake)
	}
	if len(m.Items) != len(wants) {
		return fmt.Errorf("%w: %d items in the answer to %d wants", errProtocol, len(m.Items), len(wants))
	}
	ok := 0
	for i, it := range m.Items {
		if it.Name != wants[i].Name {
			return fmt.Errorf("%w: item %d is %q, the request asked for %q", errProtocol, i, it.Name, wants[i].Name)
		}
		switch it.Status {
		case statusOK:
			if it.Kind != wants[i].Kind {
				return fmt.Errorf("%w: %q handed over as a %s, asked for as a %s", errProtocol, it.Name, it.Kind, wants[i].Kind)
			}
			ok++
		case statusAbsent, statusDiffers:
		default:
			return fmt.Errorf("%w: item %q has status %q", errProtocol, it.Name, it.Status)
		}
	}
	if ok != nfiles {
		return fmt.Errorf("%w: %d items handed over, %d descriptors arrived", errProtocol, ok, nfiles)
	}
	return nil
}

// peerError describes a failed exchange with the older instance.
func (u *Upgrader) peerError(pid int, what string, err error) error {
	return fmt.Errorf("handoff: %s from the older instance (process %d): %w", what, pid, err)
}

// removeStaleUnix clears a Unix socket path for a fresh listener by the
// rule of internal/sockfile (Go's listeners refuse an existing file): a
// stale socket file is removed; one in use, or anything but a socket, is
// refused.
func removeStaleUnix(network, address string) error {
	if !strings.HasPrefix(network, "unix") || address == "" || strings.HasPrefix(address, "@") {
		return nil
	}
	return sockfile.Clear(address)
}

// testHookRenamed, if set, runs in Ready right after the rename, before the
// older instance is told: tests make a successor die there.
var testHookRenamed func()

// Ready takes the hand-off point over and tells the older instance, if
// any, to drain. Call it once this instance is set up to serve. It binds
// this instance's socket at a temporary path beside the point and renames
// it over the point while holding the lock, so that the next instance
// finds one of the two there at every moment; from then on this instance
// answers the next one's requests, in a goroutine, until it takes over in
// turn (Draining) or Close.
//
// If Ready fails before the rename (the older instance stopped waiting, the
// directory is not writable, ...), the upgrade is abandoned: the older
// instance goes on serving, the lock is released, and this process should
// close what it took and exit. If the older instance cannot confirm after
// the rename, this instance is ready nonetheless and the error wraps
// ErrUnconfirmed; an older instance that died meanwhile is not an error.
func (u *Upgrader) Ready() error {
	u.readyMu.Lock()
	defer u.readyMu.Unlock()
	u.mu.Lock()
	switch u.state {
	case stAborted:
		err := u.abortErr
		u.mu.Unlock()
		return err
	case stUpgrading:
	default:
		u.mu.Unlock()
		return fmt.Errorf("handoff: Ready called twice or after Close: %w", syscall.EINVAL)
	}
	u.state = stCommitting
	u.timer.Stop()
	peer, pid := u.peer, u.peerPID
	u.mu.Unlock()
	fail := func(err error) error {
		u.mu.Lock()
		u.abortLocked(err)
		u.mu.Unlock()
		return err
	}

	if peer != nil {
		m, err := u.exchange(peer, message{Op: opPrepare})
		switch {
		case isGone(err) && !pointAnswers(u.cfg.Path):
			peer = nil // it died (or closed): nothing left to tell
		case err != nil:
			return fail(u.peerError(pid, "preparing the hand-over", err))
		case m.Op == opError:
			return fail(fmt.Errorf("handoff: the older instance (process %d) refused the hand-over and goes on serving: %s", pid, m.Error))
		case m.Op != opPrepared:
			return fail(fmt.Errorf("%w: answer %q to %q from process %d", errProtocol, m.Op, opPrepare, pid))
		}
	}

	tmp := tempPath(u.cfg.Path, os.Getpid())
	l, info, err := listenPoint(tmp, u.cfg.Mode)
	if err != nil {
		return fail(fmt.Errorf("handoff: binding this instance's socket: %w", err))
	}
	if err := os.Rename(tmp, u.cfg.Path); err != nil {
		l.Close()
		return fail(fmt.Errorf("handoff: taking over the hand-off point: %w", err))
	}
	if testHookRenamed != nil {
		testHookRenamed()
	}

	u.mu.Lock()
	u.state = stServing
	u.point, u.pointInfo = l, info
	for _, e := range u.entries {
		if ul, ok := e.obj.(*net.UnixListener); ok && e.inherited {
			// The file is ours now: remove it when we close, unless we
			// hand it on in turn.
			ul.SetUnlinkOnClose(true)
		}
	}
	u.wg.Add(1)
	go u.serve(l)
	u.mu.Unlock()

	var confirmErr error
	receive := false
	if peer != nil {
		ask := u.cfg.TakeConns && slices.Contains(u.peerFeatures, featureConns)
		m, err := u.exchange(peer, message{Op: opReady, Conns: ask})
		switch {
		case isGone(err):
		case err != nil:
			confirmErr = fmt.Errorf("%w (process %d): %w", ErrUnconfirmed, pid, err)
		case m.Op != opDraining:
			confirmErr = fmt.Errorf("%w (process %d): it answered %q %s", ErrUnconfirmed, pid, m.Op, m.Error)
		default:
			receive = ask
		}
	}
	u.mu.Lock()
	if u.peer != nil {
		if receive {
			// The connection stays open: the older instance passes its
			// live connections on it (conns.go).
			u.recvConn = u.peer
			u.recvWG.Add(1)
			go u.receiveConns(u.peer)
		} else {
			u.peer.Close()
		}
		u.peer = nil
	}
	if !receive {
		u.endPassed()
	}
	u.lk.release()
	u.mu.Unlock()
	return confirmErr
}

// exchange sends m on c and reads the answer, within exchangeTimeout.
// A message the peer sent before closing its end (its reason) is returned
// even if sending m failed.
func (u *Upgrader) exchange(c *fdsend.Conn, m message) (message, error) {
	serr := send(c, m)
	if m.Conns {
		// The first connection passed may follow the answer closely
		// enough to be read with it.
		c.SetReadLimits(maxConnMsgBytes, 1)
	} else {
		c.SetReadLimits(maxRequestBytes, 0)
	}
	c.SetReadDeadline(time.Now().Add(exchangeTimeout))
	a, files, err := receive(c)
	jsonmsg.CloseAll(files)
	if err == nil {
		return a, nil
	}
	if serr != nil {
		return message{}, serr
	}
	return message{}, err
}

// pointAnswers reports whether an instance listens at the hand-off point.
func pointAnswers(path string) bool {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// isGone reports whether err says the peer process has closed its end.
func isGone(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}
