//go:build linux

package watch

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// run runs b, failing the test if Run does not return in time.
func run(t *testing.T, ctx context.Context, b *Build) Result {
	t.Helper()
	ch := make(chan Result, 1)
	go func() { ch <- b.Run(ctx) }()
	select {
	case r := <-ch:
		return r
	case <-time.After(wait):
		t.Fatalf("build %q still running after %v", b.Command, wait)
	}
	return Result{}
}

// signal is a Stream that closes a channel when a marker has been written.
type signal struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	seen   chan struct{}
	once   sync.Once
}

func newSignal(marker string) *signal { return &signal{marker: marker, seen: make(chan struct{})} }

func (s *signal) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	if strings.Contains(s.buf.String(), s.marker) {
		s.once.Do(func() { close(s.seen) })
	}
	return len(p), nil
}

func (s *signal) await(t *testing.T) {
	t.Helper()
	select {
	case <-s.seen:
	case <-time.After(wait):
		t.Fatalf("the build never printed %q", s.marker)
	}
}

// awaitGone waits until pid has exited (it is gone or a zombie left to
// its new parent).
func awaitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return
		}
		// pid (comm) S ...: the state follows the last ')'.
		if s := string(b); strings.HasPrefix(s[strings.LastIndexByte(s, ')')+1:], " Z") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running: %s", pid, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %q", path, b)
	}
	return pid
}

func TestBuildSuccess(t *testing.T) {
	checkFDs(t)
	r := run(t, context.Background(), &Build{Command: "echo out; echo err >&2; echo $PWD", Dir: "/tmp"})
	if !r.OK() || r.ExitCode != 0 {
		t.Fatalf("build failed: %v (%d)", r.Err, r.ExitCode)
	}
	if got := string(r.Output); got != "out\nerr\n/tmp\n" {
		t.Errorf("output %q", got)
	}
}

func TestBuildFailure(t *testing.T) {
	checkFDs(t)
	r := run(t, context.Background(), &Build{Command: "echo './main.go:3: undefined: x' >&2; exit 3"})
	var ee *exec.ExitError
	if r.OK() || !errors.As(r.Err, &ee) || r.ExitCode != 3 {
		t.Fatalf("got %v (%d), want exit status 3", r.Err, r.ExitCode)
	}
	if got := string(r.Output); got != "./main.go:3: undefined: x\n" {
		t.Errorf("output %q", got)
	}
	r = run(t, context.Background(), &Build{Command: "exec /nonexistent/cc"})
	if r.OK() || r.ExitCode != 127 || !strings.Contains(string(r.Output), "/nonexistent/cc") {
		t.Errorf("missing program: %v (%d) %q", r.Err, r.ExitCode, r.Output)
	}
}

func TestBuildOutputLimit(t *testing.T) {
	checkFDs(t)
	// 10000 numbered lines of 11 bytes; keep the last 1000 bytes.
	r := run(t, context.Background(), &Build{
		Command:     `i=0; while [ $i -lt 10000 ]; do printf '%010d\n' $i; i=$((i+1)); done`,
		OutputLimit: 1000,
	})
	if !r.OK() {
		t.Fatal(r.Err)
	}
	if len(r.Output) != 1000 || r.Dropped != 110000-1000 {
		t.Fatalf("kept %d, dropped %d", len(r.Output), r.Dropped)
	}
	if !bytes.HasSuffix(r.Output, []byte("0000009999\n")) {
		t.Errorf("output does not end with the last line: %q", r.Output[len(r.Output)-30:])
	}
}

// TestBuildCancel stops a build whose process group holds a process that
// ignores SIGTERM: Run returns once SIGKILL has taken it, and nothing of
// the build is left.
func TestBuildCancel(t *testing.T) {
	checkFDs(t)
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "pid")
	s := newSignal("started")
	b := &Build{
		Command:   `(trap '' TERM; exec sleep 300) & echo $! > ` + pidfile + `; echo started; wait`,
		KillDelay: 100 * time.Millisecond,
		Stream:    s,
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan Result, 1)
	go func() { ch <- b.Run(ctx) }()
	s.await(t)
	pid := readPid(t, pidfile)
	cancel()
	var r Result
	select {
	case r = <-ch:
	case <-time.After(wait):
		t.Fatal("Run did not return after cancel")
	}
	if !errors.Is(r.Err, context.Canceled) || r.ExitCode != -1 {
		t.Errorf("got %v (%d), want context.Canceled (-1)", r.Err, r.ExitCode)
	}
	if string(r.Output) != "started\n" {
		t.Errorf("output %q", r.Output)
	}
	awaitGone(t, pid)
}

