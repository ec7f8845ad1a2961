//go:build linux

package handoff

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend/internal/fdtest"
)

// counterClients is a set of clients of examples/counter, each on one TCP
// connection for its whole life, sending numbered lines and checking that
// the answer's counter is the line's number and its text the line: a line
// or part of one lost or answered twice anywhere breaks the sequence.
type counterClients struct {
	n    int
	addr string
	// reconnect makes a client whose connection closes connect again and
	// send its line again, instead of failing; its counter starts over.
	reconnect bool
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	failed chan struct{} // closed at the first failure

	mu       sync.Mutex
	failures []string
	sent     int
	last     []int                 // the pid that last answered each client
	per      map[int]int           // clients whose last answer came from pid
	waiters  map[int]chan struct{} // closed when per[pid] reaches n
	moved    []time.Duration       // for each answer from a new pid: the time since the last from the old one, less the client's pause
	lastTime []time.Time
}

// startCounterClients connects n clients to addr and starts them; each
// sends a line, waits for its answer, then pauses for pace(client).
func startCounterClients(t testing.TB, addr string, n int, reconnect bool, pace func(int) time.Duration) *counterClients {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cc := &counterClients{n: n, addr: addr, reconnect: reconnect, cancel: cancel, failed: make(chan struct{}), last: make([]int, n), lastTime: make([]time.Time, n),
		per: map[int]int{}, waiters: map[int]chan struct{}{}}
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			cancel()
			for _, c := range conns[:i] {
				c.Close()
			}
			t.Fatalf("client %d: %v", i, err)
		}
		conns[i] = c
	}
	for i, c := range conns {
		cc.wg.Add(1)
		go func() {
			defer cc.wg.Done()
			cc.run(ctx, i, c, pace(i))
		}()
	}
	t.Cleanup(cc.stop)
	return cc
}

func (cc *counterClients) run(ctx context.Context, cl int, c net.Conn, pace time.Duration) {
	defer func() { c.Close() }()
	r := bufio.NewReader(c)
	local := c.LocalAddr().String()
	var slept time.Duration // since the last answer, besides pace
	for seq := 1; ctx.Err() == nil; seq++ {
	again:
		c.SetDeadline(time.Now().Add(15 * time.Second))
		// Every other line goes in two writes some milliseconds apart,
		// so that some connections move with half a line buffered.
		var err error
		if seq%2 == 0 {
			_, err = fmt.Fprintf(c, "client %d ", cl)
			if err == nil {
				time.Sleep(pace / 2)
				slept += pace / 2
				_, err = fmt.Fprintf(c, "line %d\n", seq)
			}
		} else {
			_, err = fmt.Fprintf(c, "client %d line %d\n", cl, seq)
		}
		var line string
		if err == nil {
			line, err = r.ReadString('\n')
		}
		now := time.Now()
		var n, pid int
		if err == nil {
			f := strings.SplitN(strings.TrimSuffix(line, "\n"), " ", 3)
			if len(f) != 3 {
				err = fmt.Errorf("answer %q", line)
			} else if n, err = strconv.Atoi(f[0]); err == nil {
				pid, err = strconv.Atoi(f[1])
			}
			if want := fmt.Sprintf("client %d line %d", cl, seq); err == nil && (n != seq || f[2] != want) {
				err = fmt.Errorf("line %d answered with %q (counter %d, pid %d)", seq, line, n, pid)
			}
		}
		if err != nil && cc.reconnect && pid == 0 && ctx.Err() == nil {
			// Closed by the old instance: connect again, send the line
			// again; the new connection's counter starts over.
			c.Close()
			if c, err = net.DialTimeout("tcp", cc.addr, 15*time.Second); err == nil {
				r = bufio.NewReader(c)
				seq = 1
				goto again
			}
			c = nopConn{}
		}
		if err != nil {
			cc.mu.Lock()
			if len(cc.failures) == 0 {
				close(cc.failed)
			}
			cc.failures = append(cc.failures, fmt.Sprintf("client %d (%s), line %d: %v", cl, local, seq, err))
			cc.mu.Unlock()
			return
		}
		cc.answered(cl, pid, now, pace+slept)
		slept = 0
		select {
		case <-ctx.Done():
		case <-time.After(pace):
		}
	}
}

// answered records that client cl's answer came from pid at time now,
// paused the time after its last answer.
func (cc *counterClients) answered(cl, pid int, now time.Time, paused time.Duration) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.sent++
	old := cc.last[cl]
	if old == pid {
		cc.lastTime[cl] = now
		return
	}
	if old != 0 {
		cc.per[old]--
		cc.moved = append(cc.moved, now.Sub(cc.lastTime[cl])-paused)
	}
	cc.last[cl], cc.lastTime[cl] = pid, now
	cc.per[pid]++
	if cc.per[pid] == cc.n {
		if ch, ok := cc.waiters[pid]; ok {
			close(ch)
		} else {
			ch := make(chan struct{})
			close(ch)
			cc.waiters[pid] = ch
		}
	}
}

