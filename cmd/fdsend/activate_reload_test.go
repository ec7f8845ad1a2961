//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend/activation"
	"github.com/fdsend/fdsend/internal/fdtest"
	"github.com/fdsend/fdsend/notify"
)

// pyReloadApp is a server of the kind --reload is for, standard library
// only: it takes the socket with socket.socket(fileno=3), answers HTTP/1.1
// (keep-alive) with its pid and FDSEND_GENERATION, becomes ready after
// APP_READY_AFTER seconds, and on SIGTERM stops accepting and finishes what
// it accepted (idle keep-alive connections close after 1 s; a request on
// one gets "Connection: close"). What it does at start comes from the file
// APP_MODE_FILE: "ok"; "exit" (exit 3 at once); "hang" (never ready);
// "stubborn" (ignore SIGTERM); "probe" (never notify: it answers
// /ready?pid=N with 200 only for its own pid, and listens on
// 127.0.0.GEN:APP_TCP_PORT once ready).
const pyReloadApp = `
import os, signal, socket, sys, threading, time
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
gen = os.environ["FDSEND_GENERATION"]
mode = open(os.environ["APP_MODE_FILE"]).read().strip()
if mode == "exit":
    print("app generation %s: broken configuration" % gen, file=sys.stderr, flush=True)
    sys.exit(3)
stopping = threading.Event()
ready = threading.Event()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 1
    def do_GET(self):
        code, body = 200, ("%d %s\n" % (os.getpid(), gen)).encode()
        if self.path.startswith("/ready"):
            want = self.path.split("pid=")[-1]
            code = 200 if ready.is_set() and want == str(os.getpid()) else 503
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        if stopping.is_set():
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True
srv = S(("", 0), H, bind_and_activate=False)
srv.socket = socket.socket(fileno=3)
# SIGTERM is blocked before any thread starts, so every thread inherits the
# mask, and the main thread takes it with sigwait: a Python handler would
# run only when the main thread next runs Python code, and the kernel may
# deliver the signal to another thread.
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
def become_ready():
    time.sleep(float(os.environ.get("APP_READY_AFTER", "1")))
    if mode == "probe":
        t = socket.socket()
        t.bind(("127.0.0.%s" % gen, int(os.environ["APP_TCP_PORT"])))
        t.listen()
        keep.append(t)
        ready.set()
        return
    if mode != "hang":
        n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        n.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
keep = []
threading.Thread(target=become_ready, daemon=True).start()
serving = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1})
serving.start()
while True:
    signal.sigwait({signal.SIGTERM})
    if mode != "stubborn":
        break
stopping.set()
srv.shutdown()
serving.join()
srv.server_close()
`

// reloadApp writes the app and its mode file into a directory and returns
// the launcher's arguments to run it and the mode file's path.
func reloadApp(t *testing.T, mode string) (argv []string, modeFile string) {
	t.Helper()
	dir := t.TempDir()
	app := filepath.Join(dir, "app.py")
	modeFile = filepath.Join(dir, "mode")
	if err := os.WriteFile(app, []byte(pyReloadApp), 0o644); err != nil {
		t.Fatal(err)
	}
	setMode(t, modeFile, mode)
	return []string{"--setenv=APP_MODE_FILE=" + modeFile, "--", python3(t), app}, modeFile
}

func setMode(t *testing.T, file, mode string) {
	t.Helper()
	if err := os.WriteFile(file, []byte(mode), 0o644); err != nil {
		t.Fatal(err)
	}
}

// load sends requests to url without pause from several goroutines, some
// with a new connection each time and some over keep-alive connections,
// until stop is called, and counts the failures and the answers.
type load struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	ok, fail atomic.Int64
	mu       sync.Mutex
	gens     map[string]int // generation -> answers
	errs     []string
	conns    []net.Conn // every connection dialed
	halted   bool
}

