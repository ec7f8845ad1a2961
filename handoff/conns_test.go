//go:build linux

package handoff

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend/internal/fdtest"
)

func init() {
	children["lineInstance"] = childLineInstance
}

// The line protocol of these tests: a client sends lines, and the server
// answers each with "<count> <pid>", count being the number of lines this
// connection has sent, carried across hand-offs in the state blob with
// the bytes read past the last whole line.

// lineState encodes a connection's state for PassConn.
func lineState(count uint64, buf []byte) []byte {
	return append(binary.BigEndian.AppendUint64(nil, count), buf...)
}

func parseLineState(b []byte) (uint64, []byte, error) {
	if len(b) < 8 {
		return 0, nil, fmt.Errorf("state of %d bytes", len(b))
	}
	return binary.BigEndian.Uint64(b), b[8:], nil
}

// fdSnapshot lists this process's open descriptors (a child has no
// testing.TB for fdtest).
func fdSnapshot() map[string]bool {
	out := make(map[string]bool)
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return out
	}
	for _, e := range ents {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			out[e.Name()+" -> "+target] = true
		}
	}
	return out
}

// fdLeaks waits up to a second for the descriptors open now to be those of
// before (but for the directory read), and lists the others.
func fdLeaks(before map[string]bool) []string {
	deadline := time.Now().Add(time.Second)
	for {
		var extra []string
		for k := range fdSnapshot() {
			if !before[k] && !strings.HasSuffix(k, "/fd") {
				extra = append(extra, k)
			}
		}
		if len(extra) == 0 || time.Now().After(deadline) {
			sort.Strings(extra)
			return extra
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lineInstance is one instance of the line server, run by
// childLineInstance.
type lineInstance struct {
	u        *Upgrader
	draining atomic.Bool
	stopping atomic.Bool

	mu    sync.Mutex
	live  map[net.Conn]bool
	wg    sync.WaitGroup
	empty chan struct{} // signalled when live becomes empty

	passed, kept, noTaker, received atomic.Int64
}

func (s *lineInstance) add(c net.Conn) {
	s.mu.Lock()
	s.live[c] = true
	s.wg.Add(1)
	s.mu.Unlock()
}

func (s *lineInstance) remove(c net.Conn) {
	s.mu.Lock()
	delete(s.live, c)
	n := len(s.live)
	s.mu.Unlock()
	if n == 0 {
		select {
		case s.empty <- struct{}{}:
		default:
		}
	}
	s.wg.Done()
}

// interrupt makes every connection's pending read return, so that its
// goroutine looks at the flags.
func (s *lineInstance) interrupt() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.live {
		c.SetReadDeadline(time.Now())
	}
}

// serve speaks the line protocol on c from count and buf until the client
// leaves, the instance stops, or (draining) c is passed on.
func (s *lineInstance) serve(c net.Conn, count uint64, buf []byte) {
	defer s.remove(c)
	tryPass := true
	tmp := make([]byte, 512)
	for {
		for {
			i := bytes.IndexByte(buf, '\n')
			if i < 0 {
				break
			}
			count++
			buf = buf[i+1:]
			if _, err := fmt.Fprintf(c, "%d %d\n", count, os.Getpid()); err != nil {
				c.Close()
				return
			}
		}
		if s.stopping.Load() {
			c.Close()
			return
		}
		if tryPass && s.draining.Load() {
			// A message boundary: every whole line is answered, buf
			// holds the rest.
			err := s.u.PassConn("line", c, lineState(count, buf))
			if err == nil {
				s.passed.Add(1)
				return
			}
			tryPass = false
			s.kept.Add(1)
			if errors.Is(err, ErrNoTaker) {
				s.noTaker.Add(1)
			} else {
				fmt.Fprintf(os.Stderr, "lineInstance %d: keeping a connection: %v\n", os.Getpid(), err)
			}
			c.SetReadDeadline(time.Time{})
		}
		n, err := c.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue // look at the flags
			}
			c.Close()
			return
		}
	}
}

