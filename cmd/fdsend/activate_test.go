//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend/activation"
	"github.com/fdsend/fdsend/internal/fdtest"
	"github.com/fdsend/fdsend/notify"
)

func init() {
	children["fdstore"] = fdstoreChild
	children["signals"] = signalsChild
	children["conn"] = connChild
	children["take"] = takeChild
}

// role is the -E option that makes the test binary play a child role.
func role(name string) string { return "--setenv=" + childRoleEnv + "=" + name }

// takeChild takes the listener "web" the way a Go server does (which puts
// the shared open file in non-blocking mode) and exits.
func takeChild() error {
	ln, err := activation.Listener("web")
	if err != nil {
		return err
	}
	fmt.Println("took web")
	return ln.Close()
}

// fdstoreChild, on its first run, stores a connection to FDSEND_PEER and a
// temporary file in the launcher's descriptor store and dies; on the next
// run it finds both, named, after the listener, uses them and waits for
// SIGTERM.
func fdstoreChild() error {
	files, err := activation.Files()
	if err != nil {
		return err
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	fmt.Printf("names %s\n", strings.Join(names, " "))
	if len(files) == 1 {
		c, err := net.Dial("tcp", os.Getenv("FDSEND_PEER"))
		if err != nil {
			return err
		}
		fmt.Fprintf(c, "first %d\n", os.Getpid())
		f, err := os.CreateTemp("", "fdsend-stored-")
		if err != nil {
			return err
		}
		os.Remove(f.Name())
		if _, err := f.WriteString("kept across restarts"); err != nil {
			return err
		}
		if ok, err := notify.Store("peer", c); !ok || err != nil {
			return fmt.Errorf("Store peer: %v %v", ok, err)
		}
		if ok, err := notify.Store("scratch", f); !ok || err != nil {
			return fmt.Errorf("Store scratch: %v %v", ok, err)
		}
		if ok, err := notify.Barrier(5 * time.Second); !ok || err != nil {
			return fmt.Errorf("Barrier: %v %v", ok, err)
		}
		fmt.Println("stored, dying")
		os.Exit(1)
	}
	c, err := activation.Conn("peer")
	if err != nil {
		return err
	}
	fmt.Fprintf(c, "second %d\n", os.Getpid())
	f, err := activation.TakeFile("scratch")
	if err != nil {
		return err
	}
	b := make([]byte, 100)
	n, err := f.ReadAt(b, 0)
	if err != nil && err != io.EOF {
		return err
	}
	fmt.Printf("scratch %q\n", b[:n])
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	fmt.Println("waiting")
	<-sig
	return nil
}

// signalsChild prints "ready", then the name of each forwarded signal it
// gets. On SIGTERM or SIGINT it exits with FDSEND_TERM_EXIT if set, else it
// dies of the signal.
func signalsChild() error {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTERM, syscall.SIGINT)
	fmt.Println("ready")
	for s := range sigs {
		switch s {
		case syscall.SIGTERM, syscall.SIGINT:
			if code := os.Getenv("FDSEND_TERM_EXIT"); code != "" {
				n, _ := strconv.Atoi(code)
				os.Exit(n)
			}
			signal.Reset(s)
			syscall.Kill(os.Getpid(), s.(syscall.Signal))
			time.Sleep(5 * time.Second)
			return errors.New("still alive after re-raising")
		default:
			fmt.Println(sigName(s))
		}
	}
	return nil
}

func sigName(s os.Signal) string {
	switch s {
	case syscall.SIGHUP:
		return "HUP"
	case syscall.SIGUSR1:
		return "USR1"
	case syscall.SIGUSR2:
		return "USR2"
	case syscall.SIGTERM:
		return "TERM"
	}
	return s.String()
}

// connChild is a child of --accept: it writes its pid to the connection,
// then the name of each signal it gets; on SIGTERM it writes TERM and exits.
func connChild() error {
	c, err := activation.Conn("connection")
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGTERM)
	fmt.Fprintf(c, "%d\n", os.Getpid())
	for s := range sigs {
		fmt.Fprintln(c, sigName(s))
		if s == syscall.SIGTERM {
			return c.Close()
		}
	}
	return nil
}