// halt stops the clients and closes every connection they dialed.
func (ld *load) halt() {
	ld.mu.Lock()
	if ld.halted {
		ld.mu.Unlock()
		return
	}
	ld.halted = true
	ld.mu.Unlock()
	close(ld.stop)
	ld.wg.Wait()
	ld.mu.Lock()
	for _, c := range ld.conns {
		c.Close()
	}
	ld.mu.Unlock()
}

func startLoad(t *testing.T, url string) *load {
	ld := &load{stop: make(chan struct{}), gens: map[string]int{}}
	// Stopped however the test ends (a failed test must not leave clients
	// running into the next one), and every connection the clients dialed
	// is closed then: net/http's Transport may put one back in its idle
	// pool after the last CloseIdleConnections.
	t.Cleanup(ld.halt)
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err == nil {
			ld.mu.Lock()
			ld.conns = append(ld.conns, c)
			ld.mu.Unlock()
		}
		return c, err
	}
	for i := range 4 {
		tr := &http.Transport{DisableKeepAlives: i%2 == 0, DialContext: dial}
		c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
		ld.wg.Add(1)
		go func() {
			defer ld.wg.Done()
			defer tr.CloseIdleConnections()
			for {
				select {
				case <-ld.stop:
					return
				default:
				}
				resp, err := c.Get(url)
				if err == nil {
					var body []byte
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %s", resp.Status)
					}
					if err == nil {
						f := strings.Fields(string(body))
						ld.mu.Lock()
						if len(f) == 2 {
							ld.gens[f[1]]++
						}
						ld.mu.Unlock()
					}
				}
				if err != nil {
					ld.fail.Add(1)
					ld.mu.Lock()
					if len(ld.errs) < 10 {
						ld.errs = append(ld.errs, err.Error())
					}
					ld.mu.Unlock()
					continue
				}
				ld.ok.Add(1)
			}
		}()
	}
	return ld
}

// end stops the load and fails the test if any request failed.
func (ld *load) end(t *testing.T) {
	t.Helper()
	ld.halt()
	t.Logf("%d requests answered, %d failed; answers per generation: %v", ld.ok.Load(), ld.fail.Load(), ld.gens)
	if n := ld.fail.Load(); n > 0 || ld.ok.Load() == 0 {
		t.Errorf("%d requests failed (%d answered): %q", n, ld.ok.Load(), ld.errs)
	}
}

// awaitServed waits, up to d, until generation gen has answered a request.
// It does not fail the test: callers check who served afterwards.
func (ld *load) awaitServed(gen int, d time.Duration) {
	deadline := time.Now().Add(d)
	for ld.served(gen) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// served reports how many answers generation gen gave.
func (ld *load) served(gen int) int {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return ld.gens[strconv.Itoa(gen)]
}

// openFDs counts the descriptors process pid has open.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func readyRE(gen int) *regexp.Regexp {
	return regexp.MustCompile(fmt.Sprintf(`^fdsend activate: generation %d \(pid (\d+)\) is ready after`, gen))
}

func replacedRE(gen int) *regexp.Regexp {
	return regexp.MustCompile(fmt.Sprintf(`^fdsend activate: generation %d \(pid \d+\), replaced, exited with status (\d+)`, gen))
}

// logIndex is the index of the first log line matching re, or -1.
func logIndex(l *launcher, re *regexp.Regexp) int {
	l.logMu.Lock()
	defer l.logMu.Unlock()
	for i, line := range l.log {
		if re.MatchString(line) {
			return i
		}
	}
	return -1
}

