//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend/internal/fdtest"
)

// cliTimeout bounds every fdsend process a holder test runs.
const cliTimeout = 20 * time.Second

// holdProc is a running `fdsend hold`.
type holdProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	sock   string
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan struct{}
	status int
}

func (h *holdProc) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stderr.Write(p)
}

func (h *holdProc) log() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stderr.String()
}

// startHold runs `fdsend hold SOCK args...` and waits until its socket
// accepts connections. wrap, if given, runs it through another command
// (sh -c for a ulimit). The process is killed when the test ends if it is
// still running.
func startHold(t *testing.T, sock string, args ...string) *holdProc {
	return startHoldVia(t, nil, sock, args...)
}

func startHoldVia(t *testing.T, wrap []string, sock string, args ...string) *holdProc {
	t.Helper()
	h := &holdProc{t: t, sock: sock, done: make(chan struct{})}
	argv := append([]string{fdsendBin, "hold", sock}, args...)
	argv = append(wrap, argv...)
	h.cmd = exec.Command(argv[0], argv[1:]...)
	h.cmd.Stderr = h
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		h.cmd.Wait()
		h.status = h.cmd.ProcessState.ExitCode()
		close(h.done)
	}()
	t.Cleanup(func() {
		syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
		<-h.done
	})
	deadline := time.Now().Add(cliTimeout)
	for {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
			return h
		}
		select {
		case <-h.done:
			t.Fatalf("fdsend hold exited with %d: %s", h.status, h.log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("fdsend hold did not listen on %s: %s", sock, h.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop sends SIGTERM and returns the exit status.
// waitLog waits up to cliTimeout for the holder's log to contain s: the log
// is copied by a goroutine and may trail what the holder has done.
func (h *holdProc) waitLog(s string) bool {
	deadline := time.Now().Add(cliTimeout)
	for !strings.Contains(h.log(), s) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func (h *holdProc) stop() int {
	h.t.Helper()
	h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.done:
	case <-time.After(cliTimeout):
		h.t.Fatalf("fdsend hold did not exit after SIGTERM: %s", h.log())
	}
	return h.status
}

// cliResult is what one fdsend run did.
type cliResult struct {
	stdout, stderr string
	status         int
	pid            int
}

// cliOpts adjusts a run of fdsend.
type cliOpts struct {
	stdin *os.File
	cred  *syscall.Credential
	bin   string
	env   []string
}

// fdsendRun runs fdsend with args and returns what it did.
func fdsendRun(t *testing.T, args ...string) cliResult {
	t.Helper()
	return fdsendRunWith(t, cliOpts{}, args...)
}

func fdsendRunWith(t *testing.T, o cliOpts, args ...string) cliResult {
	t.Helper()
	bin := fdsendBin
	if o.bin != "" {
		bin = o.bin
	}
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), o.env...)
	if o.stdin != nil {
		cmd.Stdin = o.stdin
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: o.cred}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(cliTimeout):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Fatalf("fdsend %v did not finish: %s %s", args, stdout.String(), stderr.String())
	}
	return cliResult{stdout: stdout.String(), stderr: stderr.String(), status: cmd.ProcessState.ExitCode(), pid: cmd.Process.Pid}
}

// mustRun runs fdsend and fails the test unless it exits 0.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	r := fdsendRun(t, args...)
	if r.status != 0 {
		t.Fatalf("fdsend %s: status %d: %s", strings.Join(args, " "), r.status, r.stderr)
	}
	return r.stdout
}

// lsLine is one line of `fdsend ls`.
type lsLine struct {
	name, kind string
	age        time.Duration
	expiry     time.Duration // -1: never
}

// ls runs `fdsend ls` and parses its lines.
func ls(t *testing.T, sock string) []lsLine {
	t.Helper()
	var out []lsLine
	for _, line := range strings.Split(strings.TrimSuffix(mustRun(t, "ls", sock), "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			t.Fatalf("ls line %q: want 4 tab-separated fields", line)
		}
		age, err := time.ParseDuration(f[2])
		if err != nil {
			t.Fatalf("ls line %q: age: %v", line, err)
		}
		exp := time.Duration(-1)
		if f[3] != "-" {
			if exp, err = time.ParseDuration(f[3]); err != nil {
				t.Fatalf("ls line %q: expiry: %v", line, err)
			}
		}
		out = append(out, lsLine{f[0], f[1], age, exp})
	}
	return out
}