// pyReport prints what it inherited: the descriptors above stdio (found
// before anything else opens one; a Go child cannot do this, its runtime
// opens files of its own at start-up) and whether each is blocking,
// whether LISTEN_PID is its PID, LISTEN_* and the variables FDSEND_SHOW
// names.
const pyReport = `
import fcntl, os
fds = []
for fd in range(3, 256):
    try:
        os.fstat(fd)
        fds.append(fd)
    except OSError:
        pass
print("fds", " ".join("%d:%s" % (fd, "nonblocking" if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK else "blocking") for fd in fds))
print("pid-ok", "true" if os.environ.get("LISTEN_PID") == str(os.getpid()) else "false")
for v in ["LISTEN_FDS", "LISTEN_FDNAMES"]:
    print(v + "=" + os.environ.get(v, ""))
for v in os.environ.get("FDSEND_SHOW", "").split():
    print(v, "true" if v in os.environ else "false", os.environ.get(v, ""))
`

// report runs pyReport under `fdsend activate args` and returns its lines
// by their first word.
func report(t *testing.T, env []string, args ...string) (map[string]string, *launcher) {
	t.Helper()
	l := activate(t, env, append(args, "--", python3(t), "-c", pyReport)...)
	if st := l.wait(); st != 0 {
		t.Fatalf("report child: status %d", st)
	}
	out := map[string]string{}
	for _, s := range l.allStdout() {
		k, v, _ := strings.Cut(s, " ")
		if strings.HasPrefix(k, "LISTEN_") {
			k, v, _ = strings.Cut(s, "=")
		}
		out[k] = v
	}
	return out, l
}

func TestActivateHandsOverBlockingSocketsAndNothingElse(t *testing.T) {
	fdtest.Check(t)
	dir := t.TempDir()
	env := []string{"FDSEND_SHOW=FOO PASSED UNSET_ONE NOTIFY_SOCKET", "PASSED=from launcher", "NOTIFY_SOCKET=/outer/notify",
		// A stale protocol for another process: nothing is inherited from it,
		// and none of it reaches the child.
		"LISTEN_PID=1", "LISTEN_FDS=7", "LISTEN_FDNAMES=x:y"}
	got, l := report(t, env, "-l", "127.0.0.1:0", "--listen=[::1]:0", "-l", filepath.Join(dir, "s.sock"), "-l", "@fdsend-test-"+strconv.Itoa(os.Getpid()),
		"--fdname=a:b", "--fdname", "c:d", "-E", "FOO=bar", "-E", "PASSED", "-E", "UNSET_ONE")
	want := map[string]string{
		"fds":            "3:blocking 4:blocking 5:blocking 6:blocking",
		"pid-ok":         "true",
		"LISTEN_FDS":     "4",
		"LISTEN_FDNAMES": "a:b:c:d",
		"FOO":            "true bar",
		"PASSED":         "true from launcher",
		"UNSET_ONE":      "true ",
		"NOTIFY_SOCKET":  "true /outer/notify", // passed through untouched without --fdstore
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("child reports %s %q, want %q", k, got[k], v)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "s.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the launcher left its socket file behind: %v", err)
	}
	if n := strings.Count(l.logText(), "listening on"); n != 4 {
		t.Errorf("%d 'listening on' lines, want 4", n)
	}

	// Without --fdname every socket is "unknown", as libsystemd reports
	// sockets from systemd-socket-activate without --fdname.
	got, _ = report(t, nil, "-l", "127.0.0.1:0", "-l", "127.0.0.1:0", "-d", "-l", "127.0.0.1:0")
	if got["LISTEN_FDNAMES"] != "unknown:unknown:unknown" || got["fds"] != "3:blocking 4:blocking 5:blocking" {
		t.Errorf("unnamed: %q", got)
	}
}

