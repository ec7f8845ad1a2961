//go:build linux

package launch

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend/internal/addr"
	"github.com/fdsend/fdsend/internal/fdtest"
	"github.com/fdsend/fdsend/internal/ready"
	"github.com/fdsend/fdsend/notify"
)

// genChildEnv selects the role of a re-executed test binary. The roles run
// from init, so that this file needs no TestMain.
const genChildEnv = "LAUNCH_GEN_CHILD"

func init() {
	fdtest.RunChild(genChildEnv, map[string]func() error{
		"http": httpChild,
		"exit": func() error { os.Exit(3); return nil },
	})
}

// httpChild serves HTTP on fd 3: "/" answers "gen N pid P"; "/ready?pid=X"
// answers 200 only to its own pid. It waits $DELAY before serving, then
// sends READY=1 unless $NOREADY. SIGTERM shuts it down gracefully (exit 0)
// (no connection it accepted is dropped) unless $IGNORE_TERM; SIGUSR1 prints "gen N usr1"; SIGUSR2 makes it exit 5.
func httpChild() error {
	gen := os.Getenv("GEN")
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGUSR2)
	if os.Getenv("IGNORE_TERM") != "" {
		signal.Ignore(syscall.SIGTERM)
	}
	if d, err := time.ParseDuration(os.Getenv("DELAY")); err == nil {
		time.Sleep(d)
	}
	l, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		return err
	}
	me := strconv.Itoa(os.Getpid())
	// Every connection accepted is answered: on SIGTERM the child stops
	// accepting and waits for them (Server.Shutdown would drop one whose
	// request it had just read).
	var open sync.WaitGroup
	srv := &http.Server{ConnState: func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Done()
		}
	}, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ready" {
			if r.URL.Query().Get("pid") != me {
				http.Error(w, "not me", http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintf(w, "gen %s pid %s\n", gen, me)
	})}
	served := make(chan struct{})
	go func() { srv.Serve(l); close(served) }()
	if os.Getenv("NOREADY") == "" {
		if _, err := notify.Send("READY=1\nSTATUS=gen " + gen + " serving"); err != nil {
			return err
		}
	}
	for sig := range sigs {
		switch sig {
		case syscall.SIGUSR1:
			fmt.Printf("gen %s usr1\n", gen)
		case syscall.SIGUSR2:
			os.Exit(5)
		case syscall.SIGTERM:
			l.Close()
			<-served
			idle := make(chan struct{})
			go func() { open.Wait(); close(idle) }()
			select {
			case <-idle:
				return nil
			case <-time.After(10 * time.Second):
				return errors.New("connections still open 10s after SIGTERM")
			}
		}
	}
	return nil
}

// book collects the launcher's log lines so that a test can wait for one.
type book struct {
	t       *testing.T
	mu      sync.Mutex
	lines   []string
	changed chan struct{}
}

func newBook(t *testing.T) *book { return &book{t: t, changed: make(chan struct{})} }

func (b *book) Logf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	b.t.Log(s)
	b.mu.Lock()
	b.lines = append(b.lines, s)
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
}

// wait returns the submatches of the first line matching pattern, waiting
// up to 30 s for it.
func (b *book) wait(pattern string) []string {
	b.t.Helper()
	re := regexp.MustCompile(pattern)
	deadline := time.After(30 * time.Second)
	for {
		b.mu.Lock()
		for _, l := range b.lines {
			if m := re.FindStringSubmatch(l); m != nil {
				b.mu.Unlock()
				return m
			}
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			b.t.Fatalf("no log line matching %q within 30s", pattern)
		}
	}
}

func (b *book) has(pattern string) bool {
	re := regexp.MustCompile(pattern)
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, l := range b.lines {
		if re.MatchString(l) {
			return true
		}
	}
	return false
}

// outer records what a Notifier is told.
type outer struct {
	mu    sync.Mutex
	calls []string
}

func (o *outer) add(kind, status string) {
	o.mu.Lock()
	o.calls = append(o.calls, kind+": "+status)
	o.mu.Unlock()
}
func (o *outer) Ready(s string)        { o.add("ready", s) }
func (o *outer) Reloading(s string)    { o.add("reloading", s) }
func (o *outer) Reloaded(s string)     { o.add("reloaded", s) }
func (o *outer) ReloadFailed(s string) { o.add("failed", s) }
func (o *outer) Stopping(s string)     { o.add("stopping", s) }
func (o *outer) Status(s string)       { o.add("status", s) }

// kinds returns the calls other than Status, in order.
func (o *outer) kinds() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var k []string
	for _, c := range o.calls {
		if !strings.HasPrefix(c, "status:") {
			k = append(k, c[:strings.Index(c, ":")])
		}
	}
	return k
}