func TestBuildTimeout(t *testing.T) {
	checkFDs(t)
	r := run(t, context.Background(), &Build{Command: "echo compiling; exec sleep 300", Timeout: 200 * time.Millisecond})
	if !errors.Is(r.Err, ErrTimeout) || !strings.Contains(r.Err.Error(), "200ms") {
		t.Errorf("got %v, want a timeout after 200ms", r.Err)
	}
	if string(r.Output) != "compiling\n" {
		t.Errorf("output %q", r.Output)
	}
}

// TestBuildLeftovers: a build that exits leaving a process in its group
// (holding the output pipe) returns, and the process is killed.
func TestBuildLeftovers(t *testing.T) {
	checkFDs(t)
	pidfile := filepath.Join(t.TempDir(), "pid")
	r := run(t, context.Background(), &Build{Command: "sleep 300 & echo $! > " + pidfile})
	if !r.OK() {
		t.Fatal(r.Err)
	}
	awaitGone(t, readPid(t, pidfile))
}

// TestLoop: the start-up build is reported; a change during a build stops
// it (its process is killed, it is not reported) and the next build is
// reported with the changes that led to it.
func TestLoop(t *testing.T) {
	checkFDs(t)
	src, state := t.TempDir(), t.TempDir()
	w := start(t, Options{Paths: []string{src}})
	count := filepath.Join(state, "count")
	pidfile := filepath.Join(state, "pid")
	s := newSignal("build 1 waiting")
	// Build 0 succeeds, build 1 waits until killed, build 2 fails.
	b := &Build{
		Command: `n=$(cat ` + count + ` 2>/dev/null || echo 0); echo $((n+1)) > ` + count + `
case $n in
0) echo build 0 ok ;;
1) echo $$ > ` + pidfile + `; echo build 1 waiting; exec sleep 300 ;;
*) echo build $n broken; exit 1 ;;
esac`,
		Stream: s,
	}
	type done struct {
		r  Result
		ev Event
	}
	results := make(chan done, 10)
	ctx, cancel := context.WithCancel(context.Background())
	loopErr := make(chan error, 1)
	go func() { loopErr <- Loop(ctx, w, b, func(r Result, ev Event) { results <- done{r, ev} }) }()
	get := func() done {
		t.Helper()
		select {
		case d := <-results:
			return d
		case <-time.After(wait):
			t.Fatal("no build result")
		}
		return done{}
	}
	d := get()
	if !d.r.OK() || string(d.r.Output) != "build 0 ok\n" || len(d.ev.Paths) != 0 {
		t.Fatalf("start-up build: %v %q %+v", d.r.Err, d.r.Output, d.ev)
	}
	f1, f2 := filepath.Join(src, "a.go"), filepath.Join(src, "b.go")
	write(t, f1, "x")
	s.await(t)
	pid := readPid(t, pidfile)
	write(t, f2, "x")
	d = get()
	if d.r.OK() || d.r.ExitCode != 1 || string(d.r.Output) != "build 2 broken\n" {
		t.Fatalf("build after a change during a build: %v %q", d.r.Err, d.r.Output)
	}
	if len(d.ev.Paths) != 2 || d.ev.Paths[0] != f1 || d.ev.Paths[1] != f2 {
		t.Errorf("changes behind the build: %q, want %s and %s", d.ev.Paths, f1, f2)
	}
	awaitGone(t, pid)
	cancel()
	select {
	case err := <-loopErr:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Loop returned %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Loop did not return after cancel")
	}
	if len(results) != 0 {
		t.Errorf("a stopped build was reported: %+v", <-results)
	}
}
