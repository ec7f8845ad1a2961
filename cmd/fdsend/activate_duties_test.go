//go:build linux

package main

import (
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
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend/internal/fdtest"
)

// TestActivateNonblocking: with --nonblocking the child finds every socket
// (listeners, and with -a the connection) in non-blocking mode, as
// systemd's NonBlocking=yes hands them over; without it, blocking.
func TestActivateNonblocking(t *testing.T) {
	fdtest.Check(t)
	got, _ := report(t, nil, "--nonblocking", "-l", "127.0.0.1:0", "-d", "-l", "127.0.0.1:0", "--fdname=a:b")
	if got["fds"] != "3:nonblocking 4:nonblocking" || got["LISTEN_FDNAMES"] != "a:b" {
		t.Errorf("--nonblocking: child reports %q", got)
	}
	got, _ = report(t, nil, "-l", "127.0.0.1:0")
	if got["fds"] != "3:blocking" {
		t.Errorf("default: child reports %q", got)
	}

	l := activate(t, nil, "-a", "--nonblocking", "-l", "127.0.0.1:0", "--", python3(t), "-c", pyReport)
	c, err := net.DialTimeout("tcp", l.addr(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if line := l.line(); line != "fds 3:nonblocking" {
		t.Errorf("--accept --nonblocking: child reports %q", line)
	}
	l.signal(syscall.SIGTERM)
	l.wait()
}

// pyUser prints its user, group and supplementary groups, checks that it
// may not bind a port below 1024 itself, then answers one connection on
// the one it was given.
const pyUser = `
import os, socket
print("ids", os.getuid(), os.geteuid(), os.getgid(), os.getegid(), ",".join(str(g) for g in sorted(os.getgroups())), flush=True)
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(os.environ["FDSEND_OTHER_PORT"])))
    print("bind", "allowed", flush=True)
except PermissionError:
    print("bind", "refused", flush=True)
s.close()
l = socket.socket(fileno=3)
c, _ = l.accept()
c.sendall(b"uid %d\n" % os.getuid())
c.close()
`

// lowPorts returns n loopback TCP ports below 1024 that were free a moment
// ago.
func lowPorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for p := 1023; p > 600 && len(ports) < n; p-- {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l.Close()
		ports = append(ports, p)
	}
	if len(ports) < n {
		t.Fatalf("no %d free ports below 1024 on 127.0.0.1", n)
	}
	return ports
}

// TestActivateUser: the launcher, root, binds a port below 1024 and runs
// the child as nobody: the child has nobody's IDs and groups only, cannot
// bind such a port itself, and serves the launcher's.
func TestActivateUser(t *testing.T) {
	fdtest.Check(t)
	fdtest.NeedRoot(t, "it binds a port below 1024 and runs the child as nobody")
	ports := lowPorts(t, 2)
	for _, spec := range []string{"nobody", "65534:65534"} {
		t.Run(spec, func(t *testing.T) {
			l := activate(t, []string{"FDSEND_OTHER_PORT=" + strconv.Itoa(ports[1])},
				"--user", spec, "-l", "127.0.0.1:"+strconv.Itoa(ports[0]), "--", python3(t), "-c", pyUser)
			addr := l.addr()
			l.waitLog(regexpQuote("children run as user " + strings.Split(spec, ":")[0] + " (uid 65534, gid 65534, groups 65534)"))
			if got, want := l.line(), "ids 65534 65534 65534 65534 65534"; got != want {
				t.Errorf("child reports %q, want %q", got, want)
			}
			if got := l.line(); got != "bind refused" {
				t.Errorf("child as nobody: %q, want it refused a port below 1024", got)
			}
			if got := dialLine(t, addr); got != "uid 65534" {
				t.Errorf("reply %q", got)
			}
			if st := l.wait(); st != 0 {
				t.Errorf("status %d", st)
			}
		})
	}
}

// TestActivateUserInetdAndAccept: children of --accept, with and without
// --inetd, run as the user too.
func TestActivateUserInetdAndAccept(t *testing.T) {
	fdtest.Check(t)
	fdtest.NeedRoot(t, "it runs children as nobody")
	for _, mode := range [][]string{{"-a"}, {"-a", "--inetd"}} {
		t.Run(strings.Join(mode, " "), func(t *testing.T) {
			l := activate(t, nil, append(append([]string{"--user", "nobody:users"}, mode...), "-l", "127.0.0.1:0", "--", "/bin/sh", "-c", `echo "$(id -u) $(id -g) $(id -G)" >&2; echo done`)...)
			a := l.addr()
			c, err := net.DialTimeout("tcp", a, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			l.waitLog(regexpQuote("65534 100 100"))
			l.signal(syscall.SIGTERM)
			l.wait()
		})
	}
}

// TestActivateUserFDStore: a child running as nobody reaches the
// launcher's descriptor store (its socket is lent to nobody) and gets what
// it stored back after a restart.
func TestActivateUserFDStore(t *testing.T) {
	fdtest.Check(t)
	fdtest.NeedRoot(t, "it runs the child as nobody")
	l := activate(t, nil, "--user=nobody", "--restart=on-failure", "--fdstore=2", "-l", "127.0.0.1:0", "--fdname=web", "--", python3(t), "-c", pyStore)
	l.expect("systemd-notify 0 fast")
	l.expect("names web:pyfile")
	l.expect("read python stored this")
	if st := l.wait(); st != 0 {
		t.Fatalf("status %d", st)
	}
}

// TestActivateUserRefused: a user or group that cannot be resolved is a
// usage error naming --user; nothing is opened or started.
func TestActivateUserRefused(t *testing.T) {
	fdtest.Check(t)
	for _, tc := range []struct{ spec, says string }{
		{"fdsend-no-such-user", `--user: user "fdsend-no-such-user": no such user`},
		{"nobody:fdsend-no-such-group", `--user: group "fdsend-no-such-group": no such group`},
		{"54321", "--user: user ID 54321 is not in the user database"},
		{"", "--user: no user name"},
	} {
		l := activate(t, nil, "--user", tc.spec, "-l", "127.0.0.1:0", "--", "/bin/sh", "-c", "echo ran")
		if st := l.wait(); st != exitUsage {
			t.Errorf("--user %q: status %d, want %d", tc.spec, st, exitUsage)
		}
		log := l.logText()
		if !strings.Contains(log, tc.says) || strings.Contains(log, "listening on") || strings.Contains(log, "started") {
			t.Errorf("--user %q: log does not say %q, or something was started:\n%s", tc.spec, tc.says, log)
		}
		if out := l.allStdout(); len(out) != 0 {
			t.Errorf("--user %q: the command ran: %q", tc.spec, out)
		}
	}
}

// regexpQuote matches s literally.
func regexpQuote(s string) *regexp.Regexp { return regexp.MustCompile(regexp.QuoteMeta(s)) }

func init() {
	children["orphans"] = orphansChild
}

// orphansChild, run by a launcher that is PID 1 of a PID namespace, makes
// an orphan: a shell starts `cat` in the background and exits, so cat is
// re-parented to PID 1; then it lets cat exit (closing the pipe cat reads)
// and waits, bounded, for PID 1 to reap it. It prints each step, and
// whether any zombie is left in the namespace, then waits for SIGTERM and
// exits with FDSEND_TERM_EXIT if set, else dies of it.
func orphansChild() error {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	sh := exec.Command("/bin/sh", "-c", `cat <&3 >/dev/null & echo $!`)
	sh.ExtraFiles = []*os.File{r}
	sh.Stderr = os.Stderr   // not a pipe of Output's, which cat would hold open
	out, err := sh.Output() // the shell has exited: cat is an orphan now
	r.Close()
	if err != nil {
		return fmt.Errorf("shell: %v", err)
	}
	pid := strings.TrimSpace(string(out))
	if ppid := procField(pid, 3); ppid != "1" {
		return fmt.Errorf("orphan %s has parent %q, want 1", pid, ppid)
	}
	fmt.Println("orphan's parent is 1")
	w.Close() // cat sees end of file and exits
	deadline := time.Now().Add(10 * time.Second)
	for procField(pid, 2) != "" {
		if time.Now().After(deadline) {
			return fmt.Errorf("orphan %s still there after 10 s, state %s", pid, procField(pid, 2))
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("orphan reaped")
	var zombies []string
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err == nil && procField(e.Name(), 2) == "Z" {
			zombies = append(zombies, e.Name())
		}
	}
	fmt.Printf("zombies %d %s\n", len(zombies), strings.Join(zombies, " "))
	fmt.Println("ready")
	<-sigs
	fmt.Println("got TERM")
	if code := os.Getenv("FDSEND_TERM_EXIT"); code != "" {
		n, _ := strconv.Atoi(code)
		os.Exit(n)
	}
	signal.Reset(syscall.SIGTERM)
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	time.Sleep(10 * time.Second)
	return errors.New("still alive after re-raising SIGTERM")
}

// procField returns field n (1: pid, 2: state, 3: parent, ...) of
// /proc/PID/stat, or "" if there is no such process.
func procField(pid string, n int) string {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	switch {
	case n == 1:
		return pid
	case n >= 2 && n-2 < len(f):
		return f[n-2] // f[0] is the state, field 3
	}
	return ""
}

// childOf returns the PID of a child of parent, from /proc.
func childOf(t *testing.T, parent int) int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && procField(e.Name(), 3) == strconv.Itoa(parent) {
			return pid
		}
	}
	t.Fatalf("process %d has no child", parent)
	return 0
}

// TestActivateAsPID1 runs the launcher as PID 1 of a new PID namespace, as a
// container's entry point: an orphan its child makes is reaped, and no
// zombie is left; SIGTERM to PID 1 reaches the child, and PID 1 exits with
// the child's status (an exit code, or 128+N when the signal kills it).
func TestActivateAsPID1(t *testing.T) {
	fdtest.Check(t)
	fdtest.NeedRoot(t, "it makes a PID namespace")
	unshare := tool(t, "unshare")
	for _, tc := range []struct {
		name   string
		env    []string
		status int
	}{
		{"child exits 7 on SIGTERM", []string{"FDSEND_TERM_EXIT=7"}, 7},
		{"child dies of SIGTERM", nil, 128 + int(syscall.SIGTERM)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := start(t, tc.env, unshare, "--pid", "--fork", "--mount-proc",
				fdsendBin, "activate", "-l", "127.0.0.1:0", role("orphans"), "-E", "FDSEND_TERM_EXIT", "--", os.Args[0])
			l.waitLog(regexpQuote("running as PID 1: the launcher is pid "))
			l.expect("orphan's parent is 1")
			l.expect("orphan reaped")
			l.expect("zombies 0 ")
			l.expect("ready")
			// unshare --fork waits for PID 1 of the namespace, its child.
			init := childOf(t, l.cmd.Process.Pid)
			if err := syscall.Kill(init, syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			l.expect("got TERM")
			if st := l.wait(); st != tc.status {
				t.Fatalf("status %d, want %d (the child's)", st, tc.status)
			}
		})
	}
}

// TestActivateAsPID1PassesInherited: PID 1 that inherited a socket through
// LISTEN_FDS (with LISTEN_PID=1, as a container runtime passes them) hands
// it on, named, to the launcher it runs as PID 2, which passes it to the
// child before its own. systemd-socket-activate is PID 1 here and execs
// fdsend in place at the first connection.
func TestActivateAsPID1PassesInherited(t *testing.T) {
	fdtest.Check(t)
	fdtest.NeedRoot(t, "it makes a PID namespace")
	outer := freePort(t)
	l := start(t, nil, tool(t, "unshare"), "--pid", "--fork", "--mount-proc",
		tool(t, "systemd-socket-activate"), "-l", outer, "--fdname=outer", "--",
		fdsendBin, "activate", "-l", "127.0.0.1:0", "--fdname=inner", "--", python3(t), "-c", pyReport)
	l.waitLog(regexp.MustCompile(`Listening on .* as 3`))
	c, err := net.DialTimeout("tcp", outer, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l.waitLog(regexpQuote("running as PID 1: the launcher is pid "))
	got := map[string]string{}
	for _, s := range l.allStdout() {
		k, v, _ := strings.Cut(s, " ")
		if strings.HasPrefix(k, "LISTEN_") {
			k, v, _ = strings.Cut(s, "=")
		}
		got[k] = v
	}
	if got["fds"] != "3:blocking 4:blocking" || got["LISTEN_FDNAMES"] != "outer:inner" || got["pid-ok"] != "true" {
		t.Errorf("child reports %q", got)
	}
	if st := l.wait(); st != 0 {
		t.Errorf("status %d", st)
	}
}

// pyOnce serves one connection with its uid and exits with status 1, so
// that --restart=on-failure starts it again.
const pyOnce = `
import os, socket, sys
l = socket.socket(fileno=3)
c, _ = l.accept()
c.sendall(b"uid %d\n" % os.getuid())
c.close()
sys.exit(1)
`

// TestActivateUserDropsCapabilities: with --user the launcher, once its
// sockets are open, keeps only the capabilities it needs (exec'd in place,
// same pid), and with them still starts children as the user after a
// restart, and removes its socket file at the end.
func TestActivateUserDropsCapabilities(t *testing.T) {
	fdtest.Check(t)
	fdtest.NeedRoot(t, "it runs the launcher as root and the child as nobody")
	port := lowPorts(t, 1)[0]
	sockPath := filepath.Join(t.TempDir(), "app.sock")
	// Started with capabilities in its inheritable set too (as older
	// container engines give a process), which must not come back after
	// the exec.
	l := start(t, nil, tool(t, "setpriv"), "--inh-caps=+sys_admin,+net_raw,+sys_ptrace", fdsendBin, "activate",
		"--user", "nobody", "--restart=on-failure", "-l", "127.0.0.1:"+strconv.Itoa(port), "-l", sockPath, "--", python3(t), "-c", pyOnce)
	addr := l.addr()
	l.waitLog(regexpQuote("running with the capabilities CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_KILL, CAP_SETGID, CAP_SETUID"))
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", l.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"CapPrm", "CapEff", "CapBnd", "CapInh", "CapAmb"} {
		want := "00000000000000ef"
		if field == "CapInh" || field == "CapAmb" {
			want = "0000000000000000"
		}
		m := regexp.MustCompile(`(?m)^` + field + `:\s+([0-9a-f]+)$`).FindSubmatch(status)
		if m == nil || string(m[1]) != want {
			t.Errorf("launcher %s = %q, want %s (00000000000000ef: CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, KILL, SETGID, SETUID)", field, m, want)
		}
	}
	for range 2 {
		if got := dialLine(t, addr); got != "uid 65534" {
			t.Fatalf("reply %q, want uid 65534 (the child restarted as nobody)", got)
		}
	}
	if _, err := os.Lstat(sockPath); err != nil {
		t.Errorf("socket file: %v", err)
	}
	l.signal(syscall.SIGTERM)
	l.wait()
	if _, err := os.Lstat(sockPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after the launcher exited: %v, want it removed", err)
	}
}
