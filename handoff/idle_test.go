//go:build linux

package handoff

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fdsend/fdsend/internal/fdtest"
)

// namedServer is a drainer answering "<name> <path>".
func namedServer(t *testing.T, name string, h http.Handler) *drainServer {
	t.Helper()
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, name+" "+r.URL.Path)
		})
	}
	return newDrainServer(t, time.Second, h)
}

// rawRequest writes req on c and reads one response body.
func rawExchange(t *testing.T, c net.Conn, br *bufio.Reader, req string) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if req != "" {
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return string(body)
}

// takeOne waits for exactly one idle connection to be taken from s.
func takeOne(t *testing.T, s *drainServer) net.Conn {
	t.Helper()
	var got []net.Conn
	eventually(t, "an idle connection to be taken", func() bool {
		g, err := s.d.TakeIdle(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, g...)
		return len(got) > 0
	})
	if len(got) != 1 {
		t.Fatalf("took %d connections", len(got))
	}
	return got[0]
}

// TestTakeIdleMovesConnection: an idle keep-alive connection taken from
// one server and served by another keeps its client, which sees nothing.
func TestTakeIdleMovesConnection(t *testing.T) {
	fdtest.Check(t)
	a := namedServer(t, "A", nil)
	b := namedServer(t, "B", nil)
	c, err := net.Dial("tcp", a.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	if got := rawExchange(t, c, br, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"); got != "A /1" {
		t.Fatalf("first answer %q", got)
	}
	s := takeOne(t, a)
	if _, ok := s.(*net.TCPConn); !ok {
		t.Errorf("took a %T, not the accepted *net.TCPConn", s)
	}
	eventually(t, "the first server to forget the connection", func() bool { return a.closed.Load() == 1 })
	if err := b.d.ServeConn(s); err != nil {
		t.Fatal(err)
	}
	if got := rawExchange(t, c, br, "GET /2 HTTP/1.1\r\nHost: x\r\n\r\n"); got != "B /2" {
		t.Fatalf("second answer %q", got)
	}
	// And back, with the request already waiting in the socket when the
	// connection arrives.
	s = takeOne(t, b)
	io.WriteString(c, "GET /3 HTTP/1.1\r\nHost: x\r\n\r\n")
	if err := a.d.ServeConn(s); err != nil {
		t.Fatal(err)
	}
	if got := rawExchange(t, c, br, ""); got != "A /3" {
		t.Fatalf("third answer %q", got)
	}
	// A connection accepted and silent is taken too, with the idle one.
	c2, err := net.Dial("tcp", a.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	var got []net.Conn
	eventually(t, "both connections to be taken", func() bool {
		g, err := a.d.TakeIdle(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, g...)
		return len(got) >= 2
	})
	for _, s := range got {
		b.d.ServeConn(s)
	}
	if got := rawExchange(t, c2, bufio.NewReader(c2), "GET /4 HTTP/1.1\r\nHost: x\r\n\r\n"); got != "B /4" {
		t.Fatalf("answer on the silent connection %q", got)
	}
	if got := rawExchange(t, c, br, "GET /5 HTTP/1.1\r\nHost: x\r\n\r\n"); got != "B /5" {
		t.Fatalf("fifth answer %q", got)
	}
	if len(got) != 2 || a.newConn.Load() != 3 { // two accepted, one handed in
		t.Errorf("took %d connections, server A got %d", len(got), a.newConn.Load())
	}
}

// TestTakeIdleLeavesBuffered: a connection with bytes of its next request
// already read by the server (a pipelining client) is not taken; its
// request is answered where it is.
func TestTakeIdleLeavesBuffered(t *testing.T) {
	for _, tc := range []struct{ name, first, rest string }{
		// Peek(4) reads with 2 bytes buffered: a shorter slice.
		{"partial", "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGE", "T /2 HTTP/1.1\r\nHost: x\r\n\r\n"},
		// readRequest consumed the request line and reads with the whole
		// (empty) buffer: not the idle Peek.
		{"line", "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\n", "Host: x\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fdtest.Check(t)
			a := namedServer(t, "A", nil)
			c, err := net.Dial("tcp", a.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			if got := rawExchange(t, c, br, tc.first); got != "A /1" {
				t.Fatalf("first answer %q", got)
			}
			// Wait until the server is blocked reading the rest: its Read
			// has started after it went idle.
			eventually(t, "the server to read", func() bool {
				a.d.mu.Lock()
				defer a.d.mu.Unlock()
				for c := range a.d.conns {
					ic := c.(*idleConn)
					ic.mu.Lock()
					r := ic.state == http.StateIdle && ic.reading && !ic.idleFresh
					ic.mu.Unlock()
					if r {
						return true
					}
				}
				return false
			})
			got, err := a.d.TakeIdle(context.Background())
			if err != nil || len(got) != 0 {
				for _, s := range got {
					s.Close()
				}
				t.Fatalf("took %d connections with bytes in the server's buffer (%v)", len(got), err)
			}
			if got := rawExchange(t, c, br, tc.rest); got != "A /2" {
				t.Fatalf("second answer %q", got)
			}
		})
	}
}

// TestTakeAllFinishesRequest: a connection in the middle of a request is
// taken once it is answered, not before.
func TestTakeAllFinishesRequest(t *testing.T) {
	fdtest.Check(t)
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	a := namedServer(t, "A", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "A "+r.URL.Path)
	}))
	b := namedServer(t, "B", nil)
	c, err := net.Dial("tcp", a.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the request never reached the handler")
	}
	done := make(chan error, 1)
	var moved atomic.Int32
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- a.d.TakeAll(ctx, func(s net.Conn) {
			moved.Add(1)
			b.d.ServeConn(s)
		})
	}()
	select {
	case err := <-done:
		t.Fatalf("TakeAll returned during a request: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if got := rawExchange(t, c, br, ""); got != "A /slow" {
		t.Fatalf("answer %q", got)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("TakeAll did not return once the connection was idle")
	}
	if moved.Load() != 1 {
		t.Fatalf("moved %d connections", moved.Load())
	}
	if got := rawExchange(t, c, br, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n"); got != "B /next" {
		t.Fatalf("answer after the move %q", got)
	}
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n *atomic.Int32
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// seqLog records which instance served each client's sequence numbers.
type seqLog struct {
	mu     sync.Mutex
	served map[[2]int]int // {client, seq} -> times served
	by     [2]int         // requests per instance
}

// TestTakeIdleUnderLoad: many keep-alive clients, each sending a request
// every few milliseconds, across rounds that move every connection from
// one server to the other: no request fails, none is served twice or
// lost, every client keeps one TCP connection, and the server accepted
// each once.
func TestTakeIdleUnderLoad(t *testing.T) {
	fdtest.Check(t)
	clients, rounds := 200, 10
	if testing.Short() {
		clients, rounds = 50, 4
	}
	log := &seqLog{served: make(map[[2]int]int)}
	var accepted atomic.Int32
	var srvs [2]*HTTPDrainer
	var addr string
	for i := range srvs {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cl, _ := strconv.Atoi(r.URL.Query().Get("c"))
			seq, _ := strconv.Atoi(r.URL.Query().Get("s"))
			log.mu.Lock()
			log.served[[2]int{cl, seq}]++
			log.by[i]++
			log.mu.Unlock()
			fmt.Fprintf(w, "%d %d %d", i, cl, seq)
		})}
		srvs[i] = NewHTTPDrainer(srv, time.Second)
		t.Cleanup(func() { srv.Close() })
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = l.Addr().String()
	go srvs[0].Serve(countingListener{l, &accepted})

	lc := startLoadClients(t, addr, clients)
	var moved []int
	for r := 0; r < rounds; r++ {
		src, dst := srvs[r%2], srvs[(r+1)%2]
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		n := 0
		err := src.TakeAll(ctx, func(c net.Conn) {
			n++
			if err := dst.ServeConn(c); err != nil {
				t.Errorf("ServeConn: %v", err)
			}
		})
		cancel()
		if err != nil {
			lc.stop()
			t.Fatalf("round %d: TakeAll: %v after moving %d", r, err, n)
		}
		moved = append(moved, n)
	}
	lc.stop()

	log.mu.Lock()
	defer log.mu.Unlock()
	total, failed := lc.check(t, log.served)
	if n := accepted.Load(); n != int32(clients) {
		t.Errorf("the server accepted %d connections for %d clients", n, clients)
	}
	for r, n := range moved {
		if n != clients {
			t.Errorf("round %d moved %d connections, want %d", r, n, clients)
		}
	}
	t.Logf("%d requests, %d failed; served by instance 0: %d, 1: %d; moved per round %v; takes given up for a request that raced in: %d",
		total, failed, log.by[0], log.by[1], moved, srvs[0].raced.Load()+srvs[1].raced.Load())
}

