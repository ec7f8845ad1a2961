//go:build linux

package procfd

import (
	"bufio"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend/internal/fdtest"
	"golang.org/x/sys/unix"
)

// startHold starts the hold role and returns it with its TCP address and
// Unix socket path.
func startHold(t *testing.T, asNobody bool) (*fdtest.Child, string, string) {
	t.Helper()
	dir := t.TempDir()
	if asNobody {
		dir = fdtest.WorldDir(t)
	}
	c := fdtest.StartChild(t, roleEnv, "hold", asNobody, "PROCFD_TEST_DIR="+dir)
	line, err := c.ReadLine(10 * time.Second)
	if err != nil {
		t.Fatalf("hold child: %v", err)
	}
	tcp, path, _ := strings.Cut(strings.TrimSpace(line), " ")
	return c, tcp, path
}

// find returns the descriptor of list whose Local is addr.
func find(t *testing.T, list []FD, addr string) FD {
	t.Helper()
	for _, e := range list {
		if e.Local == addr {
			return e
		}
	}
	t.Fatalf("no descriptor at %s in %+v", addr, list)
	return FD{}
}

// TestTakeListeners lists a process that knows nothing of procfd, takes its
// TCP and Unix listeners by address and accepts a connection on each taken
// copy.
func TestTakeListeners(t *testing.T) {
	fdtest.Check(t)
	c, tcp, path := startHold(t, false)
	p, err := Open(c.Cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	list, err := p.List()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]FD{
		tcp:  {What: "tcp listener " + tcp, Kind: Listener, Network: "tcp4", Local: tcp},
		path: {What: "unix stream listener " + path, Kind: Listener, Network: "unix", Local: path},
	}
	for addr, w := range want {
		e := find(t, list, addr)
		if e.What != w.What || e.Kind != w.Kind || e.Network != w.Network || e.Ino == 0 {
			t.Errorf("%s: got %+v, want %+v", addr, e, w)
		}
		f, err := p.TakeFD(e.Num)
		if err != nil {
			t.Fatal(err)
		}
		flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC == 0 {
			t.Errorf("taken descriptor's flags %#x, %v: want close-on-exec", flags, err)
		}
		l, err := net.FileListener(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		// Our copy accepts from the same queue as the process's: dial until
		// ours gets one.
		got := make(chan error, 1)
		go func() {
			conn, err := l.Accept()
			if err == nil {
				conn.Close()
			}
			got <- err
		}()
		network := "tcp"
		if e.Network == "unix" {
			network = "unix"
		}
		deadline := time.After(10 * time.Second)
	dial:
		for {
			select {
			case err := <-got:
				if err != nil {
					t.Fatal(err)
				}
				break dial
			case <-deadline:
				t.Fatalf("%s: the taken listener accepted nothing in 10s", addr)
			default:
			}
			conn, err := net.DialTimeout(network, addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			bufio.NewReader(conn).ReadString('\n')
			conn.Close()
		}
		l.Close()
	}
}

// TestTakeErrors checks the errors of a descriptor that is not open and of
// arguments that are not valid.
func TestTakeErrors(t *testing.T) {
	fdtest.Check(t)
	c, _, _ := startHold(t, false)
	p, err := Open(c.Cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = p.TakeFD(999)
	if !errors.Is(err, syscall.EBADF) || !strings.Contains(err.Error(), "has no descriptor 999") {
		t.Errorf("TakeFD(999) = %v, want EBADF saying there is no descriptor 999", err)
	}
	if _, err := p.TakeFD(-1); !errors.Is(err, syscall.EBADF) {
		t.Errorf("TakeFD(-1) = %v, want EBADF", err)
	}
	if _, err := Open(0); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("Open(0) = %v, want EINVAL", err)
	}
	p.Close()
	if _, err := p.TakeFD(0); err == nil {
		t.Error("TakeFD on a closed Process succeeded")
	}
}

// TestExited opens a process, which then exits: before and after it is
// reaped (its PID free for another process), every call fails with ESRCH.
func TestExited(t *testing.T) {
	fdtest.Check(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), roleEnv+"=hold", "PROCFD_TEST_DIR="+t.TempDir())
	cmd.Stdin = nil // the role reads EOF at once: it exits by itself; the pipe below says when it is listening
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = inR
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	inR.Close()
	defer func() { inW.Close(); fdtest.Wait(cmd, 10*time.Second) }()
	if _, err := fdtest.ReadLine(bufio.NewReader(out), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	p, err := Open(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.List(); err != nil {
		t.Fatal(err)
	}
	inW.Close() // the child exits
	// Wait for the exit without reaping: the child is a zombie.
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		if _, err := p.TakeFD(0); !errors.Is(err, syscall.ESRCH) || !strings.Contains(err.Error(), "exited") {
			t.Errorf("%s: TakeFD = %v, want ESRCH saying the process has exited", when, err)
		}
		if l, err := p.List(); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s: List = %v, %v; want ESRCH", when, l, err)
		}
		if done, err := p.Wait(0); !done || err != nil {
			t.Errorf("%s: Wait = %v, %v; want true", when, done, err)
		}
	}
	check("zombie")
	if err := fdtest.Wait(cmd, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	check("reaped")
	if err := p.Signal(0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("Signal after exit = %v, want ESRCH", err)
	}
	if _, err := Open(cmd.Process.Pid); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("Open of a reaped PID = %v, want ESRCH", err)
	}
}

// TestNobodyRefused: a process running as nobody cannot take descriptors
// of root's process; the error wraps EPERM and says why.
func TestNobodyRefused(t *testing.T) {
	fdtest.NeedRoot(t, "it runs a child as nobody against root's process")
	fdtest.Check(t)
	c := fdtest.StartChild(t, roleEnv, "take", true, "PROCFD_TEST_PID="+itoa(os.Getpid()))
	line, err := c.ReadLine(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(line, "EPERM ") || !strings.Contains(line, "ptrace rights") || !strings.Contains(line, "uid 0, this one as uid 65534") {
		t.Errorf("nobody taking root's descriptor 0 got: %s", line)
	}
	if line, err := c.ReadLine(10 * time.Second); err != nil || !strings.HasPrefix(line, "list EACCES ") {
		t.Errorf("nobody listing root's descriptors got: %q, %v", line, err)
	}
}