// freePort returns a local TCP address that was free a moment ago, for
// systemd-socket-activate, which does not take port 0.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// pyServe checks, before anything else opens a descriptor, that exactly
// LISTEN_FDS descriptors follow stdio and that each is blocking; asks
// libsystemd for the names; then serves fd 3 with socket.socket(fileno=3).
const pyServe = `
import ctypes, fcntl, os, socket, sys
fds = []
for fd in range(3, 256):
    try:
        os.fstat(fd)
        fds.append(fd)
    except OSError:
        pass
n = int(os.environ["LISTEN_FDS"])
assert fds == list(range(3, 3 + n)), ("open descriptors", fds, "LISTEN_FDS", n)
for fd in fds:
    assert not fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK, "fd %d is non-blocking" % fd
lib = ctypes.CDLL("libsystemd.so.0")
names = ctypes.POINTER(ctypes.c_char_p)()
got = lib.sd_listen_fds_with_names(0, ctypes.byref(names))
print("libsystemd", got, ":".join(names[i].decode() for i in range(max(got, 0))), flush=True)
s = socket.socket(fileno=3)
while True:
    c, _ = s.accept()
    c.sendall(b"python %d\n" % os.getpid())
    c.close()
`

func dialLine(t *testing.T, address string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", address, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", address, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return readLine(t, c)
}

func TestActivatePythonChild(t *testing.T) {
	fdtest.Check(t)
	l := activate(t, nil, "-l", "127.0.0.1:0", "--fdname", "web", "--", python3(t), "-c", pyServe)
	a := l.addr()
	l.expect("libsystemd 1 web")
	for i := 0; i < 3; i++ {
		if got := dialLine(t, a); !strings.HasPrefix(got, "python ") {
			t.Fatalf("reply %q", got)
		}
	}
	l.signal(syscall.SIGTERM)
	if st := l.wait(); st != 128+int(syscall.SIGTERM) {
		t.Fatalf("status %d, want %d (the child died of SIGTERM)", st, 128+int(syscall.SIGTERM))
	}
}

