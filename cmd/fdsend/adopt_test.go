//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend/activation"
	"github.com/fdsend/fdsend/internal/fdtest"
	"github.com/fdsend/fdsend/notify"
	"golang.org/x/sys/unix"
)

func init() {
	children["adopt-new"] = adoptNewChild
}

// adoptNewChild is the server that takes over: it takes the sockets named
// web and ctl by socket activation, answers each line with "new PID",
// sends READY=1 and serves until SIGTERM.
func adoptNewChild() error {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	var ls []net.Listener
	for _, name := range []string{"web", "ctl"} {
		l, err := activation.Listener(name)
		if err != nil {
			return err
		}
		ls = append(ls, l)
	}
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer c.Close()
					r := bufio.NewReader(c)
					line, _ := r.ReadString('\n')
					if path, ok := strings.CutPrefix(line, "GET "); ok {
						answerReady(c, r, path)
						return
					}
					fmt.Fprintf(c, "new %d\n", os.Getpid())
				}()
			}
		}()
	}
	if _, err := notify.Ready(); err != nil {
		return err
	}
	<-sigs
	for _, l := range ls {
		l.Close()
	}
	wg.Wait()
	return nil
}

// answerReady answers an HTTP GET of /ready?pid=PID (path is the rest of
// the request line): 200 if PID is this process's, 404 if not, so that a
// readiness probe with {pid} learns of this process alone.
func answerReady(c net.Conn, r *bufio.Reader, path string) {
	for { // the headers, up to the empty line
		h, err := r.ReadString('\n')
		if err != nil || strings.TrimSpace(h) == "" {
			break
		}
	}
	status := "404 Not Found"
	if strings.HasPrefix(path, "/ready?pid="+strconv.Itoa(os.Getpid())+" ") {
		status = "200 OK"
	}
	fmt.Fprintf(c, "HTTP/1.0 %s\r\nContent-Length: 0\r\n\r\n", status)
}

// clientLoop asks its targets in turn until stopped, and counts who
// answers, under the target's name: "tcp old", "unix new", "http old", ...
type clientLoop struct {
	mu       sync.Mutex
	answers  map[string]int
	failures []string
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
}

// loopTarget is one server a clientLoop asks: ask makes one request and
// returns who answered.
type loopTarget struct {
	name string
	ask  func() (string, error)
}

// startClients asks the Python servers at the TCP address and the Unix
// path.
func startClients(tcp, path string) *clientLoop {
	return startLoop(
		loopTarget{"tcp", func() (string, error) { return ask("tcp", tcp) }},
		loopTarget{"unix", func() (string, error) { return ask("unix", path) }})
}

func startLoop(targets ...loopTarget) *clientLoop {
	c := &clientLoop{answers: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			for _, tg := range targets {
				select {
				case <-c.stop:
					return
				default:
				}
				who, err := tg.ask()
				c.mu.Lock()
				if err != nil {
					c.failures = append(c.failures, fmt.Sprintf("%s: %v", tg.name, err))
				} else {
					c.answers[tg.name+" "+who]++
				}
				c.mu.Unlock()
			}
		}
	}()
	return c
}

// ask makes one request and returns "old" or "new".
func ask(network, address string) (string, error) {
	conn, err := net.DialTimeout(network, address, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("hi\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("reading the answer: %w", err)
	}
	who, _, _ := strings.Cut(line, " ")
	return who, nil
}

func (c *clientLoop) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.answers[key]
}