// pyHolderReport reports, as JSON on standard output, the LISTEN_*
// variables and what each descriptor from 3 on is; with HOLDER_SERVE set it
// then answers one connection on descriptor 3 with its PID and names.
const pyHolderReport = `
import fcntl, json, os, socket, sys
n = int(os.environ.get("LISTEN_FDS", "0"))
rep = {"pid": os.getpid(), "env": {k: v for k, v in os.environ.items() if k.startswith("LISTEN_")}, "fds": []}
for fd in range(3, 3 + n):
    info = {"fd": fd, "nonblock": bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK)}
    d = os.dup(fd)
    try:
        s = socket.socket(fileno=d)
    except OSError:
        os.close(d)
        info["addr"] = os.readlink("/proc/self/fd/%d" % fd)
    else:
        info["type"] = int(s.type)
        info["listening"] = s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        name = s.getsockname()
        info["addr"] = name if isinstance(name, str) else "%s:%d" % (name[0], name[1])
        s.close()
    rep["fds"].append(info)
rep["open"] = sorted(int(x) for x in os.listdir("/proc/self/fd"))
print(json.dumps(rep))
sys.stdout.flush()
if os.environ.get("HOLDER_SERVE"):
    s = socket.socket(fileno=3)
    c, _ = s.accept()
    c.sendall(("%d %s\n" % (os.getpid(), os.environ.get("LISTEN_FDNAMES"))).encode())
    c.close()
`

// pyHolderResult is the decoded output of pyHolderReport.
type pyHolderResult struct {
	PID int
	Env map[string]string
	Fds []struct {
		FD        int
		Type      int
		Listening int
		Nonblock  bool
		Addr      string
	}
	Open []int
}

func decodePy(t *testing.T, out string) pyHolderResult {
	t.Helper()
	var r pyHolderResult
	line, _, _ := strings.Cut(out, "\n")
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("child report %q: %v", out, err)
	}
	return r
}

