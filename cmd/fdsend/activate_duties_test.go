//go:build linux

package main

import (
	"net"
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