// The overlap test: a child that takes a second to become ready,
// twenty reloads while clients send requests without pause over new and
// keep-alive connections: no request fails, every generation serves, each
// old generation exits only after the new one is ready, and the launcher
// holds as many descriptors at the end as after the first start.
func TestActivateReloadOverlap(t *testing.T) {
	fdtest.Check(t)
	args, _ := reloadApp(t, "ok")
	l := activate(t, nil, append([]string{"--reload", "-l", "127.0.0.1:0"}, args...)...)
	url := "http://" + l.addr() + "/"
	l.waitLog(readyRE(1))
	fds := openFDs(t, l.cmd.Process.Pid)
	ld := startLoad(t, url)
	const reloads = 20
	for gen := 2; gen <= reloads+1; gen++ {
		l.signal(syscall.SIGHUP)
		l.waitLog(readyRE(gen))
		l.waitLog(replacedRE(gen - 1))
	}
	// The last generation serves a moment under load too.
	ld.awaitServed(reloads+1, 10*time.Second)
	ld.end(t)
	for gen := 1; gen <= reloads+1; gen++ {
		if ld.served(gen) == 0 {
			t.Errorf("generation %d answered no request", gen)
		}
		if gen > 1 {
			ready, exited := logIndex(l, readyRE(gen)), logIndex(l, replacedRE(gen-1))
			if ready < 0 || exited < 0 || exited < ready {
				t.Errorf("generation %d exited (log line %d) before generation %d was ready (line %d)", gen-1, exited, gen, ready)
			}
		}
	}
	if m := replacedRE(1).FindStringSubmatch(l.logText()); m != nil && m[1] != "0" {
		t.Errorf("a replaced generation exited with status %s, not after a clean stop", m[1])
	}
	if got := openFDs(t, l.cmd.Process.Pid); got != fds {
		t.Errorf("the launcher has %d descriptors open after %d reloads, %d after the first start", got, reloads, fds)
	}
	l.signal(syscall.SIGTERM)
	if status := l.wait(); status != 0 {
		t.Errorf("launcher exited with status %d after SIGTERM, want the child's 0", status)
	}
}

// A new generation that exits before it is ready, and one that never
// becomes ready: the serving one answers throughout, the launcher says
// why, and the next reload still works.
func TestActivateReloadFailedGenerations(t *testing.T) {
	fdtest.Check(t)
	args, mode := reloadApp(t, "ok")
	l := activate(t, nil, append([]string{"--reload", "--ready-timeout=2s", "--stop-timeout=2s", "-l", "127.0.0.1:0"}, args...)...)
	url := "http://" + l.addr() + "/"
	l.waitLog(readyRE(1))
	ld := startLoad(t, url)

	setMode(t, mode, "exit")
	l.signal(syscall.SIGHUP)
	l.waitLog(regexp.MustCompile(`^fdsend activate: generation 2 \(pid \d+\) exited with status 3 before it was ready; generation 1 \(pid \d+\) keeps serving$`))

	setMode(t, mode, "hang")
	l.signal(syscall.SIGHUP)
	l.waitLog(regexp.MustCompile(`^fdsend activate: generation 3 \(pid \d+\) not ready within 2s.*: stopping it with SIGTERM; generation 1 \(pid \d+\) keeps serving$`))

	setMode(t, mode, "ok")
	l.signal(syscall.SIGHUP)
	l.waitLog(readyRE(4))
	l.waitLog(replacedRE(1))
	ld.awaitServed(4, 10*time.Second)
	ld.end(t)
	// Generation 3 accepted on the shared socket while not ready (what it
	// does before it says so is its own business) and finished those
	// requests when stopped; generation 2 never ran long enough to.
	if ld.served(2) > 0 || ld.served(4) == 0 {
		t.Errorf("answers by generation: %v; want none from 2, some from 4", ld.gens)
	}
	l.signal(syscall.SIGTERM)
	if status := l.wait(); status != 0 {
		t.Errorf("launcher exited with status %d", status)
	}
}