// childLineInstance runs an instance of the line server at LINE_POINT on
// LINE_ADDR, taking connections if LINE_TAKE=1 and dying after it has
// acknowledged LINE_CRASH_AT of them. It prints "ready <addr>", passes its
// connections on when a newer instance takes over, and exits when it has
// none left and its older instance has finished passing, or when its
// standard input closes. It then prints its counts and fails if it leaked a
// descriptor.
func childLineInstance() error {
	// No garbage collection: a connection dropped without Close would be
	// closed by its finalizer and hide from the count.
	debug.SetGCPercent(-1)
	// Start the runtime's poller before counting.
	if l, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		l.Close()
	}
	before := fdSnapshot()
	if n, _ := strconv.Atoi(os.Getenv("LINE_CRASH_AT")); n > 0 {
		testHookAcked = func(k int) {
			if k == n {
				os.Exit(9)
			}
		}
	}
	u, err := Open(Config{Path: os.Getenv("LINE_POINT"), LockTimeout: 30 * time.Second, TakeConns: os.Getenv("LINE_TAKE") == "1"})
	if err != nil {
		return err
	}
	s := &lineInstance{u: u, live: make(map[net.Conn]bool), empty: make(chan struct{}, 1)}
	l, err := u.Listen("lines", "tcp", os.Getenv("LINE_ADDR"))
	if err != nil {
		u.Close()
		return err
	}
	if err := u.Ready(); err != nil {
		l.Close()
		u.Close()
		return err
	}
	fmt.Printf("ready %s\n", l.Addr())
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.add(c)
			go s.serve(c, 0, nil)
		}
	}()
	connsDone := make(chan struct{})
	go func() {
		defer close(connsDone)
		for pc := range u.Conns() {
			count, buf, err := parseLineState(pc.State)
			if pc.Name != "line" || err != nil {
				fmt.Fprintf(os.Stderr, "lineInstance: passed %q with a bad state: %v\n", pc.Name, err)
				pc.Conn.Close()
				continue
			}
			s.received.Add(1)
			s.add(pc.Conn)
			go s.serve(pc.Conn, count, buf)
		}
	}()
	stdinDone := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stdinDone)
	}()

	select {
	case <-u.Draining():
	case <-stdinDone:
	}
	l.Close()
	<-acceptDone
	s.draining.Store(true)
	s.interrupt()
	// Until the older instance has finished passing and every connection
	// has been passed on (or the test says stop).
	for done := false; !done; {
		select {
		case <-stdinDone:
			done = true
		case <-connsDone:
			connsDone = nil
		case <-s.empty:
		}
		s.mu.Lock()
		n := len(s.live)
		s.mu.Unlock()
		if connsDone == nil && n == 0 {
			done = true
		}
		if n > 0 {
			s.interrupt() // those received meanwhile
		}
	}
	s.stopping.Store(true)
	s.interrupt()
	s.wg.Wait()
	if err := u.Close(); err != nil {
		return err
	}
	if connsDone != nil {
		<-connsDone
	}
	fmt.Printf("done passed=%d kept=%d notaker=%d received=%d\n", s.passed.Load(), s.kept.Load(), s.noTaker.Load(), s.received.Load())
	if leaks := fdLeaks(before); len(leaks) > 0 {
		return fmt.Errorf("descriptor leak: %s", strings.Join(leaks, ", "))
	}
	return nil
}

// lineClient is one client of the line server, on one TCP connection for
// its whole life.
type lineClient struct {
	c     net.Conn
	r     *bufio.Reader
	count uint64
	pids  map[int]bool
	err   error
	eof   bool
	dead  atomic.Bool // set once err is
}

// round sends two lines (the second in two writes, so that servers see a
// partial line) and checks both answers.
func (lc *lineClient) round() error {
	if _, err := io.WriteString(lc.c, "a\nb"); err != nil {
		return err
	}
	if _, err := io.WriteString(lc.c, "\n"); err != nil {
		return err
	}
	for range 2 {
		lc.c.SetReadDeadline(time.Now().Add(30 * time.Second))
		line, err := lc.r.ReadString('\n')
		if err != nil {
			return err
		}
		var count uint64
		var pid int
		if _, err := fmt.Sscanf(line, "%d %d", &count, &pid); err != nil {
			return fmt.Errorf("answer %q: %v", line, err)
		}
		lc.count++
		if count != lc.count {
			return fmt.Errorf("line %d answered as %d (pid %d): a message lost or duplicated", lc.count, count, pid)
		}
		lc.pids[pid] = true
	}
	return nil
}

// startLine starts a line instance.
func startLine(t *testing.T, point, addr string, extra ...string) (*fdtest.Child, string) {
	t.Helper()
	c := fdtest.StartChild(t, childEnv, "lineInstance", false, append([]string{"LINE_POINT=" + point, "LINE_ADDR=" + addr}, extra...)...)
	line, err := c.ReadLine(60 * time.Second)
	if err != nil || !strings.HasPrefix(line, "ready ") {
		t.Fatalf("line instance: %q, %v", line, err)
	}
	return c, strings.TrimSpace(strings.TrimPrefix(line, "ready "))
}

// lineDone reads an instance's final counts.
func lineDone(t *testing.T, c *fdtest.Child) (passed, kept, noTaker, received int) {
	t.Helper()
	line, err := c.ReadLine(60 * time.Second)
	if err != nil {
		t.Fatalf("line instance's counts: %v", err)
	}
	if _, err := fmt.Sscanf(strings.TrimSpace(line), "done passed=%d kept=%d notaker=%d received=%d", &passed, &kept, &noTaker, &received); err != nil {
		t.Fatalf("line instance's counts %q: %v", line, err)
	}
	return
}