// waitAll waits within d until every client's last answer came from pid.
func (cc *counterClients) waitAll(pid int, d time.Duration) error {
	cc.mu.Lock()
	ch, ok := cc.waiters[pid]
	if !ok {
		ch = make(chan struct{})
		cc.waiters[pid] = ch
	}
	cc.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-cc.failed:
	case <-time.After(d):
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return fmt.Errorf("%d of %d clients answered by process %d; failures: %q", cc.per[pid], cc.n, pid, cc.failures)
}

// stop stops the clients and closes their connections.
func (cc *counterClients) stop() {
	cc.cancel()
	cc.wg.Wait()
}

// nopConn stands for a connection that could not be made again.
type nopConn struct{ net.Conn }

func (nopConn) Close() error { return nil }

// socketCount counts the sockets process pid holds.
func socketCount(t *testing.T, pid int) int {
	n := 0
	for _, fd := range procFDs(t, pid) {
		if strings.Contains(fd, "socket:") {
			n++
		}
	}
	return n
}

// waitSockets waits within d until process pid holds want sockets.
func waitSockets(t *testing.T, pid, want int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		n := socketCount(t, pid)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d holds %d sockets, want %d:\n%s", pid, n, want, strings.Join(procFDs(t, pid), "\n"))
		}
		time.Sleep(20 * time.Millisecond) // no event to wait for: /proc is polled, bounded
	}
}

// TestCounterKeepsConnsAcrossHandoffs: 200 clients of examples/counter,
// each on one TCP connection, across 10 hand-offs. Every connection moves
// to each new instance with its counter and the bytes it had buffered: no
// line is lost or answered twice, no client sees its connection close, each
// old instance passes all 200 and closes none, and each new instance holds
// exactly its base sockets plus the 200 connections.
func TestCounterKeepsConnsAcrossHandoffs(t *testing.T) {
	fdtest.Check(t)
	const clients, handoffs = 200, 10
	addr := freeAddr(t)
	point := filepath.Join(shortDir(t), "c.sock")
	args := []string{"-listen", addr, "-handoff", point, "-drain-timeout", "20s"}

	in := startExample(t, counterBin, args)
	in.waitReady(t)
	base := socketCount(t, in.pid) // the listener and the hand-off point
	cc := startCounterClients(t, addr, clients, false, func(cl int) time.Duration {
		return time.Duration(20+(cl*37)%31) * time.Millisecond
	})
	if err := cc.waitAll(in.pid, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	waitSockets(t, in.pid, base+clients, 10*time.Second)
	for i := range handoffs {
		next := startExample(t, counterBin, args)
		next.waitReady(t)
		if err := cc.waitAll(next.pid, 20*time.Second); err != nil {
			t.Fatalf("hand-off %d: %v; old stderr:\n%s\nnew stderr:\n%s", i+1, err, in.stderr, next.stderr)
		}
		line, err := readLine(in.out, 20*time.Second)
		if want := fmt.Sprintf("drained pid=%d passed=%d closed=0", in.pid, clients); err != nil || line != want {
			t.Fatalf("hand-off %d: old instance said %q (%v), want %q; stderr:\n%s", i+1, line, err, want, in.stderr)
		}
		if err := in.wait(10 * time.Second); err != nil {
			t.Fatalf("hand-off %d: old instance: %v", i+1, err)
		}
		in = next
		waitSockets(t, in.pid, base+clients, 10*time.Second)
	}
	cc.stop()
	waitSockets(t, in.pid, base, 10*time.Second)
	in.cmd.Process.Signal(syscall.SIGTERM)
	if line, err := readLine(in.out, 10*time.Second); err != nil || !strings.HasPrefix(line, fmt.Sprintf("drained pid=%d passed=0 ", in.pid)) {
		t.Errorf("last instance said %q (%v); stderr:\n%s", line, err, in.stderr)
	}
	if err := in.wait(10 * time.Second); err != nil {
		t.Errorf("last instance: %v", err)
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for _, f := range cc.failures {
		t.Error(f)
	}
	if len(cc.moved) != clients*handoffs {
		t.Errorf("%d moves seen, want %d", len(cc.moved), clients*handoffs)
	}
	t.Logf("%d clients, %d lines answered, %d hand-offs", clients, cc.sent, handoffs)
}