// genEnv gives generation gen its environment; roles maps a generation to
// extra assignments (key 0: every generation).
type genEnv map[int][]string

// fixture is a listening socket, and a Generations whose children serve
// on it.
type fixture struct {
	t      *testing.T
	bound  string
	g      *Generations
	log    *book
	out    *outer
	sig    chan os.Signal
	reload chan struct{}
	done   <-chan runResult
	stdout <-chan string
}

func newFixture(t *testing.T, probe ready.Probe, env genEnv) *fixture {
	a, _ := addr.Parse("127.0.0.1:0")
	l, err := addr.Listen(a, syscall.SOCK_STREAM)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	w, lines := lineReader(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, bound: l.Bound, log: newBook(t), out: &outer{},
		sig: make(chan os.Signal, 4), reload: make(chan struct{}, 4), stdout: lines}
	if n, ok := probe.(*ready.Notify); ok {
		n.Logf = f.log.Logf
	}
	f.g = &Generations{
		Probe:        probe,
		ReadyTimeout: 20 * time.Second,
		StopTimeout:  20 * time.Second,
		Logf:         f.log.Logf,
		Notifier:     f.out,
		NewCmd: func(gen int) (*exec.Cmd, func(), error) {
			role := "http"
			extra := append(append([]string(nil), env[0]...), env[gen]...)
			for _, kv := range extra {
				if r, ok := strings.CutPrefix(kv, "ROLE="); ok {
					role = r
				}
			}
			cmd := exec.Command(exe, "-test.run=^$")
			cmd.Env = append(append(os.Environ(), genChildEnv+"="+role, "GEN="+strconv.Itoa(gen)), extra...)
			cmd.ExtraFiles = []*os.File{l.File}
			cmd.Stdout, cmd.Stderr = w, os.Stderr
			return cmd, nil, nil
		},
	}
	return f
}

func (f *fixture) run() {
	res := make(chan runResult, 1)
	exited := make(chan struct{})
	go func() {
		st, err := f.g.Run(f.sig, f.reload)
		res <- runResult{st, err}
		close(exited)
	}()
	f.done = res
	f.t.Cleanup(func() {
		// A test that failed half-way still stops its children (SIGINT:
		// the test children never ignore it) before the leak check.
		select {
		case <-exited:
			return
		default:
		}
		select {
		case f.sig <- syscall.SIGINT:
		default:
		}
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			f.t.Error("Run did not return within 30s of SIGINT")
		}
	})
}

// get asks the children who they are.
func (f *fixture) get() (string, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + f.bound + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return strings.TrimSpace(string(b)), nil
}

func (f *fixture) wantGen(gen int) {
	f.t.Helper()
	s, err := f.get()
	if err != nil || !strings.HasPrefix(s, fmt.Sprintf("gen %d pid ", gen)) {
		f.t.Fatalf("request: %q %v; want an answer from generation %d", s, err, gen)
	}
}

func (f *fixture) stop(sig syscall.Signal, want int) {
	f.t.Helper()
	f.sig <- sig
	if r := await(f.t, f.done); r.err != nil || r.status != want {
		f.t.Fatalf("Run: status %d, %v; want %d", r.status, r.err, want)
	}
}