// clientPool runs n line clients against addr in rounds.
type clientPool struct {
	clients []*lineClient
	rounds  []atomic.Int64
	stop    chan struct{}
	wg      sync.WaitGroup
}

func startClients(t *testing.T, addr string, n int) *clientPool {
	t.Helper()
	p := &clientPool{clients: make([]*lineClient, n), rounds: make([]atomic.Int64, n), stop: make(chan struct{})}
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			p.close()
			t.Fatalf("client %d: %v", i, err)
		}
		p.clients[i] = &lineClient{c: c, r: bufio.NewReader(c), pids: make(map[int]bool)}
	}
	for i, lc := range p.clients {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			tick := time.NewTicker(time.Duration(60+i%40) * time.Millisecond) // pacing, not synchronisation
			defer tick.Stop()
			for {
				if err := lc.round(); err != nil {
					lc.err = err
					lc.eof = errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
					lc.dead.Store(true)
					return
				}
				p.rounds[i].Add(1)
				select {
				case <-p.stop:
					return
				case <-tick.C:
				}
			}
		}()
	}
	t.Cleanup(p.close)
	return p
}

// waitRounds waits until every client still running has done a round
// more than at the call, or has stopped.
func (p *clientPool) waitRounds(t *testing.T, alive func(i int) bool) {
	t.Helper()
	start := make([]int64, len(p.clients))
	for i := range start {
		start[i] = p.rounds[i].Load()
	}
	deadline := time.Now().Add(60 * time.Second)
	for i := range p.clients {
		for alive(i) && p.rounds[i].Load() <= start[i] {
			if time.Now().After(deadline) {
				t.Fatalf("client %d did no round within 60s (it is stuck)", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// halt stops the clients' rounds.
func (p *clientPool) halt() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.wg.Wait()
}

func (p *clientPool) close() {
	p.halt()
	for _, lc := range p.clients {
		if lc != nil {
			lc.c.Close()
		}
	}
}

// 200 clients of a line protocol keep their TCP connections and their
// running counters across 6 hand-offs: every line is answered once, with
// the count that follows the last, by every instance in turn.
func TestPassConnsAcrossHandoffs(t *testing.T) {
	fdtest.Check(t)
	dir := shortDir(t)
	point := filepath.Join(dir, "h.sock")
	const nClients, handoffs = 200, 6
	cur, addr := startLine(t, point, "127.0.0.1:0", "LINE_TAKE=1")
	pool := startClients(t, addr, nClients)
	pool.waitRounds(t, func(int) bool { return true })
	pids := []int{cur.Cmd.Process.Pid}
	for h := range handoffs {
		next, _ := startLine(t, point, addr, "LINE_TAKE=1")
		passed, kept, noTaker, _ := lineDone(t, cur)
		if err := cur.Wait(60 * time.Second); err != nil {
			t.Fatalf("hand-off %d: the older instance: %v", h+1, err)
		}
		if passed != nClients || kept != 0 || noTaker != 0 {
			t.Fatalf("hand-off %d: the older instance passed %d, kept %d (%d for want of a taker); want %d passed", h+1, passed, kept, noTaker, nClients)
		}
		cur = next
		pids = append(pids, cur.Cmd.Process.Pid)
		pool.waitRounds(t, func(i int) bool { return !pool.clients[i].dead.Load() })
	}
	cur.In.Close()
	_, _, _, received := lineDone(t, cur)
	if err := cur.Wait(30 * time.Second); err != nil {
		t.Fatalf("the last instance: %v", err)
	}
	if received != nClients {
		t.Errorf("the last instance received %d connections, want %d", received, nClients)
	}
	pool.close()
	for i, lc := range pool.clients {
		if lc.err != nil && !lc.eof {
			t.Errorf("client %d: %v", i, lc.err)
		}
		for _, pid := range pids {
			if !lc.pids[pid] {
				t.Errorf("client %d was never served by instance %d (served by %v)", i, pid, lc.pids)
			}
		}
		if i == 0 {
			t.Logf("client 0: %d lines, one connection, served by %d instances", lc.count, len(lc.pids))
		}
	}
}

// A successor that dies while it receives connections (right after it has
// acknowledged the 120th): the older instance keeps serving every
// connection not committed to it, leaks nothing, and every client is
// either still served, with its counter intact, or closed; none is left
// hanging. With 64 connections at most on their way, 120 acknowledged
// means at least 56 committed.
func TestPassConnsSuccessorDies(t *testing.T) {
	fdtest.Check(t)
	dir := shortDir(t)
	point := filepath.Join(dir, "h.sock")
	const nClients = 200
	old, addr := startLine(t, point, "127.0.0.1:0")
	pool := startClients(t, addr, nClients)
	pool.waitRounds(t, func(int) bool { return true })
	bad, _ := startLine(t, point, addr, "LINE_TAKE=1", "LINE_CRASH_AT=120")
	err := bad.Wait(60 * time.Second)
	var ee interface{ ExitCode() int }
	if !errors.As(err, &ee) || ee.ExitCode() != 9 {
		t.Fatalf("the successor: %v; want it to die with status 9", err)
	}
	// Every client still connected does two more rounds; the others were
	// closed. waitRounds fails the test for one that hangs.
	alive := func(i int) bool { return !pool.clients[i].dead.Load() }
	pool.waitRounds(t, alive)
	pool.waitRounds(t, alive)
	pool.halt()
	old.In.Close()
	passed, kept, _, _ := lineDone(t, old)
	if err := old.Wait(30 * time.Second); err != nil {
		t.Fatalf("the older instance: %v", err) // a descriptor leak included
	}
	served, closed := 0, 0
	for i, lc := range pool.clients {
		switch {
		case lc.err == nil:
			served++
		case lc.eof:
			closed++
		default:
			t.Errorf("client %d: %v", i, lc.err)
		}
	}
	t.Logf("older instance: %d passed, %d kept; clients: %d served to the end, %d closed", passed, kept, served, closed)
	if passed+kept != nClients || passed < 120-maxPassInFlight || kept < nClients-120 {
		t.Errorf("the older instance passed %d and kept %d of %d; want at least %d passed, %d kept", passed, kept, nClients, 120-maxPassInFlight, nClients-120)
	}
	// Those committed were the dead successor's, the others the older
	// instance's: neither lost nor shared.
	if served != kept || closed != passed {
		t.Errorf("%d clients served to the end and %d closed; the older instance kept %d and passed %d", served, closed, kept, passed)
	}
}

// A successor that does not set TakeConns gets no connection: the older
// instance's PassConn says ErrNoTaker, and it keeps its connections.
func TestPassConnsNotTaken(t *testing.T) {
	fdtest.Check(t)
	dir := shortDir(t)
	point := filepath.Join(dir, "h.sock")
	const nClients = 20
	old, addr := startLine(t, point, "127.0.0.1:0")
	pool := startClients(t, addr, nClients)
	pool.waitRounds(t, func(int) bool { return true })
	next, _ := startLine(t, point, addr) // no LINE_TAKE
	// The older instance keeps serving them all.
	alive := func(i int) bool { return !pool.clients[i].dead.Load() }
	pool.waitRounds(t, alive)
	pool.halt()
	for i, lc := range pool.clients {
		if lc.err != nil {
			t.Errorf("client %d: %v", i, lc.err)
		}
	}
	old.In.Close()
	passed, kept, noTaker, _ := lineDone(t, old)
	if err := old.Wait(30 * time.Second); err != nil {
		t.Fatalf("the older instance: %v", err)
	}
	next.In.Close()
	_, _, _, received := lineDone(t, next)
	if err := next.Wait(30 * time.Second); err != nil {
		t.Fatalf("the newer instance: %v", err)
	}
	pool.close()
	if passed != 0 || kept != nClients || noTaker != nClients || received != 0 {
		t.Errorf("passed %d, kept %d (%d ErrNoTaker), received %d; want 0, %d (%d), 0", passed, kept, noTaker, received, nClients, nClients)
	}
}

// PassConn's arguments are checked, and before a hand-over nobody takes.
func TestPassConnArgs(t *testing.T) {
	fdtest.Check(t)
	dir := shortDir(t)
	u, err := Open(Config{Path: filepath.Join(dir, "h.sock"), TakeConns: true})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if err := u.PassConn("x", a, nil); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("PassConn of a net.Pipe: %v, want EINVAL", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := u.PassConn("bad:name", c, nil); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("PassConn with a bad name: %v, want EINVAL", err)
	}
	if err := u.PassConn("x", c, make([]byte, MaxConnState+1)); !errors.Is(err, syscall.EMSGSIZE) {
		t.Errorf("PassConn with too big a state: %v, want EMSGSIZE", err)
	}
	if err := u.PassConn("x", c, nil); !errors.Is(err, ErrNoTaker) {
		t.Errorf("PassConn before any hand-over: %v, want ErrNoTaker", err)
	}
	if _, err := c.Write([]byte("still ours")); err != nil {
		t.Errorf("the connection after a refused PassConn: %v", err)
	}
	if err := u.Ready(); err != nil {
		t.Fatal(err)
	}
	select {
	case pc, ok := <-u.Conns():
		if ok {
			pc.Conn.Close()
			t.Errorf("Conns delivered %q without an older instance", pc.Name)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("Conns not closed after Ready without an older instance")
	}
}
