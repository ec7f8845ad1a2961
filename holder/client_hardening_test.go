//go:build linux

package holder

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdtest"
	"github.com/fdsend/fdsend/internal/holdertest"
	"github.com/fdsend/fdsend/internal/jsonmsg"
	"golang.org/x/sys/unix"
)

func init() {
	childRoles["squatter"] = holdertest.Squat
}

// squatter is a running holdertest.Squat.
type squatter struct {
	t *testing.T
	*fdtest.Child
}

// startSquatter runs holdertest.Squat as user nobody (setpriv) on sock and
// waits until it listens.
func startSquatter(t *testing.T, sock string) *squatter {
	t.Helper()
	s := &squatter{t: t, Child: fdtest.StartChild(t, childEnv, "squatter", true, holdertest.SockEnv+"="+sock)}
	if line, err := s.ReadLine(childTimeout); line != "ready\n" {
		t.Fatalf("squatter: %q, %v", line, err)
	}
	return s
}

// report ends the squatter and returns what it got.
func (s *squatter) report() holdertest.Report {
	s.t.Helper()
	s.In.Close()
	line, err := s.ReadLine(childTimeout)
	if err != nil {
		s.t.Fatalf("squatter report: %q, %v", line, err)
	}
	var r holdertest.Report
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		s.t.Fatalf("squatter report %q: %v", line, err)
	}
	return r
}

// checkUntrusted fails the test unless err is a refusal of the squatter
// that says who it is.
func checkUntrusted(t *testing.T, what string, err error, pid int) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error from a holder socket served by nobody", what)
		return
	}
	if !errors.Is(err, ErrUntrusted) || !errors.Is(err, syscall.EPERM) || !errors.Is(err, os.ErrPermission) {
		t.Errorf("%s: %v; want ErrUntrusted, EPERM", what, err)
	}
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("pid %d uid 65534", pid)) {
		t.Errorf("%s: %q does not say who answered (pid %d uid 65534)", what, msg, pid)
	}
}

// TestClientRefusesAbstractSquatter: an abstract name has no owner, so
// nobody binds a holder's "@name" first and answers like a holder. Root's
// clients refuse it before sending or accepting a descriptor; one told to
// trust nobody's UID talks to it.
func TestClientRefusesAbstractSquatter(t *testing.T) {
	fdtest.Check(t)
	sock := fmt.Sprintf("@fdsend-test-squat-%d", os.Getpid())
	sq := startSquatter(t, sock)
	pid := sq.Cmd.Process.Pid

	c, err := Dial(sock)
	if c != nil {
		c.Close()
	}
	checkUntrusted(t, "Dial", err, pid)

	// A Client made from a connection checks before its first request.
	conn, err := fdsend.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	nc := NewClient(conn)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	checkUntrusted(t, "NewClient Store", nc.Store("web", pw, 0, false), pid)
	pr.Close()
	pw.Close()
	files, err := nc.Fetch([]string{"web"}, false)
	checkUntrusted(t, "NewClient Fetch", err, pid)
	if len(files) != 0 {
		t.Errorf("Fetch returned %d descriptors from the squatter", len(files))
	}
	nc.Close()

	// Trusting nobody on purpose works, and only that.
	tc, err := DialConfig{ServerUIDs: []int{fdtest.Nobody}}.Dial(sock)
	if err != nil {
		t.Fatalf("Dial trusting uid %d: %v", fdtest.Nobody, err)
	}
	if entries, err := tc.List(); err != nil || len(entries) != 1 || entries[0].Name != "bait" {
		t.Errorf("List from a trusted peer: %+v, %v", entries, err)
	}
	tc.Close()

	if r := sq.report(); r.FDs != 0 || r.Requests != 1 {
		t.Errorf("squatter got %d requests and %d descriptors; want only the trusted client's list, no descriptor", r.Requests, r.FDs)
	}
}

// TestClientReconnectRefusesPathSquatter: a holder on a path in a directory
// anyone may write in stops; nobody puts a socket of its own there. The
// root client that was talking to the holder reconnects — and refuses.
func TestClientReconnectRefusesPathSquatter(t *testing.T) {
	fdtest.NeedRoot(t, "it runs a child as nobody")
	fdtest.Check(t)
	sock := filepath.Join(fdtest.WorldDir(t), "holder.sock")
	srv, err := Listen(sock, Config{})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	c, err := Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetTimeout(10 * time.Second)
	if _, err := c.List(); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	select {
	case <-served:
	case <-time.After(childTimeout):
		t.Fatal("Serve did not return after Close")
	}

	sq := startSquatter(t, sock)
	pid := sq.Cmd.Process.Pid
	_, pw := pipe(t)
	checkUntrusted(t, "Store after reconnecting", c.Store("web", pw, 0, false), pid)
	c2, err := Dial(sock)
	if c2 != nil {
		c2.Close()
	}
	checkUntrusted(t, "Dial", err, pid)
	c.Close()
	if r := sq.report(); r.FDs != 0 || r.Requests != 0 {
		t.Errorf("squatter got %d requests and %d descriptors, want none", r.Requests, r.FDs)
	}
}

// backlog is a listening socket nobody accepts on (backlog 0) at a fresh
// path, whose backlog the test fills and drains.
type backlog struct {
	t       *testing.T
	path    string
	lfd     int
	pending []int
}