// TestGenerationsOverlap: children slow to become ready are reloaded four
// times while a client sends requests without pause: no request fails,
// every generation serves, each old one is stopped only after the new one
// is ready, and the outer manager hears READY once and RELOADING/READY
// around each reload.
func TestGenerationsOverlap(t *testing.T) {
	fdtest.Check(t)
	f := newFixture(t, &ready.Notify{}, genEnv{0: {"DELAY=300ms"}})
	f.run()
	f.log.wait(`^generation 1 \(pid \d+\) is ready`)

	var mu sync.Mutex
	served := map[string]int{}
	var failures []string
	quit := make(chan struct{})
	clientDone := make(chan struct{})
	go func() {
		defer close(clientDone)
		for {
			select {
			case <-quit:
				return
			default:
			}
			s, err := f.get()
			mu.Lock()
			if err != nil {
				failures = append(failures, err.Error())
			} else {
				served[strings.Fields(s)[1]]++
			}
			mu.Unlock()
		}
	}()
	seen := func(gen int) bool {
		mu.Lock()
		defer mu.Unlock()
		return served[strconv.Itoa(gen)] > 0
	}
	for gen := 2; gen <= 5; gen++ {
		f.reload <- struct{}{}
		f.log.wait(fmt.Sprintf(`^generation %d \(pid \d+\) is ready after .*; stopping generation %d \(pid \d+\) with SIGTERM`, gen, gen-1))
		f.log.wait(fmt.Sprintf(`^generation %d \(pid \d+\), replaced, exited with status 0$`, gen-1))
		deadline := time.Now().Add(20 * time.Second)
		for !seen(gen) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	close(quit)
	<-clientDone
	mu.Lock()
	t.Logf("requests served per generation: %v", served)
	if len(failures) > 0 {
		t.Errorf("%d requests failed during the reloads, first: %s", len(failures), failures[0])
	}
	for gen := 1; gen <= 5; gen++ {
		if served[strconv.Itoa(gen)] == 0 {
			t.Errorf("generation %d served no request", gen)
		}
	}
	mu.Unlock()
	f.stop(syscall.SIGTERM, 0)
	want := "ready reloading reloaded reloading reloaded reloading reloaded reloading reloaded stopping"
	if got := strings.Join(f.out.kinds(), " "); got != want {
		t.Errorf("outer manager told: %s\nwant: %s", got, want)
	}
	f.out.mu.Lock()
	if !strings.Contains(f.out.calls[0], "generation 1 (pid ") || !strings.Contains(f.out.calls[0], "serving: gen 1 serving") {
		t.Errorf("first status %q: want it to name generation 1 and its own status", f.out.calls[0])
	}
	f.out.mu.Unlock()
}

// TestGenerationsNewExitsBeforeReady: a new generation that exits at once
// is logged with its status; the old one answers throughout; the next
// reload succeeds.
func TestGenerationsNewExitsBeforeReady(t *testing.T) {
	fdtest.Check(t)
	f := newFixture(t, &ready.Notify{}, genEnv{2: {"ROLE=exit"}})
	f.run()
	f.log.wait(`^generation 1 \(pid \d+\) is ready`)
	f.reload <- struct{}{}
	f.log.wait(`^generation 2 \(pid \d+\) exited with status 3 before it was ready; generation 1 \(pid \d+\) keeps serving$`)
	f.wantGen(1)
	f.reload <- struct{}{}
	f.log.wait(`^generation 3 \(pid \d+\) is ready after .*; stopping generation 1 `)
	// Generation 1 may still take a connection or two until it has
	// closed its copy of the socket; once it has exited, 3 answers.
	f.log.wait(`^generation 1 \(pid \d+\), replaced, exited with status 0$`)
	f.wantGen(3)
	f.stop(syscall.SIGTERM, 0)
	if got := strings.Join(f.out.kinds(), " "); got != "ready reloading failed reloading reloaded stopping" {
		t.Errorf("outer manager told: %s", got)
	}
}

// TestGenerationsNeverReady: a new generation that never says READY=1 is
// stopped after the timeout, while the old one answers; a READY=1 sent to
// its socket by a process that is not its own is dropped.
func TestGenerationsNeverReady(t *testing.T) {
	fdtest.Check(t)
	f := newFixture(t, &ready.Notify{}, genEnv{2: {"NOREADY=1"}})
	f.g.ReadyTimeout = 3 * time.Second
	f.run()
	f.log.wait(`^generation 1 \(pid \d+\) is ready`)
	f.reload <- struct{}{}
	m := f.log.wait(`^generation 2: started .* as pid (\d+)`)
	// Someone else (this process, its parent) says READY=1 for it.
	environ, err := os.ReadFile("/proc/" + m[1] + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	var sock string
	for _, kv := range strings.Split(string(environ), "\x00") {
		if v, ok := strings.CutPrefix(kv, "NOTIFY_SOCKET="); ok {
			sock = v
		}
	}
	if _, err := (notify.Client{Addr: sock, Timeout: 5 * time.Second}).Send("READY=1"); err != nil {
		t.Fatal(err)
	}
	f.log.wait(fmt.Sprintf(`^generation 2: notification from pid %d .* dropped`, os.Getpid()))
	f.wantGen(1)
	f.log.wait(`^generation 2 \(pid \d+\) not ready within 3s: stopping it with SIGTERM; generation 1 \(pid \d+\) keeps serving$`)
	f.log.wait(`^generation 2 \(pid \d+\), not ready, exited with status 0$`)
	f.wantGen(1)
	f.stop(syscall.SIGTERM, 0)
}

// TestGenerationsMaxAndSignals: with children that ignore SIGTERM and at
// most two generations, a third reload kills the oldest (logged); other
// signals reach the newest generation only.
func TestGenerationsMaxAndSignals(t *testing.T) {
	fdtest.Check(t)
	f := newFixture(t, &ready.Notify{}, genEnv{0: {"IGNORE_TERM=1"}})
	f.g.MaxGenerations = 2
	f.g.StopTimeout = time.Minute
	f.run()
	f.log.wait(`^generation 1 \(pid \d+\) is ready`)
	f.reload <- struct{}{}
	f.log.wait(`^generation 2 \(pid \d+\) is ready`)
	f.reload <- struct{}{}
	f.log.wait(`^2 generations alive, at most 2: killing generation 1 \(pid \d+, stopping \(replaced\)\), the oldest$`)
	f.log.wait(`^generation 1 \(pid \d+\), replaced, exited with status 137$`)
	f.log.wait(`^generation 3 \(pid \d+\) is ready after .*; stopping generation 2 `)
	f.sig <- syscall.SIGUSR1
	f.log.wait(`^SIGUSR1: forwarded to generation 3 \(pid \d+\)$`)
	select {
	case l := <-f.stdout:
		if l != "gen 3 usr1" {
			t.Fatalf("after SIGUSR1: %q, want gen 3 usr1 (generation 2 is alive but not the newest)", l)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("generation 3 did not get SIGUSR1")
	}
	// SIGINT is not ignored: every generation dies of it.
	f.stop(syscall.SIGINT, 128+int(syscall.SIGINT))
	if f.log.has(`^generation 3 \(pid \d+\) still running`) {
		t.Error("generation 3 was killed")
	}
}

// TestGenerationsStopTimeout: a replaced generation that ignores SIGTERM
// gets SIGKILL after the stop timeout, and so does the last one when the
// launcher stops.
func TestGenerationsStopTimeout(t *testing.T) {
	fdtest.Check(t)
	f := newFixture(t, &ready.Notify{}, genEnv{0: {"IGNORE_TERM=1"}})
	f.g.StopTimeout = 500 * time.Millisecond
	f.run()
	f.log.wait(`^generation 1 \(pid \d+\) is ready`)
	f.reload <- struct{}{}
	f.log.wait(`^generation 1 \(pid \d+\) still running 500ms after the stop signal: sending SIGKILL$`)
	f.log.wait(`^generation 1 \(pid \d+\), replaced, exited with status 137$`)
	f.wantGen(2)
	f.stop(syscall.SIGTERM, 137)
	f.log.wait(`^generation 2 \(pid \d+\) still running 500ms after the stop signal: sending SIGKILL$`)
}

// TestGenerationsRestart: the serving generation crashing is started
// again as the restart policy says, held to readiness.
func TestGenerationsRestart(t *testing.T) {
	fdtest.Check(t)
	f := newFixture(t, &ready.Notify{}, nil)
	f.g.Restart = RestartOnFailure
	f.run()
	f.log.wait(`^generation 1 \(pid \d+\) is ready`)
	f.sig <- syscall.SIGUSR2 // forwarded: it exits 5
	f.log.wait(`^generation 1 \(pid \d+\) exited with status 5 after .*; restarting in `)
	f.log.wait(`^generation 2 \(pid \d+\) is ready`)
	f.wantGen(2)
	f.stop(syscall.SIGTERM, 0)
	// Without a restart policy, Run ends with the status.
	f = newFixture(t, &ready.Notify{}, nil)
	f.run()
	f.log.wait(`^generation 1 \(pid \d+\) is ready`)
	f.sig <- syscall.SIGUSR2
	if r := await(t, f.done); r.err != nil || r.status != 5 {
		t.Fatalf("Run: %d, %v; want 5", r.status, r.err)
	}
}

// TestGenerationsHTTPProbe: children that cannot notify, probed by HTTP on
// the very port they share: only the process asked about ({pid}) answers
// 2xx, so the old generation cannot pass for the new one.
func TestGenerationsHTTPProbe(t *testing.T) {
	fdtest.Check(t)
	f := newFixture(t, nil, genEnv{0: {"NOREADY=1", "DELAY=300ms"}})
	f.g.Probe = &ready.HTTP{URL: "http://" + f.bound + "/ready?pid={pid}"}
	f.run()
	f.log.wait(`^generation 1 \(pid \d+\) is ready`)
	f.reload <- struct{}{}
	f.log.wait(`^generation 2 \(pid \d+\) is ready after .*; stopping generation 1 `)
	f.log.wait(`^generation 1 \(pid \d+\), replaced, exited with status 0$`)
	f.wantGen(2)
	f.stop(syscall.SIGTERM, 0)
}

// TestGenerationsFirstStartFails: the very first start failing is Run's
// error; a MaxGenerations below 2 is refused.
func TestGenerationsFirstStartFails(t *testing.T) {
	fdtest.Check(t)
	g := &Generations{Probe: &ready.Notify{}, NewCmd: func(int) (*exec.Cmd, func(), error) {
		return exec.Command("/nonexistent/program"), nil, nil
	}}
	if _, err := g.Run(nil, nil); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing program: %v, want ErrNotExist", err)
	}
	g.MaxGenerations = 1
	if _, err := g.Run(nil, nil); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("MaxGenerations 1: %v, want EINVAL", err)
	}
}
