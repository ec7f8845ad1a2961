//go:build linux

package handoff

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend/internal/fdtest"
)

// instance is a running examples/graceful process.
type instance struct {
	cmd    *exec.Cmd
	pid    int
	out    *bufio.Reader
	stderr *syncBuffer
	exited chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startGraceful starts examples/graceful with args and env; it is killed
// when the test ends if still running.
func startGraceful(t *testing.T, args []string, env ...string) *instance {
	t.Helper()
	return startExample(t, gracefulBin, args, env...)
}

// startExample starts the example program bin with args and env; it is
// killed when the test ends if still running.
func startExample(t testing.TB, bin string, args []string, env ...string) *instance {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	in := &instance{cmd: cmd, stderr: &syncBuffer{}, exited: make(chan error, 1)}
	cmd.Stderr = in.stderr
	// A pipe of our own rather than StdoutPipe, which Wait closes: the
	// last lines are read after the process has exited.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = w
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	in.pid = cmd.Process.Pid
	in.out = bufio.NewReader(r)
	go func() { in.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		in.wait(10 * time.Second)
		r.Close()
	})
	return in
}

// waitReady waits for the "ready" line and returns it.
func (in *instance) waitReady(t testing.TB) string {
	t.Helper()
	line, err := readLine(in.out, 10*time.Second)
	if err != nil || !strings.HasPrefix(line, fmt.Sprintf("ready pid=%d ", in.pid)) {
		t.Fatalf("instance %d: %q %v; stderr:\n%s", in.pid, line, err, in.stderr)
	}
	return line
}

// wait waits for the process to exit within d.
func (in *instance) wait(d time.Duration) error {
	select {
	case err := <-in.exited:
		in.exited <- err
		return err
	case <-time.After(d):
		return fmt.Errorf("process %d did not exit within %v", in.pid, d)
	}
}

// procFDs lists the descriptors of process pid with their targets.
func procFDs(t *testing.T, pid int) []string {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		target, _ := os.Readlink(filepath.Join(dir, e.Name()))
		out = append(out, e.Name()+" -> "+target)
	}
	sort.Strings(out)
	return out
}

// freeAddr returns a loopback TCP address nobody listens on.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// load is a set of clients sending requests without pause.
type load struct {
	addr   string
	cancel context.CancelFunc
	wg     sync.WaitGroup
	trs    []*http.Transport

	mu     sync.Mutex
	ok     int
	failed []string
	pids   map[int]int
}

// startLoad runs fresh clients that open a connection per request, and
// keep-alive clients that reuse theirs. Requests are POSTs, which
// http.Transport does not retry, so every failure is seen.
func startLoad(addr string, fresh, keepAlive int) *load {
	ctx, cancel := context.WithCancel(context.Background())
	ld := &load{addr: addr, cancel: cancel, pids: map[int]int{}}
	for i := range fresh + keepAlive {
		tr := &http.Transport{DisableKeepAlives: i < fresh, MaxIdleConnsPerHost: 1}
		ld.trs = append(ld.trs, tr)
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		ld.wg.Add(1)
		go func() {
			defer ld.wg.Done()
			for ctx.Err() == nil {
				ld.one(client)
			}
		}()
	}
	return ld
}

func (ld *load) one(client *http.Client) {
	resp, err := client.Post("http://"+ld.addr+"/", "text/plain", strings.NewReader("hello"))
	var pid int
	if err == nil {
		var body []byte
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			pid, err = strconv.Atoi(strings.TrimSuffix(string(body), "\n"))
			if err == nil && (resp.StatusCode != 200 || !strings.HasSuffix(string(body), "\n")) {
				err = fmt.Errorf("status %d body %q", resp.StatusCode, body)
			}
		}
	}
	ld.mu.Lock()
	defer ld.mu.Unlock()
	if err != nil {
		ld.failed = append(ld.failed, err.Error())
		return
	}
	ld.ok++
	ld.pids[pid]++
}

// stop stops the clients and closes their idle connections.
func (ld *load) stop() {
	ld.cancel()
	ld.wg.Wait()
	for _, tr := range ld.trs {
		tr.CloseIdleConnections()
	}
}

func (ld *load) check(t *testing.T) {
	t.Helper()
	ld.mu.Lock()
	defer ld.mu.Unlock()
	if len(ld.failed) > 0 {
		t.Errorf("%d of %d requests failed; first: %s", len(ld.failed), ld.ok+len(ld.failed), strings.Join(ld.failed[:min(len(ld.failed), 5)], "; "))
	}
	if ld.ok == 0 {
		t.Error("no request succeeded")
	}
}