func newBacklog(t *testing.T) *backlog {
	t.Helper()
	b := &backlog{t: t, path: filepath.Join(t.TempDir(), "busy.sock")}
	lfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	b.lfd = lfd
	t.Cleanup(func() {
		unix.Close(lfd)
		for _, fd := range b.pending {
			unix.Close(fd)
		}
	})
	if err := unix.Bind(lfd, &unix.SockaddrUnix{Name: b.path}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 0); err != nil {
		t.Fatal(err)
	}
	b.fill()
	return b
}

// fill connects until connect fails with EAGAIN: the backlog is full.
func (b *backlog) fill() {
	b.t.Helper()
	for i := 0; ; i++ {
		if i == 100 {
			b.t.Fatal("100 connections and the backlog is not full")
		}
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
		if err != nil {
			b.t.Fatal(err)
		}
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: b.path})
		if err == unix.EAGAIN {
			unix.Close(fd)
			return
		}
		if err != nil {
			unix.Close(fd)
			b.t.Fatalf("filling the backlog: %v", err)
		}
		b.pending = append(b.pending, fd)
	}
}

// drain accepts and closes every pending connection (which hangs up on
// their clients) and closes the test's own.
func (b *backlog) drain() error { return b.drainN(-1) }

// drainN is drain that accepts at most n connections (n < 0: all there
// are). A client waiting in the kernel's queue of connectors enters the
// backlog as soon as a place frees, behind the test's own connections:
// accepting only those leaves the client's for the test to serve.
func (b *backlog) drainN(n int) error {
	for i := 0; n < 0 || i < n; i++ {
		nfd, _, err := unix.Accept4(b.lfd, unix.SOCK_CLOEXEC)
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			return err
		}
		unix.Close(nfd)
	}
	for _, fd := range b.pending {
		unix.Close(fd)
	}
	b.pending = nil
	return nil
}

// serveList accepts and closes the test's own connections in the backlog,
// then takes the next connection (the client's) and answers one request on
// it with an empty list.
func (b *backlog) serveList() error {
	if err := b.drainN(len(b.pending)); err != nil {
		return err
	}
	fds := []unix.PollFd{{Fd: int32(b.lfd), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, int(childTimeout/time.Millisecond)); n != 1 {
		return fmt.Errorf("no connection came: %v", err)
	}
	nfd, _, err := unix.Accept4(b.lfd, unix.SOCK_CLOEXEC)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(nfd), "conn")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return err
	}
	conn := fdsend.NewConn(nc.(*net.UnixConn))
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(childTimeout))
	if _, files, err := conn.ReadMsg(); err != nil || len(files) != 0 {
		jsonmsg.CloseAll(files)
		return fmt.Errorf("reading the request: %v, %d descriptors", err, len(files))
	}
	return conn.WriteMsg([]byte(`{"ok":true}`))
}

// TestDialWaitsForFullBacklog: a holder whose listen backlog is full makes
// connect fail at once with EAGAIN; Dial tries again, reaches it when it
// accepts a little later, and gives up with a clear error if it never does.
func TestDialWaitsForFullBacklog(t *testing.T) {
	fdtest.Check(t)
	b := newBacklog(t)
	if c, err := net.Dial("unix", b.path); !errors.Is(err, syscall.EAGAIN) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("connect to a full backlog: %v, want EAGAIN at once", err)
	}

	drained := make(chan error, 1)
	timer := time.AfterFunc(300*time.Millisecond, func() { drained <- b.drain() })
	defer timer.Stop()
	c, err := Dial(b.path)
	if err != nil {
		t.Fatalf("Dial while the backlog drains after 300ms: %v", err)
	}
	c.Close()
	if err := <-drained; err != nil {
		t.Fatal(err)
	}

	// Full again, and nobody accepts.
	b.fill()
	start := time.Now()
	c, err = Dial(b.path)
	took := time.Since(start)
	if err == nil {
		c.Close()
		t.Fatal("Dial succeeded on a full backlog nobody drains")
	}
	if !errors.Is(err, syscall.EAGAIN) || !strings.Contains(err.Error(), b.path) || !strings.Contains(err.Error(), "backlog") {
		t.Errorf("Dial on a full backlog: %v; want EAGAIN, the socket and why", err)
	}
	if took < ConnectWait || took > ConnectWait+10*time.Second {
		t.Errorf("Dial gave up after %v, want about %v", took, ConnectWait)
	}
}

// TestReconnectWaitsForFullBacklog: the reconnect after an idle hang-up
// retries a full backlog too.
func TestReconnectWaitsForFullBacklog(t *testing.T) {
	fdtest.Check(t)
	b := newBacklog(t)
	if err := b.drain(); err != nil {
		t.Fatal(err)
	}
	c, err := Dial(b.path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetTimeout(childTimeout)
	// The "holder" takes the connection and hangs up on it (as after an
	// idle timeout), and its backlog fills up.
	if err := b.drain(); err != nil {
		t.Fatal(err)
	}
	b.fill()
	served := make(chan error, 1)
	timer := time.AfterFunc(300*time.Millisecond, func() { served <- b.serveList() })
	defer timer.Stop()
	if _, err := c.List(); err != nil {
		t.Fatalf("List after a hang-up while the backlog is full for 300ms: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}
