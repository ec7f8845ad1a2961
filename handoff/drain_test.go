//go:build linux

package handoff

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend/internal/fdtest"
)

// drainServer serves "ok" through a drainer on a fresh listener.
type drainServer struct {
	srv     *http.Server
	d       *HTTPDrainer
	addr    string
	served  chan error
	newConn atomic.Int32 // connections the server accepted
	closed  atomic.Int32 // connections it closed
}

func newDrainServer(t *testing.T, grace time.Duration, h http.Handler) *drainServer {
	t.Helper()
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	}
	s := &drainServer{srv: &http.Server{Handler: h}, served: make(chan error, 1)}
	s.srv.ConnState = func(c net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			s.newConn.Add(1)
		case http.StateClosed:
			s.closed.Add(1)
		}
	}
	s.d = NewHTTPDrainer(s.srv, grace)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	go func() { s.served <- s.d.Serve(l) }()
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// tracked returns how many connections the drainer tracks in state st.
func (s *drainServer) tracked(st http.ConnState) int {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	n := 0
	for _, ci := range s.d.conns {
		if ci.state == st {
			n++
		}
	}
	return n
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// refused reports whether nobody accepts at addr any more.
func refused(addr string) bool {
	c, err := net.Dial("tcp", addr)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// startDrain runs Drain in a goroutine.
func startDrain(s *drainServer, timeout time.Duration) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		done <- s.d.Drain(ctx)
	}()
	return done
}

// TestDrainAnswersJustAccepted: a request sent, after the drain began, on a
// connection accepted just before it is answered (golang/go#75591 loses
// it with Server.Shutdown).
func TestDrainAnswersJustAccepted(t *testing.T) {
	fdtest.Check(t)
	s := newDrainServer(t, 2*time.Second, nil)
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	eventually(t, "the connection to be accepted", func() bool { return s.tracked(http.StateNew) == 1 })

	done := startDrain(s, 10*time.Second)
	eventually(t, "the listener to close", func() bool { return refused(s.addr) })
	select {
	case err := <-done:
		t.Fatalf("Drain returned with a connection open: %v", err)
	case <-time.After(20 * time.Millisecond):
	}

	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer to the request on the just-accepted connection: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" || !resp.Close {
		t.Errorf("answer: %d %q, Connection: close %v", resp.StatusCode, body, resp.Close)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("connection not closed after the answer: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Drain: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Drain did not return once the connection closed")
	}
	if err := <-s.served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve returned %v", err)
	}
}

// TestShutdownLosesJustAccepted shows, for the record, what the standard
// library's Shutdown does in the same situation.
func TestShutdownLosesJustAccepted(t *testing.T) {
	fdtest.Check(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	var accepted atomic.Int32
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		if st == http.StateNew {
			accepted.Add(1)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	eventually(t, "the connection to be accepted", func() bool { return accepted.Load() == 1 })
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	eventually(t, "the listener to close", func() bool { return refused(l.Addr().String()) })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	_, err = http.ReadResponse(bufio.NewReader(c), nil)
	t.Logf("http.Server.Shutdown, request on a connection accepted just before: %v (golang/go#75591)", err)
	<-done
}

// TestDrainKeepAlive: an idle keep-alive connection's next request is
// answered, with Connection: close, and the drain then ends without waiting
// for the grace period.
func TestDrainKeepAlive(t *testing.T) {
	fdtest.Check(t)
	s := newDrainServer(t, 5*time.Second, nil)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	var reused atomic.Bool
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused.Store(info.Reused) }}
	post := func() *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "POST", "http://"+s.addr+"/", strings.NewReader("x"))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("answer: %d %q", resp.StatusCode, body)
		}
		return resp
	}
	if resp := post(); resp.Close {
		t.Fatal("Connection: close before draining")
	}
	eventually(t, "the connection to go idle", func() bool { return s.tracked(http.StateIdle) == 1 })

	start := time.Now()
	done := startDrain(s, 10*time.Second)
	eventually(t, "the listener to close", func() bool { return refused(s.addr) })
	if resp := post(); !resp.Close {
		t.Error("no Connection: close while draining")
	}
	if !reused.Load() {
		t.Error("the request went over a new connection, not the idle one")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Drain: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Drain still waiting")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Drain took %v, as if it waited out the grace period", d)
	}
}

// TestDrainIdleGrace: a keep-alive connection that stays silent is closed
// after the grace period.
func TestDrainIdleGrace(t *testing.T) {
	fdtest.Check(t)
	const grace = 300 * time.Millisecond
	s := newDrainServer(t, grace, nil)
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	// A second, silent connection, accepted but never used.
	c2, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	eventually(t, "both connections to be tracked", func() bool {
		return s.tracked(http.StateIdle) == 1 && s.tracked(http.StateNew) == 1
	})

	start := time.Now()
	err = s.d.Drain(context.Background())
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if took < grace || took > grace+time.Second {
		t.Errorf("Drain took %v, grace %v", took, grace)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("idle connection not closed: %v", err)
	}
}

// TestDrainDeadline: a request that outlives ctx has its connection closed.
func TestDrainDeadline(t *testing.T) {
	fdtest.Check(t)
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer unblock()
	entered := make(chan struct{}, 1)
	s := newDrainServer(t, time.Second, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	got := make(chan error, 1)
	go func() {
		resp, err := (&http.Client{Transport: tr}).Get("http://" + s.addr + "/")
		if err == nil {
			resp.Body.Close()
		}
		got <- err
	}()
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the request never reached the handler")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.d.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Drain: %v", err)
	}
	select {
	case err := <-got:
		if err == nil {
			t.Error("the request outliving the drain was answered")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("client still waiting after the drain gave up")
	}
	unblock()
	// Serve on a drained drainer refuses at once and closes the listener.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	if err := s.d.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve after Drain: %v", err)
	}
	if !refused(l.Addr().String()) {
		t.Error("listener left open")
	}
}