// TestHolderCLISession is the README's session: a holder, a server's
// listener stored in it, ls, the server "restarted" by fetching the
// listener into a new program, rm, and the holder stopped.
func TestHolderCLISession(t *testing.T) {
	fdtest.Check(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "holder.sock")
	h := startHold(t, sock)
	if st, err := os.Stat(sock); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("socket mode: %v, %v; want 0600", st.Mode(), err)
	}

	web := strings.TrimSpace(mustRun(t, "store", sock, "web", "--listen", "127.0.0.1:0"))
	if _, err := net.ResolveTCPAddr("tcp", web); err != nil {
		t.Fatalf("store --listen printed %q", web)
	}
	notes := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notes, []byte("notes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "store", sock, "notes", "--file", notes, "--ttl", "1h")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	r := fdsendRunWith(t, cliOpts{stdin: pw}, "store", sock, "pipe") // --fd 0
	pw.Close()
	if r.status != 0 {
		t.Fatalf("store from stdin: %d %s", r.status, r.stderr)
	}

	lines := ls(t, sock)
	if len(lines) != 3 {
		t.Fatalf("ls: %+v", lines)
	}
	want := []lsLine{{"notes", "file " + notes, 0, time.Hour}, {"pipe", "pipe", 0, -1}, {"web", "tcp listener " + web, 0, -1}}
	for i, w := range want {
		l := lines[i]
		if l.name != w.name || l.kind != w.kind {
			t.Errorf("ls line %d: %q %q, want %q %q", i, l.name, l.kind, w.name, w.kind)
		}
		if l.age < 0 || l.age > 10*time.Second {
			t.Errorf("%s: age %v", l.name, l.age)
		}
		if (w.expiry < 0) != (l.expiry < 0) || l.expiry > w.expiry || (w.expiry > 0 && l.expiry < w.expiry-time.Minute) {
			t.Errorf("%s: expiry %v, want about %v", l.name, l.expiry, w.expiry)
		}
	}

	// Storing a held name fails unless --replace.
	r = fdsendRun(t, "store", sock, "web", "--listen", "127.0.0.1:0")
	if r.status != 1 || !strings.Contains(r.stderr, `"web" is already held`) {
		t.Errorf("store of a held name: %d %q", r.status, r.stderr)
	}

	// A client arrives while no server runs: it waits in the backlog of
	// the held listener. The "restarted" server fetches it and answers.
	early, err := net.DialTimeout("tcp", web, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()
	r = fdsendRunWith(t, cliOpts{env: []string{"HOLDER_SERVE=1"}}, "fetch", sock, "web", "pipe", "--", python3(t), "-c", pyHolderReport)
	if r.status != 0 {
		t.Fatalf("fetch -- python3: %d %s", r.status, r.stderr)
	}
	rep := decodePy(t, r.stdout)
	if rep.PID != r.pid {
		t.Errorf("program ran as pid %d, fdsend fetch was %d: not exec'd in place", rep.PID, r.pid)
	}
	if rep.Env["LISTEN_FDS"] != "2" || rep.Env["LISTEN_FDNAMES"] != "web:pipe" || rep.Env["LISTEN_PID"] != strconv.Itoa(rep.PID) {
		t.Errorf("variables %v", rep.Env)
	}
	if !slices.Equal(rep.Open, []int{0, 1, 2, 3, 4, 5}) { // 5: the listing of /proc/self/fd
		t.Errorf("open descriptors in the program: %v, want 0-4 (and the listing)", rep.Open)
	}
	if len(rep.Fds) != 2 || rep.Fds[0].Addr != web || rep.Fds[0].Listening != 1 || rep.Fds[0].Nonblock || !strings.HasPrefix(rep.Fds[1].Addr, "pipe:[") {
		t.Errorf("descriptors: %+v, want the blocking listener %s and the pipe", rep.Fds, web)
	}
	early.SetDeadline(time.Now().Add(cliTimeout))
	line, err := bufio.NewReader(early).ReadString('\n')
	if want := fmt.Sprintf("%d web:pipe\n", rep.PID); err != nil || line != want {
		t.Errorf("early client got %q, %v; want %q", line, err, want)
	}

	// --replace closes the old listener.
	web2 := strings.TrimSpace(mustRun(t, "store", sock, "web", "--listen", "127.0.0.1:0", "--replace"))
	if c, err := net.DialTimeout("tcp", web, time.Second); err == nil {
		c.Close()
		t.Errorf("old listener %s still accepts after --replace", web)
	}
	if l := ls(t, sock); len(l) != 3 || l[2].kind != "tcp listener "+web2 {
		t.Errorf("after --replace: %+v", l)
	}

	mustRun(t, "rm", sock, "pipe")
	if got, err := io.ReadAll(pr); err != nil || len(got) != 0 {
		t.Errorf("pipe after rm: %q, %v; want EOF", got, err)
	}
	r = fdsendRun(t, "rm", sock, "pipe")
	if r.status != 1 || !strings.Contains(r.stderr, `"pipe" is not held`) {
		t.Errorf("rm of a missing name: %d %q", r.status, r.stderr)
	}

	if st := h.stop(); st != 0 {
		t.Errorf("hold after SIGTERM: status %d: %s", st, h.log())
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after SIGTERM: %v", err)
	}
	if c, err := net.DialTimeout("tcp", web2, time.Second); err == nil {
		c.Close()
		t.Errorf("held listener %s still accepts after the holder stopped", web2)
	}
	for _, w := range []string{"holding at most 1024 descriptors on " + sock + " (mode 0600)", `removed "pipe"`, `replaced "web"`, "terminated: closing everything held"} {
		if !strings.Contains(h.log(), w) {
			t.Errorf("holder log lacks %q:\n%s", w, h.log())
		}
	}
}

// TestHolderCLIFetchSocketActivate hands held descriptors to the real
// systemd-socket-activate, which passes them on to its own child after its
// own socket.
func TestHolderCLIFetchSocketActivate(t *testing.T) {
	fdtest.Check(t)
	sa := tool(t, "systemd-socket-activate")
	dir := t.TempDir()
	sock := filepath.Join(dir, "holder.sock")
	startHold(t, sock)
	web := strings.TrimSpace(mustRun(t, "store", sock, "web", "--listen", "127.0.0.1:0"))
	dns := strings.TrimSpace(mustRun(t, "store", sock, "dns", "--listen", "127.0.0.1:0", "--datagram"))
	own := filepath.Join(dir, "own.sock")

	cmd := exec.Command(fdsendBin, "fetch", sock, "web", "dns", "--", sa, "-l", own, "--fdname=web:dns:own", "--", python3(t), "-c", pyHolderReport)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}()
	// systemd-socket-activate 252 runs its child on the first connection
	// to its own socket.
	deadline := time.Now().Add(cliTimeout)
	for {
		c, err := net.Dial("unix", own)
		if err == nil {
			defer c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("systemd-socket-activate did not listen: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-done:
	case <-time.After(cliTimeout):
		t.Fatalf("child did not finish: %s", stderr.String())
	}
	if cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("status %d: %s", cmd.ProcessState.ExitCode(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "Received 2 descriptors via the environment") {
		t.Errorf("systemd-socket-activate did not take our descriptors:\n%s", stderr.String())
	}
	rep := decodePy(t, stdout.String())
	if rep.PID != cmd.Process.Pid {
		t.Errorf("grandchild pid %d, fdsend fetch %d: want exec in place all the way", rep.PID, cmd.Process.Pid)
	}
	if rep.Env["LISTEN_FDS"] != "3" || rep.Env["LISTEN_FDNAMES"] != "web:dns:own" || rep.Env["LISTEN_PID"] != strconv.Itoa(rep.PID) {
		t.Errorf("variables %v", rep.Env)
	}
	if len(rep.Fds) != 3 {
		t.Fatalf("descriptors %+v", rep.Fds)
	}
	for i, w := range []struct {
		addr      string
		typ       int
		listening int
	}{{web, syscall.SOCK_STREAM, 1}, {dns, syscall.SOCK_DGRAM, 0}, {own, syscall.SOCK_STREAM, 1}} {
		f := rep.Fds[i]
		if f.Addr != w.addr || f.Type != w.typ || f.Listening != w.listening || f.Nonblock {
			t.Errorf("fd %d: %+v, want %s type %d listening %d, blocking", 3+i, f, w.addr, w.typ, w.listening)
		}
	}
}

// TestHolderCLITransferExpiry restarts a holder through transfer and
// checks that expiries carry over.
func TestHolderCLITransferExpiry(t *testing.T) {
	fdtest.Check(t)
	dir := t.TempDir()
	oldSock, newSock := filepath.Join(dir, "old.sock"), filepath.Join(dir, "new.sock")
	old := startHold(t, oldSock)
	startHold(t, newSock)
	web := strings.TrimSpace(mustRun(t, "store", oldSock, "web", "--listen", "127.0.0.1:0"))
	mustRun(t, "store", oldSock, "brief", "--file", "/dev/null", "--ttl", "1500ms")
	mustRun(t, "store", oldSock, "taken", "--file", "/dev/null")
	mustRun(t, "store", newSock, "taken", "--file", "/etc/hostname")

	r := fdsendRun(t, "transfer", oldSock, newSock)
	if r.status != 0 {
		t.Fatalf("transfer: %d %s", r.status, r.stderr)
	}
	wantOut := "copied brief\ncopied web\nskipped taken (already held by " + newSock + ")\n"
	if r.stdout != wantOut {
		t.Errorf("transfer said %q, want %q", r.stdout, wantOut)
	}
	if st := old.stop(); st != 0 {
		t.Errorf("old holder: status %d", st)
	}
	lines := ls(t, newSock)
	if len(lines) != 3 || lines[0].name != "brief" || lines[1].name != "taken" || lines[2].name != "web" {
		t.Fatalf("new holder: %+v", lines)
	}
	if lines[0].expiry <= 0 || lines[0].expiry > 1500*time.Millisecond {
		t.Errorf("brief: expiry %v, want what was left of 1.5s", lines[0].expiry)
	}
	if lines[1].kind != "file /etc/hostname" || lines[2].kind != "tcp listener "+web || lines[2].expiry != -1 {
		t.Errorf("new holder: %+v", lines)
	}
	// The listener outlived the old holder.
	c, err := net.DialTimeout("tcp", web, time.Second)
	if err != nil {
		t.Errorf("transferred listener: %v", err)
	} else {
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		l := ls(t, newSock)
		if len(l) == 2 && l[0].name == "taken" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("brief did not expire: %+v", l)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// worldFdsend copies the fdsend binary where user nobody can run it.
func worldFdsend(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fdsend-world-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(fdsendBin)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "fdsend")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestHolderCLIRefused runs the client commands as user nobody against a
// holder that lets nobody list and nothing else.
func TestHolderCLIRefused(t *testing.T) {
	fdtest.Check(t)
	fdtest.NeedRoot(t, "it runs fdsend as nobody")
	bin := worldFdsend(t)
	sock := filepath.Join(fdtest.WorldDir(t), "holder.sock")
	h := startHold(t, sock, "--allow", "uid=nobody:list")
	if st, err := os.Stat(sock); err != nil || st.Mode().Perm() != 0o666 {
		t.Errorf("socket with --allow for another user: %v, %v; want 0666", st.Mode(), err)
	}
	mustRun(t, "store", sock, "secret", "--file", "/etc/hostname")
	nobody := cliOpts{bin: bin, cred: &syscall.Credential{Uid: fdtest.Nobody, Gid: fdtest.Nobody}}

	r := fdsendRunWith(t, nobody, "ls", sock)
	if r.status != 0 || !strings.HasPrefix(r.stdout, "secret\tfile /etc/hostname\t") {
		t.Errorf("ls as nobody (allowed): %d %q %q", r.status, r.stdout, r.stderr)
	}
	for _, args := range [][]string{
		{"store", sock, "mine", "--file", "/etc/hostname"},
		{"rm", sock, "secret"},
		{"fetch", sock, "secret", "--", "/bin/true"},
		{"fetch", sock, "secret", "--delete", "--", "/bin/true"},
	} {
		r := fdsendRunWith(t, nobody, args...)
		if r.status != 1 || !strings.Contains(r.stderr, "uid 65534 gid 65534 may not") {
			t.Errorf("%v as nobody: status %d, %q; want 1 and a refusal", args, r.status, r.stderr)
		}
	}
	if l := ls(t, sock); len(l) != 1 || l[0].name != "secret" {
		t.Errorf("after nobody's attempts: %+v", l)
	}
	if !h.waitLog("refused store from pid") {
		t.Errorf("holder log:\n%s", h.log())
	}
}

// TestHolderCLIFull runs the holder with a tiny descriptor limit and --max:
// it fits its limits in, refuses stores it cannot hold, and keeps serving.
func TestHolderCLIFull(t *testing.T) {
	fdtest.Check(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "holder.sock")
	h := startHoldVia(t, []string{"/bin/sh", "-c", `ulimit -n 128 && exec "$@"`, "sh"}, sock, "--max", "100")
	// 128 descriptors: the reserve, 4 descriptors a connection for every
	// sort of connection, one a lingering refusal, and 50 entries.
	if !h.waitLog("only 128 descriptors may be open (RLIMIT_NOFILE): holding at most 50 entries and serving 4 connections") {
		t.Errorf("holder did not fit its limits: %s", h.log())
	}
	stored := 0
	for i := range 80 {
		r := fdsendRun(t, "store", sock, fmt.Sprint("n", i), "--file", "/dev/null")
		if r.status != 0 {
			if !strings.Contains(r.stderr, "the holder holds 50 entries, its limit") {
				t.Fatalf("store %d: %q", i, r.stderr)
			}
			break
		}
		stored++
	}
	if stored != 50 {
		t.Fatalf("stored %d entries, want 50", stored)
	}
	// Full, and still serving: list, remove, store again.
	if l := ls(t, sock); len(l) != stored {
		t.Errorf("ls: %d entries, stored %d", len(l), stored)
	}
	mustRun(t, "rm", sock, "n0")
	mustRun(t, "store", sock, "again", "--file", "/dev/null")
	// Many connections at once beyond its limit are refused, not fatal.
	var conns []net.Conn
	for range 40 {
		c, err := net.Dial("unix", sock)
		if err != nil {
			break
		}
		conns = append(conns, c)
	}
	refused := time.Now().Add(5 * time.Second)
	for !strings.Contains(h.log(), "refusing a connection: 4 connections already") && time.Now().Before(refused) {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(h.log(), "refusing a connection: 4 connections already") {
		t.Errorf("none of %d connections was refused:\n%s", len(conns), h.log())
	}
	for _, c := range conns {
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := fdsendRun(t, "ls", sock)
		if r.status == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("holder stopped serving after a burst of connections: %s / %s", r.stderr, h.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := h.stop(); st != 0 {
		t.Errorf("status %d: %s", st, h.log())
	}
}

// TestHolderCLIUsage checks usage errors (status 2, a message, nothing
// done) and the help texts.
func TestHolderCLIUsage(t *testing.T) {
	for _, args := range [][]string{
		{"hold"},
		{"hold", "a", "b"},
		{"hold", "s", "--max", "0"},
		{"hold", "s", "--max", "x"},
		{"hold", "s", "--allow", "uid=1:steal"},
		{"hold", "s", "--allow", "someone"},
		{"hold", "s", "--bogus"},
		{"store", "s"},
		{"store", "s", "a:b"},
		{"store", "s", "n", "--fd", "3", "--file", "/x"},
		{"store", "s", "n", "--listen", "nonsense"},
		{"store", "s", "n", "--ttl", "soon"},
		{"store", "s", "n", "--ttl", "-1s"},
		{"store", "s", "n", "--fd", "-1"},
		{"store", "s", "n", "--datagram"},
		{"fetch", "s", "n"},
		{"fetch", "s", "--", "true"},
		{"fetch", "s", "n", "--"},
		{"fetch", "s", "n", "n", "--", "true"},
		{"fetch", "s", "bad:name", "--", "true"},
		{"ls"},
		{"ls", "a", "b"},
		{"rm", "s"},
		{"transfer", "a"},
		{"transfer", "", "b"},
	} {
		r := fdsendRun(t, args...)
		if r.status != 2 || !strings.Contains(r.stderr, "fdsend "+args[0]+": ") || !strings.Contains(r.stderr, "--help") {
			t.Errorf("fdsend %q: status %d, stderr %q; want 2 and a message", args, r.status, r.stderr)
		}
	}
	helps := map[string][]string{
		"hold":     {"--max", "--allow", "--help"},
		"store":    {"--fd", "--listen", "--file", "--datagram", "--ttl", "--replace", "--help"},
		"fetch":    {"--delete", "--help"},
		"ls":       {"--help"},
		"rm":       {"--help"},
		"transfer": {"--help"},
	}
	for name, flags := range helps {
		r := fdsendRun(t, name, "--help")
		if r.status != 0 || !strings.HasPrefix(r.stdout, "Usage: fdsend "+name) {
			t.Errorf("%s --help: %d %q", name, r.status, r.stdout)
		}
		for _, f := range flags {
			if !strings.Contains(r.stdout, f) {
				t.Errorf("%s --help does not mention %s", name, f)
			}
		}
	}
	// A missing COMMAND is found before anything is fetched or deleted.
	dir := t.TempDir()
	sock := filepath.Join(dir, "h.sock")
	startHold(t, sock)
	mustRun(t, "store", sock, "x", "--file", "/dev/null")
	r := fdsendRun(t, "fetch", sock, "x", "--delete", "--", "/no/such/program")
	if r.status != 127 {
		t.Errorf("fetch -- missing program: status %d %q, want 127", r.status, r.stderr)
	}
	if l := ls(t, sock); len(l) != 1 {
		t.Errorf("after a failed fetch --delete: %+v", l)
	}
	// Unreachable holder: status 1 with a clear message.
	r = fdsendRun(t, "ls", filepath.Join(dir, "nobody-here.sock"))
	if r.status != 1 || !strings.Contains(r.stderr, "cannot reach a holder at") {
		t.Errorf("ls of a missing holder: %d %q", r.status, r.stderr)
	}
}