// Probes for a child that cannot notify: an http probe that only the new
// generation answers ({pid}), and a tcp probe of an address only it
// listens on ({gen} in the address).
func TestActivateReloadProbes(t *testing.T) {
	for _, kind := range []string{"http", "tcp"} {
		t.Run(kind, func(t *testing.T) {
			fdtest.Check(t)
			port := freePortNumber(t)
			args, _ := reloadApp(t, "probe")
			addr := "127.0.0.1:" + strconv.Itoa(freePortNumber(t))
			probe := "--ready=http:http://" + addr + "/ready?pid={pid}"
			if kind == "tcp" {
				probe = "--ready=tcp:127.0.0.{gen}:" + strconv.Itoa(port)
			}
			l := activate(t, nil, append([]string{"--reload", probe, "--ready-timeout=20s", "-l", addr, "-E", "APP_TCP_PORT=" + strconv.Itoa(port)}, args...)...)
			l.waitLog(readyRE(1))
			ld := startLoad(t, "http://"+addr+"/")
			l.signal(syscall.SIGHUP)
			l.waitLog(readyRE(2))
			l.waitLog(replacedRE(1))
			ld.end(t)
			if strings.Contains(l.logText(), "NOTIFY_SOCKET") {
				t.Errorf("log mentions NOTIFY_SOCKET with a %s probe", kind)
			}
			l.signal(syscall.SIGTERM)
			l.wait()
		})
	}
}

// freePortNumber is a TCP port free on 127.0.0.1 a moment ago.
func freePortNumber(t *testing.T) int {
	t.Helper()
	_, p, _ := net.SplitHostPort(freePort(t))
	n, _ := strconv.Atoi(p)
	return n
}

// A generation that ignores SIGTERM gets SIGKILL after --stop-timeout; with
// --max-generations 2 a reload while one is still stopping kills the
// oldest first.
func TestActivateReloadStubbornChild(t *testing.T) {
	fdtest.Check(t)
	t.Run("stop-timeout", func(t *testing.T) {
		args, _ := reloadApp(t, "stubborn")
		l := activate(t, nil, append([]string{"--reload", "--stop-timeout=1s", "-l", "127.0.0.1:0", "-E", "APP_READY_AFTER=0.2"}, args...)...)
		l.waitLog(readyRE(1))
		l.signal(syscall.SIGHUP)
		l.waitLog(readyRE(2))
		l.waitLog(regexp.MustCompile(`^fdsend activate: generation 1 \(pid \d+\) still running 1s after the stop signal: sending SIGKILL$`))
		l.waitLog(regexp.MustCompile(`^fdsend activate: generation 1 \(pid \d+\), replaced, exited with status 137`))
		l.signal(syscall.SIGKILL)
		l.wait()
	})
	t.Run("max-generations", func(t *testing.T) {
		args, _ := reloadApp(t, "stubborn")
		l := activate(t, nil, append([]string{"--reload", "--max-generations=2", "--stop-timeout=60s", "-l", "127.0.0.1:0", "-E", "APP_READY_AFTER=0.2"}, args...)...)
		l.waitLog(readyRE(1))
		l.signal(syscall.SIGHUP)
		l.waitLog(readyRE(2))
		l.signal(syscall.SIGHUP)
		l.waitLog(regexp.MustCompile(`^fdsend activate: 2 generations alive, at most 2: killing generation 1 \(pid \d+, stopping \(replaced\)\), the oldest$`))
		l.waitLog(readyRE(3))
		l.signal(syscall.SIGKILL)
		l.wait()
	})
}