// TestActivateUnderAndOverSystemdSocketActivate chains fdsend activate and
// the real systemd-socket-activate both ways: libsystemd accepts our
// LISTEN_PID and LISTEN_FDS, and we keep the names it gives us.
func TestActivateUnderAndOverSystemdSocketActivate(t *testing.T) {
	fdtest.Check(t)
	ssa := tool(t, "systemd-socket-activate")
	py := python3(t)

	// fdsend activate -> systemd-socket-activate (no -l: it passes our
	// socket through, after checking LISTEN_PID) -> python.
	l := activate(t, nil, "-l", "127.0.0.1:0", "--fdname", "web", "--", ssa, "--fdname=web", "--", py, "-c", pyServe)
	a := l.addr()
	l.waitLog(regexp.MustCompile(`Received 1 descriptors via the environment`))
	// systemd-socket-activate execs python at the first connection.
	if got := dialLine(t, a); !strings.HasPrefix(got, "python ") {
		t.Fatalf("reply %q", got)
	}
	l.expect("libsystemd 1 web")
	l.signal(syscall.SIGTERM)
	if st := l.wait(); st != 128+int(syscall.SIGTERM) {
		t.Fatalf("status %d", st)
	}

	// systemd-socket-activate -> fdsend activate (inherits "outer", adds
	// "inner") -> python, which sees both names.
	s := start(t, nil, ssa, "-l", freePort(t), "--fdname=outer", "--", fdsendBin, "activate", "-l", "127.0.0.1:0", "--fdname=inner", "--", py, "-c", pyServe)
	m := s.waitLog(regexp.MustCompile(`Listening on (\S+) as 3`))
	outer := m[1]
	// The first connection makes systemd-socket-activate exec fdsend; python
	// answers it on the inherited socket.
	conn, err := net.DialTimeout("tcp", outer, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s.waitLog(regexp.MustCompile(`passing inherited socket 127\.0\.0\.1:\d+ as fd 3 \(name outer\)`))
	s.addr() // fdsend's own socket, "inner"
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if got := readLine(t, conn); !strings.HasPrefix(got, "python ") {
		t.Fatalf("reply on outer: %q", got)
	}
	s.expect("libsystemd 2 outer:inner")
	syscall.Kill(s.cmd.Process.Pid, syscall.SIGINT) // fdsend now has systemd-socket-activate's pid
	if st := s.wait(); st != 128+int(syscall.SIGINT) {
		t.Fatalf("status %d", st)
	}
}

// pyGenerations serves 100 connections on fd 3, answering each with its
// PID and generation (counted by files in the directory argv[1]), then
// exits: with status 3 every fourth generation, else 0.
const pyGenerations = `
import os, socket, sys
d = sys.argv[1]
gen = len(os.listdir(d)) + 1
open(os.path.join(d, str(gen)), "w").close()
assert os.environ["LISTEN_FDNAMES"] == "web"
s = socket.socket(fileno=3)
for i in range(100):
    c, _ = s.accept()
    c.sendall(b"%d %d\n" % (os.getpid(), gen))
    c.close()
sys.exit(3 if gen % 4 == 3 else 0)
`

// TestActivateRestartNoRefusedConnection runs a client loop of 1,150
// connections while the child exits after every 100 (every fourth one with a
// failure, which adds backoff pauses): no connection is refused.
func TestActivateRestartNoRefusedConnection(t *testing.T) {
	fdtest.Check(t)
	gens := t.TempDir()
	l := activate(t, nil, "--restart=always", "-l", "127.0.0.1:0", "--fdname=web", "--", python3(t), "-c", pyGenerations, gens)
	a := l.addr()
	seen := map[string]int{}
	for i := 0; i < 1150; i++ {
		c, err := net.DialTimeout("tcp", a, 10*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil {
			t.Fatalf("connection %d: %q %v", i, line, err)
		}
		f := strings.Fields(line)
		seen[f[1]]++
	}
	if len(seen) < 11 {
		t.Fatalf("%d generations served, want at least 11 (10 restarts): %v", len(seen), seen)
	}
	for g, n := range seen {
		if n != 100 && g != "12" {
			t.Errorf("generation %s served %d connections, want 100", g, n)
		}
	}
	if n := strings.Count(l.logText(), "exited with status 3"); n < 2 {
		t.Errorf("%d failed generations, want at least 2", n)
	}
	l.signal(syscall.SIGTERM)
	if st := l.wait(); st != 128+int(syscall.SIGTERM) {
		t.Fatalf("status %d, want %d", st, 128+int(syscall.SIGTERM))
	}
}

// TestActivateRestartGivesBlockingSocketAfterGoChild: a Go child puts the
// shared listening socket in non-blocking mode; the next child, in Python,
// still gets it blocking and accepts with socket.socket(fileno=3).
func TestActivateRestartGivesBlockingSocketAfterGoChild(t *testing.T) {
	fdtest.Check(t)
	marker := filepath.Join(t.TempDir(), "second")
	script := `if [ -e "$1" ]; then exec "$2" -c "$3"; else : > "$1"; exec "$4"; fi`
	l := activate(t, nil, "--restart=always", "-l", "127.0.0.1:0", "--fdname=web", role("take"), "--",
		"/bin/sh", "-c", script, "sh", marker+"2", python3(t), pyServe, os.Args[0])
	a := l.addr()
	l.expect("took web")
	l.expect("libsystemd 1 web")
	if got := dialLine(t, a); !strings.HasPrefix(got, "python ") {
		t.Fatalf("reply %q", got)
	}
	l.signal(syscall.SIGTERM)
	l.wait()
}

func TestActivateFDStore(t *testing.T) {
	fdtest.Check(t)
	peer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	l := activate(t, []string{"FDSEND_PEER=" + peer.Addr().String()},
		"--restart=on-failure", "--fdstore=4", "-l", "127.0.0.1:0", "--fdname=web", role("fdstore"), "-E", "FDSEND_PEER", "--", os.Args[0])
	l.addr()
	peer.(*net.TCPListener).SetDeadline(time.Now().Add(20 * time.Second))
	c, err := peer.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	first, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(first, "first ") {
		t.Fatalf("first child: %q %v", first, err)
	}
	l.expect("names web")
	l.expect("stored, dying")
	// The restarted child writes on the same connection.
	second, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(second, "second ") || second == first {
		t.Fatalf("second child on the stored connection: %q %v", second, err)
	}
	l.expect("names web peer scratch")
	l.expect(`scratch "kept across restarts"`)
	l.expect("waiting")
	l.signal(syscall.SIGTERM)
	if st := l.wait(); st != 0 {
		t.Fatalf("status %d, want 0 (the child's)", st)
	}
}

// pyStore stores a temporary file with socket.send_fds (written from the
// protocol, not with our library) and reports readiness with the real
// systemd-notify --ready, then fails; the restarted child reads the file
// back by its name.
const pyStore = `
import os, socket, subprocess, sys, tempfile, time
names = os.environ["LISTEN_FDNAMES"].split(":")
assert int(os.environ["LISTEN_FDS"]) == len(names)
assert int(os.environ["LISTEN_PID"]) == os.getpid()
if names == ["web"]:
    f = tempfile.TemporaryFile()
    f.write(b"python stored this")
    f.flush()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.connect(os.environ["NOTIFY_SOCKET"])  # send_fds ignores its address before 3.13
    socket.send_fds(s, [b"FDSTORE=1\nFDNAME=pyfile\n"], [f.fileno()])
    t = time.monotonic()
    r = subprocess.run(["systemd-notify", "--ready"])
    print("systemd-notify", r.returncode, "fast" if time.monotonic() - t < 4 else "slow", flush=True)
    sys.exit(1)
fd = 3 + names.index("pyfile")
print("names", ":".join(names), flush=True)
print("read", os.pread(fd, 100, 0).decode(), flush=True)
`

func TestActivateFDStorePython(t *testing.T) {
	fdtest.Check(t)
	outer := filepath.Join(t.TempDir(), "outer.sock")
	oc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: outer, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer oc.Close()
	l := activate(t, []string{"NOTIFY_SOCKET=" + outer},
		"--restart=on-failure", "--fdstore=2", "-l", "127.0.0.1:0", "--fdname=web", "--", python3(t), "-c", pyStore)
	l.expect("systemd-notify 0 fast")
	l.expect("names web:pyfile")
	l.expect("read python stored this")
	if st := l.wait(); st != 0 {
		t.Fatalf("status %d", st)
	}
	// READY=1 was relayed to the launcher's own NOTIFY_SOCKET.
	oc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := oc.Read(buf)
	if err != nil || !strings.Contains(string(buf[:n]), "READY=1") {
		t.Fatalf("outer NOTIFY_SOCKET got %q, %v; want READY=1", buf[:n], err)
	}
}

func TestActivateSignals(t *testing.T) {
	fdtest.Check(t)
	for _, tc := range []struct {
		name   string
		stop   syscall.Signal
		env    []string
		status int
	}{
		{"child dies of SIGTERM", syscall.SIGTERM, nil, 128 + int(syscall.SIGTERM)},
		{"child dies of SIGINT", syscall.SIGINT, nil, 128 + int(syscall.SIGINT)},
		{"child exits 7 on SIGTERM", syscall.SIGTERM, []string{"FDSEND_TERM_EXIT=7"}, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := activate(t, tc.env, "--restart=always", "-l", "127.0.0.1:0", role("signals"), "-E", "FDSEND_TERM_EXIT", "--", os.Args[0])
			l.expect("ready")
			for _, s := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2} {
				l.signal(s)
				l.expect(sigName(s))
			}
			l.signal(tc.stop)
			if st := l.wait(); st != tc.status {
				t.Fatalf("status %d, want %d", st, tc.status)
			}
			if n := strings.Count(l.logText(), "started "); n != 1 {
				t.Errorf("%d starts, want 1: no restart after a stop signal", n)
			}
		})
	}
}

