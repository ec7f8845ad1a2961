//go:build linux

package ready

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend/internal/fdtest"
	"github.com/fdsend/fdsend/notify"
)

const childEnv = "READY_TEST_CHILD"

var children = map[string]func() error{
	// send: sends $MSG (\n for newlines) to NOTIFY_SOCKET and, if set, to
	// $ALSO; waits for the barrier; then, with $STAY, until stdin closes.
	"send": func() error {
		msg := strings.ReplaceAll(os.Getenv("MSG"), `\n`, "\n")
		var files []any
		if os.Getenv("WITH_FD") != "" {
			r, w, err := os.Pipe()
			if err != nil {
				return err
			}
			defer r.Close()
			defer w.Close()
			files = append(files, r)
		}
		for _, a := range []string{os.Getenv("NOTIFY_SOCKET"), os.Getenv("ALSO")} {
			if a == "" {
				continue
			}
			c := notify.Client{Addr: a, Timeout: 5 * time.Second}
			if _, err := c.Send(msg, files...); err != nil {
				fmt.Println("send:", err)
				return nil
			}
			if _, err := c.Barrier(10 * time.Second); err != nil {
				fmt.Println("barrier:", err)
				return nil
			}
		}
		fmt.Println("sent")
		if os.Getenv("STAY") != "" {
			io.Copy(io.Discard, os.Stdin)
		}
		return nil
	},
	// squat: tries to put a socket of its own in place of NOTIFY_SOCKET's,
	// and prints what the removal gave.
	"squat": func() error {
		err := os.Remove(os.Getenv("NOTIFY_SOCKET"))
		fmt.Println("remove:", err)
		return nil
	},
	// grand: runs "send" as its own child (same environment), then waits
	// for stdin to close.
	"grand": func() error {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=send")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return err
		}
		io.Copy(io.Discard, os.Stdin)
		return nil
	},
}

func TestMain(m *testing.M) {
	fdtest.RunChild(childEnv, children)
	os.Exit(m.Run())
}

func TestParse(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"notify", "notify"},
		{"tcp:127.0.0.1:8080", "tcp:127.0.0.1:8080"},
		{"tcp:[::1]:80", "tcp:[::1]:80"},
		{"tcp:localhost:{gen}0", "tcp:localhost:{gen}0"},
		{"http:http://127.0.0.1:8080/health", "http:http://127.0.0.1:8080/health"},
		{"http://127.0.0.1:8080/ready?pid={pid}", "http:http://127.0.0.1:8080/ready?pid={pid}"},
		{"https://example.test/", "http:https://example.test/"},
		{"delay:1.5s", "delay:1.5s"},
		{"delay:0s", "delay:0s"},
	} {
		p, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if p.String() != tc.want {
			t.Errorf("Parse(%q) = %s, want %s", tc.in, p, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"", "want notify, tcp:HOST:PORT"},
		{"notify:x", "notify takes no argument"},
		{"notify:", "notify takes no argument"},
		{"tcp:", "want tcp:HOST:PORT"},
		{"tcp:8080", "want tcp:HOST:PORT: missing port"},
		{"tcp::8080", "no host"},
		{"tcp:host:http", `port "http"`},
		{"tcp:host:70000", `port "70000"`},
		{"http:", "want http:URL"},
		{"http:ftp://x/", `scheme "ftp"`},
		{"http:/health", `scheme ""`},
		{"http://:80/", "no host"},
		{"delay:", "want delay:DURATION"},
		{"delay:-1s", "want delay:DURATION"},
		{"delay:soon", "want delay:DURATION"},
		{"exec:true", "want notify, tcp:HOST:PORT, http:URL or delay:DURATION"},
	} {
		_, err := Parse(tc.in)
		if !errors.Is(err, syscall.EINVAL) || !strings.HasPrefix(err.Error(), "--ready="+tc.in+": ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q): %v; want --ready=%s: ...%s..., EINVAL", tc.in, err, tc.in, tc.want)
		}
	}
}

// closed is a channel that is closed.
func closed() chan struct{} { c := make(chan struct{}); close(c); return c }

func timeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestDelay(t *testing.T) {
	p, _ := Parse("delay:50ms")
	c, err := p.Start(1)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Env() != nil {
		t.Errorf("Env %v, want none", c.Env())
	}
	if err := c.Wait(timeout(t, 10*time.Second), 1, nil); err != nil {
		t.Errorf("Wait: %v", err)
	}
	long, _ := Parse("delay:1h")
	c, _ = long.Start(1)
	if err := c.Wait(timeout(t, 10*time.Second), 1, closed()); !errors.Is(err, ErrExited) {
		t.Errorf("exited: %v, want ErrExited", err)
	}
	if err := c.Wait(timeout(t, 50*time.Millisecond), 1, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timeout: %v, want DeadlineExceeded", err)
	}
}