// Under a service manager (NOTIFY_SOCKET) the launcher reports as
// Type=notify-reload expects: READY=1 once the first generation is ready,
// RELOADING=1 with MONOTONIC_USEC at a reload, READY=1 when it is done, and
// STATUS= lines naming the generations; the children's own READY=1 never
// reaches the manager.
func TestActivateReloadOuterManager(t *testing.T) {
	fdtest.Check(t)
	dir := t.TempDir()
	sockPath := filepath.Join(dir, "notify")
	mgr, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := mgr.ReadFromUnix(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	next := func(want string) string {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case m := <-msgs:
				if strings.Contains(m, want) {
					return m
				}
				t.Logf("manager got %q", m)
			case <-deadline:
				t.Fatalf("the manager never got %q", want)
			}
		}
	}
	args, _ := reloadApp(t, "ok")
	l := activate(t, []string{"NOTIFY_SOCKET=" + sockPath}, append([]string{"--reload", "-l", "127.0.0.1:0", "-E", "APP_READY_AFTER=0.3"}, args...)...)
	first := next("READY=1")
	if !regexp.MustCompile(`STATUS=generation 1 \(pid \d+\) serving`).MatchString(first) {
		t.Errorf("first READY=1 came with %q", first)
	}
	l.signal(syscall.SIGHUP)
	reloading := next("RELOADING=1")
	if !regexp.MustCompile(`MONOTONIC_USEC=\d+`).MatchString(reloading) {
		t.Errorf("RELOADING=1 without MONOTONIC_USEC: %q", reloading)
	}
	done := next("READY=1")
	if !strings.Contains(done, "generation 2") {
		t.Errorf("READY=1 after the reload says %q", done)
	}
	l.signal(syscall.SIGTERM)
	if stopping := next("STOPPING=1"); !regexp.MustCompile(`STATUS=generation 2 \(pid \d+\) stopping`).MatchString(stopping) {
		t.Errorf("STOPPING=1 came with %q", stopping)
	}
	l.wait()
	for m := range drain(msgs) {
		if strings.Contains(m, "READY=1") && !strings.Contains(m, "STATUS=") {
			t.Errorf("a bare READY=1 (a child's?) reached the manager: %q", m)
		}
	}
}

// drain returns what is left in ch without waiting.
func drain(ch chan string) map[string]bool {
	out := map[string]bool{}
	for {
		select {
		case m, ok := <-ch:
			if !ok {
				return out
			}
			out[m] = true
		default:
			return out
		}
	}
}

// goServerSrc is a Go server for the development loop: it serves fd 3 with
// one line per connection, and on SIGTERM stops accepting and finishes the
// connections it has.
const goServerSrc = `package main

import (
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

const version = "VERSION"

func main() {
	l, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		panic(err)
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go func() { <-term; l.Close() }()
	if c, err := net.Dial("unixgram", os.Getenv("NOTIFY_SOCKET")); err == nil {
		c.Write([]byte("READY=1"))
		c.Close()
	}
	var wg sync.WaitGroup
	for {
		c, err := l.Accept()
		if err != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Write([]byte(version + " " + os.Getenv("FDSEND_GENERATION") + "\n"))
			c.Close()
		}()
	}
	wg.Wait()
}
`

// The development loop: a Go server edited on disk while a client loops.
// A broken edit fails to build, its output is shown and the running
// generation keeps answering; the fixed edit builds and takes over. No
// request fails.
func TestActivateWatchBuild(t *testing.T) {
	fdtest.Check(t)
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtimeGOROOT(), "bin", "go")
	}
	work := t.TempDir()
	src := filepath.Join(work, "src")
	bin := filepath.Join(work, "bin", "server")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module server\n\ngo 1.22\n")
	write("main.go", strings.Replace(goServerSrc, "VERSION", "v1", 1))
	build := fmt.Sprintf("cd %s && %s build -o %s .", src, gobin, bin)
	l := activate(t, []string{"GOFLAGS=-mod=mod", "CGO_ENABLED=0"}, "--watch", src, "--build", build, "-l", "127.0.0.1:0", "--", bin)
	addr := l.addr()
	l.waitLog(regexp.MustCompile(`^fdsend activate: build succeeded`))
	l.waitLog(readyRE(1))

	var fails, answers atomic.Int64
	var mu sync.Mutex
	seen := map[string]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				fails.Add(1)
				continue
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			line, err := io.ReadAll(c)
			c.Close()
			if err != nil || len(line) == 0 {
				fails.Add(1)
				continue
			}
			answers.Add(1)
			mu.Lock()
			seen[strings.Fields(string(line))[0]] = true
			mu.Unlock()
		}
	}()

	write("main.go", strings.Replace(goServerSrc, "VERSION", "v2\" + undefinedName + \"", 1))
	l.waitLog(regexp.MustCompile(`^fdsend activate: build failed \(exit status \d+\); the serving generation keeps serving`))
	l.waitLog(regexp.MustCompile(`undefined: undefinedName`))
	write("main.go", strings.Replace(goServerSrc, "VERSION", "v3", 1))
	l.waitLog(readyRE(2))
	l.waitLog(replacedRE(1))
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		v3 := seen["v3"]
		mu.Unlock()
		if v3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d answers, %d failures, versions %v", answers.Load(), fails.Load(), seen)
	if fails.Load() > 0 || !seen["v1"] || !seen["v3"] {
		t.Errorf("%d failed requests; versions seen %v, want v1 and v3", fails.Load(), seen)
	}
	l.signal(syscall.SIGTERM)
	if status := l.wait(); status != 0 {
		t.Errorf("launcher exited with status %d", status)
	}
}