// waitCount waits until key has been answered n times more than now.
func (c *clientLoop) waitMore(t *testing.T, key string, n int) {
	t.Helper()
	want := c.count(key) + n
	deadline := time.Now().Add(20 * time.Second)
	for c.count(key) < want {
		if time.Now().After(deadline) {
			c.mu.Lock()
			defer c.mu.Unlock()
			t.Fatalf("%q answered %d times in 20s, want %d; answers %v, failures %v", key, c.answers[key], want, c.answers, c.failures)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// end stops the loop and waits for it; it may be called more than once.
func (c *clientLoop) end() {
	c.once.Do(func() { close(c.stop) })
	<-c.done
}

// sockets lists the socket descriptors of process pid.
func sockets(t *testing.T, pid int) []string {
	t.Helper()
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.HasPrefix(target, "socket:") {
			out = append(out, e.Name()+" -> "+target)
		}
	}
	return out
}

// startOldPython starts testdata/adopt_old.py on a free port and a socket
// in a fresh directory, and returns it with its address and path.
func startOldPython(t *testing.T, dir string) (*launcher, string, string) {
	t.Helper()
	path := filepath.Join(dir, "old.sock")
	old := start(t, nil, python3(t), "testdata/adopt_old.py", "0", path)
	port, ok := strings.CutPrefix(old.line(), "ready ")
	if !ok {
		t.Fatalf("old server: no ready line; log:\n%s", old.logText())
	}
	return old, "127.0.0.1:" + port, path
}

// TestAdoptPython moves both listeners of a Python server that knows
// nothing of hand-off to a new server, while a client loops: no request
// fails, the old server exits on its --stop signal, and neither the test
// nor fdsend adopt keeps a socket.
func TestAdoptPython(t *testing.T) {
	fdtest.Check(t)
	old, tcp, path := startOldPython(t, t.TempDir())
	clients := startClients(tcp, path)
	defer clients.end()
	clients.waitMore(t, "tcp old", 10)
	clients.waitMore(t, "unix old", 10)

	a := start(t, []string{childRoleEnv + "=adopt-new"}, fdsendBin, "adopt", strconv.Itoa(old.cmd.Process.Pid),
		"--listen", tcp, "--listen", path, "--fdname", "web:ctl", "--stop", "SIGTERM", "--", os.Args[0], "-test.run=^$")
	a.waitLog(regexp.MustCompile(`is ready; sent SIGTERM to process ` + strconv.Itoa(old.cmd.Process.Pid)))
	if st := old.wait(); st != 0 {
		t.Errorf("the old server exited with status %d, want 0", st)
	}
	clients.waitMore(t, "tcp new", 20)
	clients.waitMore(t, "unix new", 20)
	if s := sockets(t, a.cmd.Process.Pid); len(s) != 0 {
		t.Errorf("fdsend adopt still holds sockets: %v", s)
	}
	clients.end()
	a.signal(syscall.SIGTERM)
	if st := a.wait(); st != 0 {
		t.Errorf("fdsend adopt exited with status %d after SIGTERM, want COMMAND's 0", st)
	}
	clients.mu.Lock()
	defer clients.mu.Unlock()
	if len(clients.failures) != 0 {
		t.Errorf("%d requests failed across the hand-over: %v", len(clients.failures), clients.failures)
	}
	t.Logf("answers: %v", clients.answers)
}

// TestAdoptReady: with --ready=http:URL (whose {pid} only COMMAND answers
// 2xx, for its own pid, on the very port it adopts) and with
// --ready=delay:DURATION, the old server gets --stop's signal once COMMAND
// is ready, and no request fails across the switch.
func TestAdoptReady(t *testing.T) {
	for _, tc := range []struct{ name, ready string }{
		{"http", "http:http://TCP/ready?pid={pid}"},
		{"delay", "delay:300ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fdtest.Check(t)
			old, tcp, path := startOldPython(t, t.TempDir())
			clients := startClients(tcp, path)
			defer clients.end()
			clients.waitMore(t, "tcp old", 5)
			clients.waitMore(t, "unix old", 5)
			a := start(t, []string{childRoleEnv + "=adopt-new"}, fdsendBin, "adopt", strconv.Itoa(old.cmd.Process.Pid),
				"--listen", tcp, "--listen", path, "--fdname", "web:ctl", "--stop", "TERM",
				"--ready", strings.Replace(tc.ready, "TCP", tcp, 1), "--", os.Args[0], "-test.run=^$")
			a.waitLog(regexp.MustCompile(`is ready; sent SIGTERM to process ` + strconv.Itoa(old.cmd.Process.Pid)))
			if st := old.wait(); st != 0 {
				t.Errorf("the old server exited with status %d, want 0", st)
			}
			clients.waitMore(t, "tcp new", 10)
			clients.waitMore(t, "unix new", 10)
			clients.end()
			a.signal(syscall.SIGTERM)
			if st := a.wait(); st != 0 {
				t.Errorf("fdsend adopt exited with status %d after SIGTERM, want COMMAND's 0", st)
			}
			clients.mu.Lock()
			defer clients.mu.Unlock()
			if len(clients.failures) != 0 {
				t.Errorf("%d requests failed across the hand-over: %v", len(clients.failures), clients.failures)
			}
			t.Logf("answers: %v", clients.answers)
		})
	}
}

// TestAdoptExitsMidway: the process exits in the middle of an adopt, after
// its descriptors are listed or after the first of two is taken (a binary
// built with -tags fdsendtest kills it there): a clear error naming the
// option, status 1, COMMAND not run, and nothing of the process kept (its
// port can be bound again).
func TestAdoptExitsMidway(t *testing.T) {
	bin := hookedFdsend(t)
	for _, stage := range []string{"listed", "took"} {
		t.Run(stage, func(t *testing.T) {
			fdtest.Check(t)
			dir := t.TempDir()
			old, tcp, path := startOldPython(t, dir)
			pid := strconv.Itoa(old.cmd.Process.Pid)
			marker := filepath.Join(dir, "ran")
			cmd := exec.Command(bin, "adopt", pid, "--listen", tcp, "--listen", path, "--stop", "TERM",
				"--", "/bin/sh", "-c", "touch "+marker)
			cmd.Env = append(os.Environ(), "FDSEND_TEST_ADOPT_KILL="+stage)
			out, _ := cmd.CombinedOutput()
			failed := tcp // the first option's socket, or the second's
			if stage == "took" {
				failed = path
			}
			want := regexp.MustCompile(`^fdsend adopt: --listen ` + regexp.QuoteMeta(failed) + `: descriptor \d+ of process ` + pid + `: pidfd_getfd: no such process \(the process has exited\); nothing was handed over\n$`)
			if st := exitStatus(cmd.ProcessState); st != 1 || !want.Match(out) {
				t.Errorf("status %d, %q; want 1 and %s", st, out, want)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Errorf("COMMAND ran")
			}
			old.wait()
			l, err := net.Listen("tcp", tcp)
			if err != nil {
				t.Fatalf("the old server's port is still held: %v", err)
			}
			l.Close()
		})
	}
}

// hookedFdsend builds fdsend with -tags fdsendtest (adopt_hook.go) once.
func hookedFdsend(t *testing.T) string {
	t.Helper()
	hookedOnce.Do(func() {
		hookedBin = filepath.Join(filepath.Dir(fdsendBin), "fdsend-hooked")
		build := exec.Command(filepath.Join(runtimeGOROOT(), "bin", "go"), "build", "-tags", "fdsendtest", "-o", hookedBin, ".")
		if out, err := build.CombinedOutput(); err != nil {
			hookedErr = fmt.Errorf("building fdsend -tags fdsendtest: %v\n%s", err, out)
		}
	})
	if hookedErr != nil {
		t.Fatal(hookedErr)
	}
	return hookedBin
}

var (
	hookedOnce sync.Once
	hookedBin  string
	hookedErr  error
)

// runFdsend runs the binary under test to its end and returns its status
// and standard error.
func runFdsend(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(fdsendBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	err := fdtest.Wait(cmd, 30*time.Second)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return exitStatus(cmd.ProcessState), stderr.String()
}

// TestAdoptRefusals: usage errors exit 2, refusals 1, and in neither case
// is anything taken or COMMAND run.
func TestAdoptRefusals(t *testing.T) {
	fdtest.Check(t)
	dir := t.TempDir()
	old, tcp, path := startOldPython(t, dir)
	pid := strconv.Itoa(old.cmd.Process.Pid)
	_, port, _ := strings.Cut(tcp, ":")
	marker := filepath.Join(dir, "ran")
	command := []string{"--", "/bin/sh", "-c", "touch " + marker}
	for _, tc := range []struct {
		args   []string
		status int
		msg    string
	}{
		{[]string{pid, "--listen", tcp}, 2, "the -- and COMMAND are missing"},
		{append([]string{pid}, command...), 2, "nothing to take"},
		{append([]string{"x", "--listen", tcp}, command...), 2, `PID "x" is not a process ID`},
		{append([]string{pid, "--listen", "localhost:80"}, command...), 2, "host names are not resolved"},
		{append([]string{pid, "--fd", "-1"}, command...), 2, `"-1" is not a descriptor number`},
		{append([]string{pid, "--listen", tcp, "--stop", "SIGNOPE"}, command...), 2, `--stop: "SIGNOPE": no such signal`},
		{append([]string{pid, "--listen", tcp, "--ready", "delay:1s"}, command...), 2, "--ready needs --stop"},
		{append([]string{pid, "--listen", tcp, "--stop", "TERM", "--ready", "bogus"}, command...), 2, "--ready=bogus: want notify, tcp:HOST:PORT, http:URL or delay:DURATION"},
		{append([]string{pid, "--listen", tcp, "--fdname", "a:b"}, command...), 2, "--fdname gives 2 names for 1 --listen or --fd option"},
		{append([]string{pid, "--listen", tcp, "--listen", "127.0.0.1:1"}, command...), 1, "--listen 127.0.0.1:1: process " + pid + " has no socket listening there (it listens on " + tcp + ", " + path + ")"},
		{append([]string{pid, "--listen", port, "--listen", tcp}, command...), 1, "--listen " + port + " and --listen " + tcp + " both take descriptor"},
		{append([]string{pid, "--listen", path, "--fd", "999"}, command...), 1, "--fd 999: process " + pid + " has no descriptor 999"},
		{[]string{pid, "--listen", tcp, "--", "/nonexistent/x"}, 127, "/nonexistent/x: no such file or directory"},
	} {
		st, out := runFdsend(t, nil, append([]string{"adopt"}, tc.args...)...)
		if st != tc.status || !strings.Contains(out, tc.msg) {
			t.Errorf("adopt %q: status %d, %q; want %d and %q", tc.args, st, out, tc.status, tc.msg)
		}
		if strings.Contains(out, "took ") {
			t.Errorf("adopt %q took something: %q", tc.args, out)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("COMMAND ran although adopt refused")
	}
	// The old server was left alone: it still answers.
	if who, err := ask("tcp", tcp); err != nil || who != "old" {
		t.Errorf("the old server after the refusals: %q, %v", who, err)
	}
	old.signal(syscall.SIGTERM)
	old.wait()
}

// TestAdoptNobody: as nobody, adopting root's server is refused with EPERM
// and the explanation; nothing is taken and COMMAND does not run.
func TestAdoptNobody(t *testing.T) {
	fdtest.NeedRoot(t, "it runs fdsend adopt as nobody against root's process")
	fdtest.Check(t)
	dir := t.TempDir()
	old, tcp, _ := startOldPython(t, dir)
	bin := filepath.Join(fdtest.WorldDir(t), "fdsend")
	data, err := os.ReadFile(fdsendBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(fdtest.WorldDir(t), "ran")
	cmd := exec.Command(tool(t, "setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups",
		bin, "adopt", strconv.Itoa(old.cmd.Process.Pid), "--listen", tcp, "--", "/bin/sh", "-c", "touch "+marker)
	out, err := cmd.CombinedOutput()
	if st := exitStatus(cmd.ProcessState); st != 1 {
		t.Errorf("status %d (%v), want 1", st, err)
	}
	for _, want := range []string{"permission denied", "needs ptrace rights over it", "CAP_SYS_PTRACE", "the process runs as uid 0, this one as uid 65534"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
	if strings.Contains(string(out), "took ") {
		t.Errorf("something was taken: %q", out)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("COMMAND ran")
	}
	old.signal(syscall.SIGTERM)
	old.wait()
}

// TestAdoptExited: a process that has exited (not yet reaped, then
// reaped) is refused with a clear error; COMMAND does not run.
func TestAdoptExited(t *testing.T) {
	fdtest.Check(t)
	cmd := exec.Command("/bin/sh", "-c", "exit 0")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	st, out := runFdsend(t, nil, "adopt", pid, "--fd", "0", "--", "/bin/true")
	if st != 1 || !strings.Contains(out, "process "+pid+": pidfd_open: no such process (the process has exited)") {
		t.Errorf("zombie: status %d, %q", st, out)
	}
	if err := fdtest.Wait(cmd, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	st, out = runFdsend(t, nil, "adopt", pid, "--fd", "0", "--", "/bin/true")
	if st != 1 || !strings.Contains(out, "process "+pid+": pidfd_open: no such process") {
		t.Errorf("reaped: status %d, %q", st, out)
	}
}

// TestPs lists a process holding a descriptor of every kind.
func TestPs(t *testing.T) {
	fdtest.Check(t)
	dir := t.TempDir()
	p := start(t, nil, python3(t), "testdata/adopt_kinds.py", dir)
	fds := map[string]string{}
	for {
		line := p.line()
		if line == "ready" {
			break
		}
		name, fd, _ := strings.Cut(line, " ")
		fds[name] = fd
	}
	st, out := runFdsend(t, nil, "ps", strconv.Itoa(p.cmd.Process.Pid))
	if st != 0 {
		t.Fatalf("ps: status %d, %s", st, out)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		fd, what, ok := strings.Cut(line, "\t")
		if !ok {
			t.Errorf("line %q has no tab", line)
		}
		got[fd] = what
	}
	pid := strconv.Itoa(p.cmd.Process.Pid)
	for name, want := range map[string]string{
		"tcplisten":   `^tcp listener 127\.0\.0\.1:\d+$`,
		"tcpconn":     `^tcp connected 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+$`,
		"tcpaccepted": `^tcp connected 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+$`,
		"tcp6listen":  `^tcp listener \[::1\]:\d+$`,
		"udp":         `^udp 127\.0\.0\.1:\d+$`,
		"unixlisten":  `^unix stream listener ` + regexp.QuoteMeta(filepath.Join(dir, "l.sock")) + `$`,
		"abstract":    `^unix seqpacket listener @fdsend-adopt-kinds-` + pid + `$`,
		"unixgram":    `^unix dgram ` + regexp.QuoteMeta(filepath.Join(dir, "g.sock")) + `$`,
		"socketpair":  `^unix stream connected$`,
		"pipe":        `^pipe$`,
		"fifo":        `^fifo ` + regexp.QuoteMeta(filepath.Join(dir, "fifo")) + `$`,
		"file":        `^file ` + regexp.QuoteMeta(filepath.Join(dir, "file")) + `$`,
		"dir":         `^directory ` + regexp.QuoteMeta(dir) + `$`,
		"null":        `^character device /dev/null$`,
		"eventfd":     `^eventfd$`,
		"epoll":       `^eventpoll$`,
	} {
		fd := fds[name]
		if !regexp.MustCompile(want).MatchString(got[fd]) {
			t.Errorf("%s (fd %s): %q, want %s", name, fd, got[fd], want)
		}
	}
	p.signal(syscall.SIGKILL)
	p.wait()
}