func TestTCP(t *testing.T) {
	fdtest.Check(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	p, err := Parse("tcp:" + l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, _ := p.Start(1)
	if err := c.Wait(timeout(t, 10*time.Second), 1, nil); err != nil {
		t.Errorf("listening: %v", err)
	}
	// A port nobody listens on: refused until the timeout, which says so.
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := dead.Addr().String()
	dead.Close()
	p, _ = Parse("tcp:" + addr)
	c, _ = p.Start(1)
	err = c.Wait(timeout(t, 400*time.Millisecond), 1, nil)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("nobody listening: %v; want DeadlineExceeded naming the refusal", err)
	}
	if err := c.Wait(timeout(t, 10*time.Second), 1, closed()); !errors.Is(err, ErrExited) {
		t.Errorf("exited: %v, want ErrExited", err)
	}
}

func TestHTTP(t *testing.T) {
	fdtest.Check(t)
	var hits atomic.Int32
	var mu sync.Mutex
	var pids []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		pids = append(pids, r.URL.Query().Get("pid")+"/"+r.URL.Query().Get("gen"))
		mu.Unlock()
		if r.URL.Path != "/ready" {
			http.NotFound(w, r)
			return
		}
		if hits.Add(1) < 3 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	p, err := Parse("http:" + srv.URL + "/ready?pid={pid}&gen={gen}")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := p.Start(7)
	if err := c.Wait(timeout(t, 10*time.Second), 4242, nil); err != nil {
		t.Errorf("Wait: %v", err)
	}
	if hits.Load() != 3 || pids[0] != "4242/7" {
		t.Errorf("%d requests (want 3: two 503s, then 200), query %v (want pid 4242, gen 7)", hits.Load(), pids)
	}
	p, _ = Parse(srv.URL + "/missing")
	c, _ = p.Start(1)
	err = c.Wait(timeout(t, 400*time.Millisecond), 1, nil)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "answered 404 Not Found") {
		t.Errorf("404: %v; want DeadlineExceeded naming the answer", err)
	}
	if err := c.Wait(timeout(t, 10*time.Second), 1, closed()); !errors.Is(err, ErrExited) {
		t.Errorf("exited: %v, want ErrExited", err)
	}
	srv.Close()
}

// logs collects Logf lines.
type logs struct {
	t  *testing.T
	mu sync.Mutex
	l  []string
}

func (g *logs) Logf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	g.t.Log(s)
	g.mu.Lock()
	g.l = append(g.l, s)
	g.mu.Unlock()
}