// Usage errors of the reload options name the option and start nothing.
func TestActivateReloadUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--ready=tcp:x", "-l", "0", "true"}, "--ready needs --reload"},
		{[]string{"--build=make", "-l", "0", "true"}, "--build needs --reload"},
		{[]string{"--reload", "--build=make", "-l", "0", "true"}, "--build needs --watch"},
		{[]string{"--reload", "--accept", "-l", "0", "true"}, "--reload does not combine with --accept"},
		{[]string{"--reload", "--max-generations=1", "-l", "0", "true"}, "--max-generations=1: at least 2"},
		{[]string{"--reload", "--reload-signal=TERM", "-l", "0", "true"}, "--reload-signal=TERM: that signal cannot mean reload"},
		{[]string{"--reload", "--reload-signal=SIGNOPE", "-l", "0", "true"}, `--reload-signal: "SIGNOPE": no such signal`},
		{[]string{"--reload", "--ready=smoke:1", "-l", "0", "true"}, "--ready=smoke:1"},
		{[]string{"--reload", "--ready-timeout=0s", "-l", "0", "true"}, "--ready-timeout=0s: want a positive duration"},
	} {
		out, err := exec.Command(fdsendBin, append([]string{"activate"}, tc.args...)...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
			t.Errorf("activate %q: %v, %q; want status 2 and %q", tc.args, err, out, tc.want)
		}
	}
}

// pyStoreReload: generation 1 stores a temporary file in the launcher's
// descriptor store (socket.send_fds on its own NOTIFY_SOCKET) and says
// READY=1 with systemd's own systemd-notify; every later generation
// reports the names it got and reads the file back. Each waits for SIGTERM.
const pyStoreReload = `
import os, signal, socket, subprocess, sys, tempfile
names = os.environ["LISTEN_FDNAMES"].split(":")
gen = os.environ["FDSEND_GENERATION"]
if gen == "1":
    f = tempfile.TemporaryFile()
    f.write(b"stored by generation 1")
    f.flush()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.connect(os.environ["NOTIFY_SOCKET"])
    socket.send_fds(s, [b"FDSTORE=1\nFDNAME=kept\n"], [f.fileno()])
else:
    fd = 3 + names.index("kept")
    print("generation", gen, "names", ":".join(names), "read", os.pread(fd, 100, 0).decode(), flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
subprocess.run(["systemd-notify", "--ready"], check=True)
signal.pause()
`

// The descriptor store survives reloads: what generation 1 stored through
// its own notify socket reaches generations 2 and 3, named.
func TestActivateReloadFDStore(t *testing.T) {
	fdtest.Check(t)
	tool(t, "systemd-notify")
	l := activate(t, nil, "--reload", "--fdstore=4", "-l", "127.0.0.1:0", "--fdname=web", "--", python3(t), "-c", pyStoreReload)
	l.waitLog(readyRE(1))
	for gen := 2; gen <= 3; gen++ {
		l.signal(syscall.SIGHUP)
		l.expect(fmt.Sprintf("generation %d names web:kept read stored by generation 1", gen))
		l.waitLog(readyRE(gen))
	}
	l.signal(syscall.SIGTERM)
	if status := l.wait(); status != 0 {
		t.Errorf("launcher exited with status %d", status)
	}
}