func TestActivateAccept(t *testing.T) {
	fdtest.Check(t)
	l := activate(t, nil, "-a", "-l", "127.0.0.1:0", role("conn"), "--", os.Args[0])
	a := l.addr()
	var conns []*bufio.Reader
	pids := map[string]bool{}
	for i := 0; i < 2; i++ {
		c, err := net.DialTimeout("tcp", a, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		br := bufio.NewReader(c)
		pid := readLine(t, br)
		pids[pid] = true
		conns = append(conns, br)
	}
	if len(pids) != 2 {
		t.Fatalf("pids %v: want one child per connection", pids)
	}
	l.signal(syscall.SIGUSR1)
	for _, br := range conns {
		if got := readLine(t, br); got != "USR1" {
			t.Fatalf("child got %q, want USR1", got)
		}
	}
	l.signal(syscall.SIGTERM)
	for _, br := range conns {
		if got := readLine(t, br); got != "TERM" {
			t.Fatalf("child got %q, want TERM", got)
		}
	}
	if st := l.wait(); st != 0 {
		t.Fatalf("status %d, want 0 (the children's)", st)
	}
}

func TestActivateInetd(t *testing.T) {
	fdtest.Check(t)
	l := activate(t, nil, "-a", "--inetd", "-l", "127.0.0.1:0", "--", "/bin/sh", "-c", `echo "hi [$LISTEN_FDS]"; read x; echo "got $x"; exec sleep 30`)
	a := l.addr()
	c, err := net.DialTimeout("tcp", a, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	if got := readLine(t, br); got != "hi []" {
		t.Fatalf("%q", got)
	}
	fmt.Fprintln(c, "abc")
	if got := readLine(t, br); got != "got abc" {
		t.Fatalf("%q", got)
	}
	l.signal(syscall.SIGINT)
	if st := l.wait(); st != 128+int(syscall.SIGINT) {
		t.Fatalf("status %d", st)
	}
}

func TestActivateUsageErrors(t *testing.T) {
	fdtest.Check(t)
	marker := filepath.Join(t.TempDir(), "started")
	cmd := []string{"/bin/sh", "-c", `: > "$0"`, marker}
	for _, args := range [][]string{
		{"--bogus"},
		{"-l", "localhost:80"},
		{"-l", "127.0.0.1:0", "-l", "1.2.3.4"},
		{"-l", "127.0.0.1:0", "-l", "[::1]"},
		{"-l", "127.0.0.1:0", "--fdname", "a:b"},
		{"-l", "127.0.0.1:0", "--fdname", "bad:"},
		{"-l", "127.0.0.1:0", "--fdname", "a\x01"},
		{"-l", "127.0.0.1:0", "-E", "9X=1"},
		{"-l", "127.0.0.1:0", "--restart=maybe"},
		{"-l", "127.0.0.1:0", "-d", "--seqpacket"},
		{"-l", "127.0.0.1:0", "-a", "-d"},
		{"-l", "127.0.0.1:0", "--fdstore=-5"},
		{"-l", "127.0.0.1:0", "-l", "127.0.0.1:0", "--inetd"},
		{}, // no sockets at all
	} {
		l := activate(t, nil, append(append(args, "--"), cmd...)...)
		if st := l.wait(); st != 2 {
			t.Errorf("%q: status %d, want 2", args, st)
		}
		if strings.Contains(l.logText(), "listening on") || strings.Contains(l.logText(), "started") {
			t.Errorf("%q: something was started:\n%s", args, l.logText())
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatalf("%q: the command ran", args)
		}
	}
	// No command at all.
	if st := activate(t, nil, "-l", "127.0.0.1:0").wait(); st != 2 {
		t.Errorf("no command: status %d", st)
	}
	// A command that does not exist: 127, like a shell.
	if st := activate(t, nil, "-l", "127.0.0.1:0", "--", "/nonexistent/cmd").wait(); st != 127 {
		t.Errorf("missing command: status %d, want 127", st)
	}
	// Malformed LISTEN_* for this very process: an error, nothing started.
	s := start(t, nil, "/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=x exec "$0" activate -l 127.0.0.1:0 -- "$@"`, fdsendBin, "/bin/sh", "-c", `: > "$0"`, marker)
	if st := s.wait(); st != 1 {
		t.Errorf("malformed LISTEN_FDS: status %d, want 1", st)
	}
	if !strings.Contains(s.logText(), "LISTEN_FDS") {
		t.Errorf("malformed LISTEN_FDS: the error does not name it:\n%s", s.logText())
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the command ran")
	}
	// A port in use: 1, nothing started.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if st := activate(t, nil, append([]string{"-l", "127.0.0.1:0", "-l", busy.Addr().String(), "--"}, cmd...)...).wait(); st != 1 {
		t.Errorf("busy port: status %d, want 1", st)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the command ran")
	}
}

func TestHelp(t *testing.T) {
	fdtest.Check(t)
	for _, tc := range []struct {
		args   []string
		status int
		out    string
	}{
		{nil, 2, ""},
		{[]string{"help"}, 0, "activate"},
		{[]string{"-h"}, 0, "activate"},
		{[]string{"--help"}, 0, "activate"},
		{[]string{"help", "activate"}, 0, "--fdstore=N"},
		{[]string{"activate", "--help"}, 0, "--restart=POLICY"},
		{[]string{"activate", "-h", "--bogus"}, 2, ""},
		{[]string{"help", "nope"}, 2, ""},
		{[]string{"nope"}, 2, ""},
	} {
		l := start(t, nil, fdsendBin, tc.args...)
		if st := l.wait(); st != tc.status {
			t.Errorf("%q: status %d, want %d", tc.args, st, tc.status)
		}
		if tc.out != "" {
			out := l.allStdout()
			if !strings.Contains(strings.Join(out, "\n"), tc.out) {
				t.Errorf("%q: stdout does not mention %q:\n%s", tc.args, tc.out, strings.Join(out, "\n"))
			}
		}
	}
}

// TestActivateRestartAlwaysPacesCleanExits: with --restart=always a child
// that exits 0 at once is started again at once, paced at one start per
// 100 ms and never backed off: 20 starts take about 2 s (they took over a
// minute when a second quick clean exit counted as a failure), and not
// much less (the launcher does not spin).
func TestActivateRestartAlwaysPacesCleanExits(t *testing.T) {
	fdtest.Check(t)
	const starts = 20
	l := activate(t, nil, "--restart=always", "-l", "127.0.0.1:0", "--", "/bin/sh", "-c", "date +%s%N")
	var at []int64 // each child's start, by its own clock, in ns
	deadline := time.After(6 * time.Second)
	for len(at) < starts {
		select {
		case s := <-l.stdout:
			ns, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				t.Fatalf("child printed %q, want the time in ns", s)
			}
			at = append(at, ns)
		case <-deadline:
			t.Fatalf("%d starts within 6 s, want %d (one per 100 ms); log:\n%s", len(at), starts, l.logText())
		}
	}
	// 19 pauses of 100 ms from start to start, less the first child's
	// start-up delay, for which half a second is more than enough.
	if span := time.Duration(at[starts-1] - at[0]); span < 1400*time.Millisecond {
		t.Errorf("%d starts within %v: clean exits must be paced at one start per 100 ms", starts, span)
	}
	l.signal(syscall.SIGTERM)
	if st := l.wait(); st != 0 && st != 128+int(syscall.SIGTERM) {
		t.Fatalf("status %d after SIGTERM, want 0 (a child's) or %d", st, 128+int(syscall.SIGTERM))
	}
}