// TestGracefulRestarts restarts examples/graceful 20 times under constant
// load: no request fails, every instance answers, each old one drains and
// exits 0, and the survivor has exactly the descriptors a fresh instance
// has.
func TestGracefulRestarts(t *testing.T) {
	fdtest.Check(t)
	addr := freeAddr(t)
	point := filepath.Join(shortDir(t), "g.sock")
	args := []string{"-listen", addr, "-handoff", point, "-idle-grace", "1s"}
	// No garbage collection: a descriptor dropped without Close must show
	// as a leak rather than be closed by a finalizer.
	startGraceful := func(t *testing.T, args []string) *instance { return startGraceful(t, args, "GOGC=off") }

	first := startGraceful(t, args)
	if line := first.waitReady(t); !strings.HasSuffix(line, "inherited=false addr="+addr) {
		t.Fatalf("first instance: %q", line)
	}
	baseline := procFDs(t, first.pid)

	ld := startLoad(addr, 4, 4)
	instances := []*instance{first}
	for i := range 20 {
		time.Sleep(100 * time.Millisecond)
		in := startGraceful(t, args)
		if line := in.waitReady(t); !strings.Contains(line, "inherited=true") {
			t.Fatalf("restart %d: %q", i+1, line)
		}
		instances = append(instances, in)
	}
	time.Sleep(200 * time.Millisecond)
	ld.stop()
	ld.check(t)

	for _, in := range instances[:len(instances)-1] {
		if err := in.wait(10 * time.Second); err != nil {
			t.Errorf("old instance %d: %v; stderr:\n%s", in.pid, err, in.stderr)
			continue
		}
		if line, _ := readLine(in.out, time.Second); line != fmt.Sprintf("drained pid=%d", in.pid) {
			t.Errorf("old instance %d said %q", in.pid, line)
		}
	}
	served := 0
	for _, in := range instances {
		if ld.pids[in.pid] > 0 {
			served++
		}
	}
	last := instances[len(instances)-1]
	t.Logf("%d requests answered by %d of %d instances", ld.ok, served, len(instances))
	if served < len(instances)/2 || ld.pids[last.pid] == 0 {
		t.Errorf("answers by pid %v: the pids did not change as the instances did", ld.pids)
	}

	// The survivor's descriptors: those of a fresh instance, none leaked
	// by nineteen hand-overs and thousands of connections.
	var now []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		now = procFDs(t, last.pid)
		if len(now) <= len(baseline) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(now) != len(baseline) {
		t.Errorf("survivor has %d descriptors, a fresh instance %d:\nnow:  %v\nfresh: %v", len(now), len(baseline), now, baseline)
	}

	last.cmd.Process.Signal(syscall.SIGTERM)
	if err := last.wait(10 * time.Second); err != nil {
		t.Errorf("last instance: %v", err)
	}
	if _, err := os.Lstat(point); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("hand-off point left behind: %v", err)
	}
}

// TestGracefulCrashBeforeReady: new versions that take the socket and
// crash before Ready leave the old instance serving, without a failed
// request; the next good version takes over from it.
func TestGracefulCrashBeforeReady(t *testing.T) {
	fdtest.Check(t)
	addr := freeAddr(t)
	point := filepath.Join(shortDir(t), "g.sock")
	args := []string{"-listen", addr, "-handoff", point, "-idle-grace", "1s"}
	old := startGraceful(t, args)
	old.waitReady(t)

	ld := startLoad(addr, 2, 2)
	for range 3 {
		time.Sleep(100 * time.Millisecond)
		bad := startGraceful(t, args, "GRACEFUL_CRASH_BEFORE_READY=1")
		err := bad.wait(10 * time.Second)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Fatalf("crashing version: %v; stderr:\n%s", err, bad.stderr)
		}
		if !strings.Contains(bad.stderr.String(), "crashing before ready") {
			t.Fatalf("crashing version's stderr:\n%s", bad.stderr)
		}
	}
	time.Sleep(200 * time.Millisecond)
	ld.stop()
	ld.check(t)
	if len(ld.pids) != 1 || ld.pids[old.pid] != ld.ok {
		t.Errorf("answers by pid %v, want all by %d", ld.pids, old.pid)
	}
	select {
	case err := <-old.exited:
		t.Fatalf("old instance exited: %v\n%s", err, old.stderr)
	default:
	}

	good := startGraceful(t, args)
	if line := good.waitReady(t); !strings.Contains(line, "inherited=true") {
		t.Fatalf("next version: %q", line)
	}
	if err := old.wait(10 * time.Second); err != nil {
		t.Fatalf("old instance after a good upgrade: %v", err)
	}
}

// TestGracefulLockTimeout: an upgrade that finds another in progress waits,
// then gives up with a clear error.
func TestGracefulLockTimeout(t *testing.T) {
	fdtest.Check(t)
	point := filepath.Join(shortDir(t), "g.sock")
	u := open(t, Config{Path: point}) // an upgrade in progress: holds the lock
	start := time.Now()
	in := startGraceful(t, []string{"-listen", freeAddr(t), "-handoff", point, "-lock-timeout", "500ms"})
	err := in.wait(10 * time.Second)
	took := time.Since(start)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("waiting upgrade: %v", err)
	}
	want := fmt.Sprintf("another upgrade at this hand-off point holds %s (process %d) and did not finish within 500ms: resource temporarily unavailable", lockPath(point), os.Getpid())
	if !strings.Contains(in.stderr.String(), want) {
		t.Errorf("stderr %q does not say %q", in.stderr, want)
	}
	if took < 500*time.Millisecond {
		t.Errorf("gave up after %v", took)
	}
	u.Close()
}