// With --user every generation runs as that user and can still reach its
// own notify socket, and only its own.
func TestActivateReloadAsUser(t *testing.T) {
	fdtest.Check(t)
	fdtest.NeedRoot(t, "it runs the generations as nobody")
	dir := fdtest.WorldDir(t)
	app, mode := filepath.Join(dir, "app.py"), filepath.Join(dir, "mode")
	if err := os.WriteFile(app, []byte(pyReloadApp), 0o644); err != nil {
		t.Fatal(err)
	}
	setMode(t, mode, "ok")
	l := activate(t, nil, "--reload", "--user=nobody", "-l", "127.0.0.1:0", "-E", "APP_READY_AFTER=0.2", "-E", "APP_MODE_FILE="+mode, "--", python3(t), app)
	url := "http://" + l.addr() + "/"
	l.waitLog(readyRE(1))
	ld := startLoad(t, url)
	l.signal(syscall.SIGHUP)
	pid2 := l.waitLog(readyRE(2))[1]
	l.waitLog(replacedRE(1))
	ld.end(t)
	if st, err := os.ReadFile("/proc/" + pid2 + "/status"); err == nil && !regexp.MustCompile(`(?m)^Uid:\s+65534\s+65534`).Match(st) {
		t.Errorf("generation 2 does not run as nobody:\n%s", st)
	}
	l.signal(syscall.SIGTERM)
	if status := l.wait(); status != 0 {
		t.Errorf("launcher exited with status %d", status)
	}
}

// A first generation that never becomes ready is a failure: with nothing
// serving and no restart, the launcher exits non-zero, and says why.
func TestActivateReloadFirstNeverReady(t *testing.T) {
	fdtest.Check(t)
	args, _ := reloadApp(t, "hang")
	l := activate(t, nil, append([]string{"--reload", "--ready-timeout=1s", "--stop-timeout=5s", "-l", "127.0.0.1:0"}, args...)...)
	l.waitLog(regexp.MustCompile(`^fdsend activate: generation 1 \(pid \d+\) never became ready, and no generation serves: counted as a failure`))
	if status := l.wait(); status != 1 {
		t.Errorf("launcher exited with status %d, want 1", status)
	}
}

func init() {
	children["reload-activation"] = reloadActivationChild
}

// reloadActivationChild is a server written with this project's
// activation and notify packages: the listener "web", READY=1, one line
// per connection, and on SIGTERM it stops accepting and finishes.
func reloadActivationChild() error {
	l, err := activation.Listener("web")
	if err != nil {
		return err
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go func() { <-term; l.Close() }()
	if _, err := notify.Ready(); err != nil {
		return err
	}
	var wg sync.WaitGroup
	for {
		c, err := l.Accept()
		if err != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			fmt.Fprintf(c, "%d %s\n", os.Getpid(), os.Getenv(generationEnv))
			c.Close()
		}()
	}
	wg.Wait()
	return nil
}

