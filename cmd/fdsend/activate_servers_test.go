//go:build linux

package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend/internal/fdtest"
)

// Real servers nobody here wrote, reloaded under load by `fdsend activate
// --reload`: gunicorn (Python; reads LISTEN_FDS, sends READY=1) and
// lighttpd (C; server.systemd-socket-activation, no READY=1, so an http
// probe only the new generation can answer). Each is reloaded reloads
// times while clients send requests without pause, a new connection for
// each; no request may fail, every generation must answer, and the
// launcher's own log must show each old generation exiting, cleanly, after
// the new one was ready.

// reloads is how many times each server is reloaded.
const reloads = 5

// serverClients is how many client goroutines keep requests coming.
const serverClients = 3

// pyWSGI answers every request with the generation (FDSEND_GENERATION,
// which gunicorn's workers inherit), the master's pid and the worker's.
const pyWSGI = `import os

def application(environ, start_response):
    body = ("gunicorn %s %d %d\n" % (os.environ["FDSEND_GENERATION"], os.getppid(), os.getpid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
`

func TestActivateReloadGunicorn(t *testing.T) {
	gunicorn := fdtest.NeedCommand(t, "gunicorn")
	fdtest.Check(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "fdsend_wsgi.py"), []byte(pyWSGI), 0o644); err != nil {
		t.Fatal(err)
	}
	// The default --ready=notify: gunicorn's master sends READY=1 itself.
	// SIGTERM, the default --stop-signal, is gunicorn's graceful stop.
	l := activate(t, nil, "--reload", "--ready-timeout=20s", "--stop-timeout=10s", "-l", "127.0.0.1:0", "--",
		gunicorn, "--chdir", dir, "--worker-tmp-dir", dir, "--workers", "2", "--graceful-timeout", "5", "fdsend_wsgi:application")
	addr := l.addr()
	rs := reloadUnderLoad(t, l, "http://"+addr+"/", func(body string) (int, string, error) {
		// "gunicorn GEN MASTER WORKER"
		f := strings.Fields(body)
		if len(f) != 4 || f[0] != "gunicorn" {
			return 0, "", fmt.Errorf("answer %q", body)
		}
		gen, err := strconv.Atoi(f[1])
		if err != nil {
			return 0, "", fmt.Errorf("answer %q", body)
		}
		return gen, f[2], nil
	})
	// Every answer of a generation came from the master the launcher
	// started for it (its pid, as the launcher logged it): gunicorn took
	// the launcher's socket, and its workers are that master's.
	for gen := 1; gen <= reloads+1; gen++ {
		masters := rs.masters[gen]
		if len(masters) != 1 || !masters[rs.pids[gen]] {
			t.Errorf("generation %d answered from masters %v, want only pid %s, the one the launcher started", gen, keys(masters), rs.pids[gen])
		}
	}
	if !strings.Contains(l.logText(), "READY=1 from pid "+rs.pids[reloads+1]) {
		t.Errorf("no READY=1 from gunicorn's master logged")
	}
	// gunicorn's SIGTERM is its graceful stop: status 0.
	stopServer(t, l, rs.pids[reloads+1], 0)
}

// lighttpdConf is lighttpd's configuration for the test: it takes the
// socket the launcher passes (server.bind and server.port must name the
// same address, or lighttpd binds that address itself as well), logs to
// standard error, writes no pid file, and serves each generation from a
// directory of its own, genN, so that a probe of /ready-N.txt is answered
// (200) only by generation N and with 404 by the one before it.
const lighttpdConf = `server.systemd-socket-activation = "enable"
server.bind = "127.0.0.1"
server.port = %s
server.document-root = "%s/gen" + env.FDSEND_GENERATION
server.upload-dirs = ( "%s" )
server.max-keep-alive-requests = 0
`