// loadResult is what one load client saw.
type loadResult struct {
	sent      int
	failures  []string
	notReused int
	addrs     map[string]bool
}

// loadClients are keep-alive clients sending numbered requests.
type loadClients struct {
	stopc   chan struct{}
	wg      sync.WaitGroup
	results []loadResult
}

// startLoadClients starts n clients of addr, each sending "/?c=<client>&s=<seq>"
// every few milliseconds and expecting "<instance> <client> <seq>", and
// returns once each has had a first answer.
func startLoadClients(t *testing.T, addr string, clients int) *loadClients {
	t.Helper()
	return startLoadClientsPaced(t, addr, clients, func(cl int) time.Duration { return time.Duration(2+cl%5) * time.Millisecond })
}

// startLoadClientsPaced is startLoadClients with client cl pausing
// pace(cl) between its requests.
func startLoadClientsPaced(t *testing.T, addr string, clients int, pace func(cl int) time.Duration) *loadClients {
	t.Helper()
	lc := &loadClients{stopc: make(chan struct{}), results: make([]loadResult, clients)}
	stop := lc.stopc
	results := lc.results
	wg := &lc.wg
	started := make(chan struct{}, clients)
	for cl := 0; cl < clients; cl++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := &results[cl]
			res.addrs = make(map[string]bool)
			tr := &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1} // one connection: a second would mean the first was closed
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				var reused bool
				var local string
				trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
					reused = info.Reused
					local = info.Conn.LocalAddr().String()
				}}
				ctx := httptrace.WithClientTrace(context.Background(), trace)
				req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://%s/?c=%d&s=%d", addr, cl, seq), nil)
				res.sent++
				resp, err := client.Do(req)
				if err != nil {
					res.failures = append(res.failures, fmt.Sprintf("seq %d: %v", seq, err))
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				var inst, gotCl, gotSeq int
				if _, serr := fmt.Sscanf(string(body), "%d %d %d", &inst, &gotCl, &gotSeq); err != nil || serr != nil || gotCl != cl || gotSeq != seq || resp.StatusCode != 200 {
					res.failures = append(res.failures, fmt.Sprintf("seq %d: %d %q %v", seq, resp.StatusCode, body, err))
				}
				if seq > 0 && !reused {
					res.notReused++
					res.failures = append(res.failures, fmt.Sprintf("seq %d on a new connection %s (answer %q)", seq, local, body))
				}
				res.addrs[local] = true
				if seq == 0 {
					started <- struct{}{}
				}
				time.Sleep(pace(cl)) // pacing, not synchronisation
			}
		}()
	}
	for range clients {
		select {
		case <-started:
		case <-time.After(30 * time.Second):
			lc.stop()
			t.Fatal("clients did not all get a first answer")
		}
	}
	return lc
}

// stop stops the clients and waits for their last requests.
func (lc *loadClients) stop() {
	select {
	case <-lc.stopc:
	default:
		close(lc.stopc)
	}
	lc.wg.Wait()
}

// check reports failed requests, requests not on the client's one
// connection, and requests not served exactly once according to served.
func (lc *loadClients) check(t *testing.T, served map[[2]int]int) (total, failed int) {
	t.Helper()
	for cl, res := range lc.results {
		total += res.sent
		for _, f := range res.failures {
			failed++
			if failed <= 10 {
				t.Errorf("client %d: %s", cl, f)
			}
		}
		if res.notReused > 0 {
			t.Errorf("client %d: %d requests on a new connection", cl, res.notReused)
		}
		if len(res.addrs) != 1 {
			t.Errorf("client %d used %d TCP connections", cl, len(res.addrs))
		}
		for seq := 0; seq < res.sent; seq++ {
			if n := served[[2]int{cl, seq}]; n != 1 {
				t.Errorf("client %d request %d served %d times", cl, seq, n)
			}
		}
	}
	return total, failed
}