// lineLoad connects to addr without pause from a few goroutines, a new
// connection each time, reads the one line each answer is, and counts
// failures and the generations that answered.
func lineLoad(t *testing.T, addr string) *load {
	ld := &load{stop: make(chan struct{}), gens: map[string]int{}}
	t.Cleanup(ld.halt) // stopped however the test ends
	for range 3 {
		ld.wg.Add(1)
		go func() {
			defer ld.wg.Done()
			for {
				select {
				case <-ld.stop:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", addr, 10*time.Second)
				var line []byte
				if err == nil {
					c.SetDeadline(time.Now().Add(10 * time.Second))
					line, err = io.ReadAll(c)
					c.Close()
				}
				f := strings.Fields(string(line))
				if err == nil && len(f) != 2 {
					err = fmt.Errorf("answer %q", line)
				}
				ld.mu.Lock()
				if err != nil {
					ld.fail.Add(1)
					if len(ld.errs) < 10 {
						ld.errs = append(ld.errs, err.Error())
					}
				} else {
					ld.ok.Add(1)
					ld.gens[f[1]]++
				}
				ld.mu.Unlock()
			}
		}()
	}
	return ld
}

// Go servers reloaded under load: one written with this project's
// activation package, one with go-systemd (a module of its own in
// testdata, fetched through the module proxy).
func TestActivateReloadGoChildren(t *testing.T) {
	for _, kind := range []string{"activation", "go-systemd"} {
		t.Run(kind, func(t *testing.T) {
			fdtest.Check(t)
			argv := []string{role("reload-activation"), "--", os.Args[0]}
			if kind == "go-systemd" {
				bin := filepath.Join(t.TempDir(), "server")
				gobin := filepath.Join(runtimeGOROOT(), "bin", "go")
				build := exec.Command(gobin, "build", "-mod=mod", "-o", bin, ".")
				build.Dir = filepath.Join("testdata", "gosystemd")
				if out, err := build.CombinedOutput(); err != nil {
					t.Fatalf("building the go-systemd server: %v\n%s", err, out)
				}
				argv = []string{"--", bin}
			}
			l := activate(t, nil, append([]string{"--reload", "-l", "127.0.0.1:0", "--fdname=web"}, argv...)...)
			addr := l.addr()
			l.waitLog(readyRE(1))
			ld := lineLoad(t, addr)
			for gen := 2; gen <= 4; gen++ {
				l.signal(syscall.SIGHUP)
				l.waitLog(readyRE(gen))
				l.waitLog(replacedRE(gen - 1))
			}
			ld.awaitServed(4, 10*time.Second)
			ld.end(t)
			for gen := 1; gen <= 4; gen++ {
				if ld.served(gen) == 0 {
					t.Errorf("generation %d answered nothing", gen)
				}
			}
			l.signal(syscall.SIGTERM)
			if status := l.wait(); status != 0 {
				t.Errorf("launcher exited with status %d", status)
			}
		})
	}
}

// With --reload, --fdstore and --user, the generations (running as the
// user) store through their own sockets, and the store itself is lent to
// no one: another process of that user cannot plant a descriptor in it.
func TestActivateReloadFDStoreAsUser(t *testing.T) {
	fdtest.Check(t)
	fdtest.NeedRoot(t, "it runs the generations, and a planter, as nobody")
	tool(t, "systemd-notify")
	setpriv := tool(t, "setpriv")
	l := activate(t, nil, "--reload", "--fdstore=4", "--user=nobody", "-l", "127.0.0.1:0", "--fdname=web", "--", python3(t), "-c", pyStoreReload)
	store := l.waitLog(regexp.MustCompile(`descriptor store for .* at NOTIFY_SOCKET=(\S+)`))[1]
	l.waitLog(readyRE(1))
	plant := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", python3(t), "-c", `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try:
    s.connect(sys.argv[1])
    socket.send_fds(s, [b"FDSTORE=1\nFDNAME=planted\n"], [0])
    print("planted")
except OSError as e:
    print("refused", e.errno)
`, store)
	out, err := plant.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != fmt.Sprintf("refused %d", syscall.EACCES) {
		t.Errorf("nobody storing into the launcher's store: %q %v; want refused with EACCES", out, err)
	}
	l.signal(syscall.SIGHUP)
	l.expect("generation 2 names web:kept read stored by generation 1")
	l.waitLog(readyRE(2))
	l.signal(syscall.SIGTERM)
	if status := l.wait(); status != 0 {
		t.Errorf("launcher exited with status %d", status)
	}
}