func TestActivateReloadLighttpd(t *testing.T) {
	lighttpd := fdtest.NeedCommand(t, "lighttpd")
	fdtest.Check(t)
	dir := t.TempDir()
	// The address has to be in the configuration, which each generation
	// reads when it starts; the launcher listens on it from the start.
	addr := freePort(t)
	_, port, _ := strings.Cut(addr, ":")
	conf := filepath.Join(dir, "lighttpd.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(lighttpdConf, port, dir, dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	// A few more directories than generations: a failed start would show
	// in the log, not as a missing directory.
	for gen := 1; gen <= reloads+4; gen++ {
		d := filepath.Join(dir, "gen"+strconv.Itoa(gen))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "index.txt"), []byte(fmt.Sprintf("lighttpd %d\n", gen)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "ready-"+strconv.Itoa(gen)+".txt"), []byte("ready\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// lighttpd sends no READY=1: it is ready once it answers
	// /ready-{gen}.txt, which the old generation cannot. SIGINT is its
	// graceful stop (SIGTERM drops the connections it is serving).
	l := activate(t, nil, "--reload", "--ready=http:http://"+addr+"/ready-{gen}.txt", "--ready-timeout=20s",
		"--stop-signal=SIGINT", "--stop-timeout=10s", "-l", addr, "--", lighttpd, "-D", "-f", conf)
	if got := l.addr(); got != addr {
		t.Fatalf("listening on %s, want %s", got, addr)
	}
	rs := reloadUnderLoad(t, l, "http://"+addr+"/index.txt", func(body string) (int, string, error) {
		// "lighttpd GEN"
		f := strings.Fields(body)
		if len(f) != 2 || f[0] != "lighttpd" {
			return 0, "", fmt.Errorf("answer %q", body)
		}
		gen, err := strconv.Atoi(f[1])
		if err != nil {
			return 0, "", fmt.Errorf("answer %q", body)
		}
		return gen, "", nil
	})
	// SIGTERM is lighttpd's immediate stop, which exits with status 1 if
	// it still had a connection open; the launcher stopped with SIGTERM
	// sends --stop-signal, SIGINT, lighttpd's graceful stop, so the last
	// generation too ends cleanly.
	stopServer(t, l, rs.pids[reloads+1], 0)
	// lighttpd says so when SIGINT starts its graceful shutdown: once per
	// reload, and once at the end.
	if n := strings.Count(l.logText(), "graceful shutdown started"); n != reloads+1 {
		t.Errorf("lighttpd logged %d graceful shutdowns, want %d", n, reloads+1)
	}
}

// reloadResult is what reloadUnderLoad saw.
type reloadResult struct {
	pids    map[int]string          // generation -> pid, from the launcher's log
	masters map[int]map[string]bool // generation -> what parse returned besides it
}

// reloadUnderLoad waits for generation 1 to be ready, then reloads the
// launcher l reloads times with SIGHUP while serverClients goroutines GET
// url without pause, each request on a new connection. parse reads an
// answer's body into its generation and one more field to collect. For
// each reload it waits for the launcher's log to say that the new
// generation is ready and the old one is being stopped, then that the old
// one exited with status 0, then for the clients to have been answered by
// the new one. Every request must succeed with 200, and the launcher must
// hold as many descriptors at the end as when generation 1 was ready.
func reloadUnderLoad(t *testing.T, l *launcher, url string, parse func(body string) (gen int, extra string, err error)) reloadResult {
	t.Helper()
	last := reloads + 1
	rs := reloadResult{pids: map[int]string{}, masters: map[int]map[string]bool{}}
	rs.pids[1] = l.waitLog(regexp.MustCompile(`^fdsend activate: generation 1 \(pid (\d+)\) is ready after `))[1]
	launcherPid := l.cmd.Process.Pid
	fdsBefore := procFDs(t, launcherPid)

	var (
		mu       sync.Mutex
		served   = map[int]int{}
		failures []string
		seen     = map[int]chan struct{}{}
		requests int
		slowest  time.Duration
	)
	for gen := 1; gen <= last+3; gen++ {
		seen[gen] = make(chan struct{})
	}
	stop := make(chan struct{})
	var clients sync.WaitGroup
	for i := 0; i < serverClients; i++ {
		clients.Add(1)
		go func() {
			defer clients.Done()
			tr := &http.Transport{DisableKeepAlives: true, Proxy: nil}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 15 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				began := time.Now()
				gen, extra, err := get(c, url, parse)
				took := time.Since(began)
				mu.Lock()
				requests++
				slowest = max(slowest, took)
				if err != nil {
					if len(failures) < 20 {
						failures = append(failures, fmt.Sprintf("%s: %v", time.Now().Format("15:04:05.000"), err))
					}
				} else {
					served[gen]++
					if rs.masters[gen] == nil {
						rs.masters[gen] = map[string]bool{}
					}
					rs.masters[gen][extra] = true
					if ch, ok := seen[gen]; ok && served[gen] == 1 {
						close(ch)
					}
				}
				mu.Unlock()
			}
		}()
	}
	stopClients := func() {
		select {
		case <-stop:
		default:
			close(stop)
			clients.Wait()
		}
	}
	defer stopClients()
	waitServed := func(gen int) {
		t.Helper()
		select {
		case <-seen[gen]:
		case <-time.After(20 * time.Second):
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("no answer from generation %d within 20s (answers so far: %v; failures: %q); log:\n%s", gen, served, failures, l.logText())
		}
	}
	waitServed(1)

	for gen := 2; gen <= last; gen++ {
		old := gen - 1
		l.signal(syscall.SIGHUP)
		// Ready first, and only then the old one stopped: one log line
		// says both, in that order.
		m := l.waitLog(regexp.MustCompile(fmt.Sprintf(`^fdsend activate: generation %d \(pid (\d+)\) is ready after \S+; stopping generation %d \(pid (\d+)\) with `, gen, old)))
		rs.pids[gen] = m[1]
		if m[2] != rs.pids[old] {
			t.Fatalf("generation %d stopped as pid %s, but it started as pid %s", old, m[2], rs.pids[old])
		}
		// Then the old one exits, by itself: status 0 is a graceful
		// stop (a SIGKILL after --stop-timeout would be 137).
		st := l.waitLog(regexp.MustCompile(fmt.Sprintf(`^fdsend activate: generation %d \(pid %s\), replaced, exited with status (\d+)$`, old, rs.pids[old])))[1]
		if st != "0" {
			t.Errorf("generation %d exited with status %s when replaced, want 0 (a graceful stop)", old, st)
		}
		waitServed(gen)
	}
	stopClients()

	mu.Lock()
	t.Logf("%d requests, the slowest in %v; answers per generation: %v", requests, slowest.Round(time.Millisecond), served)
	if len(failures) > 0 {
		t.Errorf("failed requests (first %d shown): %s", len(failures), strings.Join(failures, "; "))
	}
	for gen := 1; gen <= last; gen++ {
		if served[gen] == 0 {
			t.Errorf("generation %d never answered", gen)
		}
	}
	for gen := range served {
		if gen < 1 || gen > last {
			t.Errorf("answers from generation %d, which the log never showed ready", gen)
		}
	}
	mu.Unlock()

	// Nothing went wrong on the way, by the launcher's account.
	log := l.logText()
	for _, bad := range []string{"before it was ready", "not ready", "sending SIGKILL", "restarting", "killing generation", "reload failed"} {
		if strings.Contains(log, bad) {
			t.Errorf("the launcher's log says %q", bad)
		}
	}
	// Only generation 6's process is left, as only generation 1's was at
	// the start: the launcher holds the same descriptors (its pidfd and
	// readiness socket for the one, where it held them for the other).
	checkSameFDs(t, launcherPid, fdsBefore)
	return rs
}

// get fetches url on a new connection and parses the answer.
func get(c *http.Client, url string, parse func(string) (int, string, error)) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if err != nil {
		return 0, "", fmt.Errorf("reading the answer: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, "", fmt.Errorf("answer %s: %q", resp.Status, body)
	}
	return parse(string(body))
}

// stopServer stops the launcher with SIGTERM, which it passes on to the
// last generation (pid), and checks that the server handled it (exited
// with one of the statuses ok, not killed) and that the launcher exited
// with the server's status.
func stopServer(t *testing.T, l *launcher, pid string, ok ...int) {
	t.Helper()
	l.signal(syscall.SIGTERM)
	m := l.waitLog(regexp.MustCompile(fmt.Sprintf(`^fdsend activate: generation %d \(pid %s\) exited with status (\d+); stopping$`, reloads+1, pid)))
	server, _ := strconv.Atoi(m[1])
	if !slices.Contains(ok, server) {
		t.Errorf("the server exited with status %d after SIGTERM, want one of %v", server, ok)
	}
	if st := l.wait(); st != server {
		t.Fatalf("launcher exited with status %d, want %d, the server's", st, server)
	}
}

// procFDs lists process pid's open descriptors with what each points at.
func procFDs(t *testing.T, pid int) map[string]string {
	t.Helper()
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	names, err := readDirNames(dir)
	if err != nil {
		t.Fatalf("listing the launcher's descriptors: %v", err)
	}
	fds := make(map[string]string, len(names))
	for _, n := range names {
		target, err := os.Readlink(dir + "/" + n)
		if err != nil {
			continue // closed meanwhile
		}
		fds[n] = target
	}
	return fds
}

func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// checkSameFDs waits (a few seconds at most: a descriptor of a generation
// that just exited may still be on its way out) for process pid to hold as
// many descriptors as before, and fails the test with both lists if it does
// not.
func checkSameFDs(t *testing.T, pid int, before map[string]string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		now := procFDs(t, pid)
		if len(now) == len(before) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("the launcher holds %d descriptors after the reloads, %d before:\nbefore: %s\nafter:  %s", len(now), len(before), fdList(before), fdList(now))
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func fdList(fds map[string]string) string {
	var s []string
	for n, target := range fds {
		s = append(s, n+" -> "+target)
	}
	sort.Slice(s, func(i, j int) bool {
		a, _ := strconv.Atoi(strings.SplitN(s[i], " ", 2)[0])
		b, _ := strconv.Atoi(strings.SplitN(s[j], " ", 2)[0])
		return a < b
	})
	return strings.Join(s, ", ")
}

func keys(m map[string]bool) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}