func (g *logs) has(sub string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, l := range g.l {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

func startNotify(t *testing.T, p *Notify, gen int) Check {
	t.Helper()
	c, err := p.Start(gen)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func socketOf(t *testing.T, c Check) string {
	t.Helper()
	env := c.Env()
	if len(env) != 1 || !strings.HasPrefix(env[0], "NOTIFY_SOCKET=/") {
		t.Fatalf("Env %v, want NOTIFY_SOCKET=/path", env)
	}
	return strings.TrimPrefix(env[0], "NOTIFY_SOCKET=")
}

// TestNotifyReady: READY=1 from the generation's process counts; STATUS=
// is kept; the socket is in a directory only its owner can enter.
func TestNotifyReady(t *testing.T) {
	fdtest.Check(t)
	lg := &logs{t: t}
	var got []Message
	var mu sync.Mutex
	p := &Notify{Logf: lg.Logf, Forward: func(m Message) {
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
		closeFiles(m.Files)
	}}
	c := startNotify(t, p, 1)
	addr := socketOf(t, c)
	fi, err := os.Stat(addr[:strings.LastIndexByte(addr, '/')])
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("socket directory: %v, %v; want mode 0700", fi, err)
	}
	ch := fdtest.StartChild(t, childEnv, "send", false, c.Env()[0], `MSG=STATUS=warming\nREADY=1`, "WITH_FD=1", "STAY=1")
	if err := c.Wait(timeout(t, 10*time.Second), ch.Cmd.Process.Pid, nil); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if line, err := ch.ReadLine(10 * time.Second); line != "sent\n" {
		t.Fatalf("child: %q %v", line, err)
	}
	if s := c.(interface{ Status() string }).Status(); s != "warming" {
		t.Errorf("Status %q, want warming", s)
	}
	mu.Lock()
	defer mu.Unlock()
	// The message, then the barrier.
	if len(got) != 2 || got[0].Gen != 1 || got[0].PID != ch.Cmd.Process.Pid || len(got[0].Files) != 1 || !got[0].Has("READY=1") || !got[1].Has("BARRIER=1") {
		t.Fatalf("forwarded %+v; want the message from pid %d with one file, then BARRIER=1", got, ch.Cmd.Process.Pid)
	}
	if !lg.has("generation 1: READY=1 from pid") {
		t.Error("READY=1 not logged")
	}
}

// TestNotifyDescendant: a grandchild of the generation's process may
// declare it ready (systemd-notify run from a start script).
func TestNotifyDescendant(t *testing.T) {
	fdtest.Check(t)
	c := startNotify(t, &Notify{Logf: (&logs{t: t}).Logf}, 1)
	ch := fdtest.StartChild(t, childEnv, "grand", false, c.Env()[0], "MSG=READY=1")
	if err := c.Wait(timeout(t, 10*time.Second), ch.Cmd.Process.Pid, nil); err != nil {
		t.Fatalf("Wait: %v", err)
	}
}

// TestNotifyStale: READY=1 sent to generation 2's socket by generation 1's
// process (or anyone not generation 2's) is dropped, and does not make it
// ready; a process that exits without READY=1 ends the wait.
func TestNotifyStale(t *testing.T) {
	fdtest.Check(t)
	lg := &logs{t: t}
	p := &Notify{Logf: lg.Logf}
	c1 := startNotify(t, p, 1)
	c2 := startNotify(t, p, 2)
	// Generation 2's process: alive, silent.
	gen2 := fdtest.StartChild(t, childEnv, "send", false, "MSG=STATUS=quiet", "STAY=1")
	wait2 := make(chan error, 1)
	go func() { wait2 <- c2.Wait(timeout(t, 1500*time.Millisecond), gen2.Cmd.Process.Pid, nil) }()
	// Generation 1's process: READY=1 to its own socket and to 2's.
	gen1 := fdtest.StartChild(t, childEnv, "send", false, c1.Env()[0], "ALSO="+socketOf(t, c2), "MSG=READY=1", "STAY=1")
	if err := c1.Wait(timeout(t, 10*time.Second), gen1.Cmd.Process.Pid, nil); err != nil {
		t.Fatalf("generation 1: %v", err)
	}
	if line, err := gen1.ReadLine(10 * time.Second); line != "sent\n" {
		t.Fatalf("generation 1's process: %q %v", line, err)
	}
	if err := <-wait2; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("generation 2: %v; want no readiness (DeadlineExceeded)", err)
	}
	want := fmt.Sprintf("generation 2: notification from pid %d (uid %d) dropped: not generation 2's process (pid %d)", gen1.Cmd.Process.Pid, os.Getuid(), gen2.Cmd.Process.Pid)
	if !lg.has(want) {
		t.Errorf("no log line %q", want)
	}
	// A process that exits before READY=1.
	c3 := startNotify(t, p, 3)
	cmd := exec.Command("/bin/true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	if err := c3.Wait(timeout(t, 10*time.Second), cmd.Process.Pid, exited); !errors.Is(err, ErrExited) {
		t.Fatalf("exited: %v, want ErrExited", err)
	}
}

// TestNotifyOtherUser: another user cannot even reach the socket.
func TestNotifyOtherUser(t *testing.T) {
	fdtest.NeedRoot(t, "the sender runs as nobody")
	fdtest.Check(t)
	c := startNotify(t, &Notify{}, 1)
	ch := fdtest.StartChild(t, childEnv, "send", true, c.Env()[0], "MSG=READY=1")
	line, err := ch.ReadLine(10 * time.Second)
	if err != nil || !strings.Contains(line, "permission denied") {
		t.Fatalf("nobody sending: %q %v; want permission denied", line, err)
	}
	// With Owner, the child's user can.
	c2 := startNotify(t, &Notify{Owner: &Owner{UID: fdtest.Nobody, GID: fdtest.Nobody}}, 2)
	ch2 := fdtest.StartChild(t, childEnv, "send", true, c2.Env()[0], "MSG=READY=1", "STAY=1")
	if err := c2.Wait(timeout(t, 10*time.Second), ch2.Cmd.Process.Pid, nil); err != nil {
		t.Fatalf("nobody with Owner: %v", err)
	}
	// But it cannot take the socket's place: another process of the same
	// user would then get the generation's READY=1 and stored files.
	ch3 := fdtest.StartChild(t, childEnv, "squat", true, c2.Env()[0])
	if line, err := ch3.ReadLine(10 * time.Second); err != nil || !strings.Contains(line, "permission denied") {
		t.Fatalf("nobody removing the socket it was lent: %q %v; want permission denied", line, err)
	}
}
