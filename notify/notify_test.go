//go:build linux

package notify_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdtest"
	"github.com/fdsend/fdsend/notify"
	"golang.org/x/sys/unix"
)

// manager is a test service manager: a bound datagram socket.
type manager struct {
	t    *testing.T
	conn *net.UnixConn
	addr string
}

// newManager listens on a socket in a temporary directory, or on an
// abstract name when addr starts with '@'.
func newManager(t *testing.T, addr string) *manager {
	t.Helper()
	if addr == "" {
		addr = filepath.Join(t.TempDir(), "notify")
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &manager{t: t, conn: c, addr: addr}
}

// recv returns the next datagram and its files (closed when the test ends),
// failing the test after 5 s.
func (m *manager) recv() (string, []*os.File) {
	m.t.Helper()
	m.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 8192)
	n, files, err := fdsend.Recv(m.conn, buf, 16)
	if err != nil {
		m.t.Fatalf("manager: %v", err)
	}
	m.t.Cleanup(func() {
		for _, f := range files {
			f.Close()
		}
	})
	return string(buf[:n]), files
}

// none fails the test if a datagram arrives within a short while.
func (m *manager) none() {
	m.t.Helper()
	m.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	buf := make([]byte, 8192)
	n, files, err := fdsend.Recv(m.conn, buf, 16)
	for _, f := range files {
		f.Close()
	}
	if err == nil {
		m.t.Fatalf("manager: unexpected datagram %q", buf[:n])
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		m.t.Fatalf("manager: %v", err)
	}
}

func TestNoManager(t *testing.T) {
	fdtest.Check(t)
	t.Setenv(notify.EnvSocket, "")
	os.Unsetenv(notify.EnvSocket)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	calls := map[string]func() (bool, error){
		"Send":        func() (bool, error) { return notify.Send("READY=1") },
		"Ready":       notify.Ready,
		"Reloading":   notify.Reloading,
		"Stopping":    notify.Stopping,
		"Watchdog":    notify.Watchdog,
		"Status":      func() (bool, error) { return notify.Status("x") },
		"Store":       func() (bool, error) { return notify.Store("x", r) },
		"StoreNoPoll": func() (bool, error) { return notify.StoreNoPoll("x", r) },
		"Remove":      func() (bool, error) { return notify.Remove("x") },
		"Barrier":     func() (bool, error) { return notify.Barrier(time.Second) },
		"zero Client": notify.Client{}.Ready,
	}
	for name, call := range calls {
		sent, err := call()
		if sent || err != nil {
			t.Errorf("%s without NOTIFY_SOCKET = (%v, %v), want (false, nil)", name, sent, err)
		}
	}
	// Bad arguments are reported all the same.
	bad := map[string]func() (bool, error){
		"Send empty":     func() (bool, error) { return notify.Send("") },
		"Status newline": func() (bool, error) { return notify.Status("a\nb") },
		"Store no files": func() (bool, error) { return notify.Store("x") },
		"Store bad name": func() (bool, error) { return notify.Store("a:b", r) },
		"Remove empty":   func() (bool, error) { return notify.Remove("") },
	}
	for name, call := range bad {
		if sent, err := call(); sent || !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%s without NOTIFY_SOCKET = (%v, %v), want EINVAL", name, sent, err)
		}
	}
}

func TestMessages(t *testing.T) {
	fdtest.Check(t)
	m := newManager(t, "")
	t.Setenv(notify.EnvSocket, m.addr)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()

	tests := []struct {
		name  string
		call  func() (bool, error)
		want  string
		files int
	}{
		{"Ready", notify.Ready, "READY=1", 0},
		{"Stopping", notify.Stopping, "STOPPING=1", 0},
		{"Watchdog", notify.Watchdog, "WATCHDOG=1", 0},
		{"Status", func() (bool, error) { return notify.Status("serving 3 clients") }, "STATUS=serving 3 clients", 0},
		{"Status empty", func() (bool, error) { return notify.Status("") }, "STATUS=", 0},
		{"Send", func() (bool, error) { return notify.Send("READY=1\nSTATUS=x\nMAINPID=1", r, w) }, "READY=1\nSTATUS=x\nMAINPID=1", 2},
		{"Store", func() (bool, error) { return notify.Store("web", r) }, "FDSTORE=1\nFDNAME=web", 1},
		{"Store two", func() (bool, error) { return notify.Store("a b~", r, w) }, "FDSTORE=1\nFDNAME=a b~", 2},
		{"StoreNoPoll", func() (bool, error) { return notify.StoreNoPoll("conn-1", w) }, "FDSTORE=1\nFDNAME=conn-1\nFDPOLL=0", 1},
		{"Remove", func() (bool, error) { return notify.Remove("web") }, "FDSTOREREMOVE=1\nFDNAME=web", 0},
	}
	for _, tt := range tests {
		sent, err := tt.call()
		if !sent || err != nil {
			t.Errorf("%s = (%v, %v), want (true, nil)", tt.name, sent, err)
			continue
		}
		got, files := m.recv()
		if got != tt.want || len(files) != tt.files {
			t.Errorf("%s sent %q with %d files, want %q with %d", tt.name, got, len(files), tt.want, tt.files)
		}
	}

	// The stored descriptor is the caller's pipe: what is written to w can
	// be read through the descriptor the manager received.
	if _, err := notify.Store("pipe", r); err != nil {
		t.Fatal(err)
	}
	_, files := m.recv()
	if _, err := w.Write([]byte("through")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := files[0].Read(buf)
	if err != nil || string(buf[:n]) != "through" {
		t.Fatalf("reading the stored pipe: %q, %v", buf[:n], err)
	}
}

func TestReloadingMonotonic(t *testing.T) {
	fdtest.Check(t)
	m := newManager(t, "")
	t.Setenv(notify.EnvSocket, m.addr)
	before := monotonicUsec(t)
	if sent, err := notify.Reloading(); !sent || err != nil {
		t.Fatalf("Reloading = (%v, %v)", sent, err)
	}
	after := monotonicUsec(t)
	got, _ := m.recv()
	match := regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=([0-9]+)$`).FindStringSubmatch(got)
	if match == nil {
		t.Fatalf("Reloading sent %q", got)
	}
	usec, err := strconv.ParseUint(match[1], 10, 64)
	if err != nil || usec < before || usec > after {
		t.Fatalf("MONOTONIC_USEC=%s, want between %d and %d (CLOCK_MONOTONIC)", match[1], before, after)
	}
}

func monotonicUsec(t *testing.T) uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return uint64(ts.Sec)*1e6 + uint64(ts.Nsec)/1e3
}

func TestAbstract(t *testing.T) {
	fdtest.Check(t)
	addr := fmt.Sprintf("@fdsend-notify-test-%d", os.Getpid())
	m := newManager(t, addr)
	t.Setenv(notify.EnvSocket, addr)
	if sent, err := notify.Ready(); !sent || err != nil {
		t.Fatalf("Ready to %s = (%v, %v)", addr, sent, err)
	}
	if got, _ := m.recv(); got != "READY=1" {
		t.Fatalf("got %q", got)
	}
}

func TestAddrErrors(t *testing.T) {
	fdtest.Check(t)
	dir := t.TempDir()
	tests := []struct {
		addr string
		want error
	}{
		{"vsock:2:1234", errors.ErrUnsupported},
		{"vsock-stream:2:1234", errors.ErrUnsupported},
		{"relative/path", syscall.EINVAL},
		{"notify", syscall.EINVAL},
		{"@", syscall.EINVAL},
		{"/" + strings.Repeat("x", 200), syscall.EINVAL},
		{"@" + strings.Repeat("x", 200), syscall.EINVAL},
		{filepath.Join(dir, "missing"), syscall.ENOENT},
		{dir, syscall.ECONNREFUSED}, // a directory, not a socket
	}
	for _, tt := range tests {
		t.Setenv(notify.EnvSocket, tt.addr)
		sent, err := notify.Ready()
		if sent || !errors.Is(err, tt.want) {
			t.Errorf("Ready with NOTIFY_SOCKET=%.30q = (%v, %v), want an error wrapping %v", tt.addr, sent, err, tt.want)
		}
		if err != nil && !strings.Contains(err.Error(), "notify") {
			t.Errorf("error %q does not say where it comes from", err)
		}
	}
}

func TestArgumentErrors(t *testing.T) {
	fdtest.Check(t)
	m := newManager(t, "")
	t.Setenv(notify.EnvSocket, m.addr)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w.Close()
	closed, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()

	tests := []struct {
		name string
		call func() (bool, error)
		want error
	}{
		{"Send empty", func() (bool, error) { return notify.Send("") }, syscall.EINVAL},
		{"Status newline", func() (bool, error) { return notify.Status("a\nREADY=1") }, syscall.EINVAL},
		{"Status NUL", func() (bool, error) { return notify.Status("a\x00b") }, syscall.EINVAL},
		{"Store no files", func() (bool, error) { return notify.Store("x") }, syscall.EINVAL},
		{"Store empty name", func() (bool, error) { return notify.Store("", r) }, syscall.EINVAL},
		{"Store colon", func() (bool, error) { return notify.Store("a:b", r) }, syscall.EINVAL},
		{"Store newline", func() (bool, error) { return notify.Store("a\nREADY=1", r) }, syscall.EINVAL},
		{"Store DEL", func() (bool, error) { return notify.Store("a\x7f", r) }, syscall.EINVAL},
		{"Store UTF-8", func() (bool, error) { return notify.Store("café", r) }, syscall.EINVAL},
		{"Store 256", func() (bool, error) { return notify.Store(strings.Repeat("n", 256), r) }, syscall.EINVAL},
		{"StoreNoPoll colon", func() (bool, error) { return notify.StoreNoPoll(":", r) }, syscall.EINVAL},
		{"Remove empty", func() (bool, error) { return notify.Remove("") }, syscall.EINVAL},
		{"Store closed file", func() (bool, error) { return notify.Store("x", closed) }, os.ErrClosed},
		{"Store bad fd", func() (bool, error) { return notify.Store("x", -1) }, syscall.EBADF},
		{"Store not a descriptor", func() (bool, error) { return notify.Store("x", "fd") }, nil},
		{"Store too many", func() (bool, error) { return notify.Store("x", manyOf(r, 254)...) }, syscall.EINVAL},
	}
	for _, tt := range tests {
		sent, err := tt.call()
		if sent || err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("%s = (%v, %v), want an error wrapping %v", tt.name, sent, err, tt.want)
		}
	}
	m.none() // nothing reached the manager

	// The longest valid name, and every printable character but ':'.
	var all []byte
	for c := byte(' '); c <= '~'; c++ {
		if c != ':' {
			all = append(all, c)
		}
	}
	for _, name := range []string{strings.Repeat("n", 255), string(all), "x"} {
		if err := notify.CheckName(name); err != nil {
			t.Errorf("CheckName(%q) = %v", name, err)
		}
		if sent, err := notify.Store(name, r); !sent || err != nil {
			t.Errorf("Store(%q) = (%v, %v)", name, sent, err)
			continue
		}
		if got, files := m.recv(); got != "FDSTORE=1\nFDNAME="+name || len(files) != 1 {
			t.Errorf("Store(%q) sent %q with %d files", name, got, len(files))
		}
	}
}

func manyOf(f any, n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = f
	}
	return out
}

func TestTakeEnv(t *testing.T) {
	fdtest.Check(t)
	m := newManager(t, "")
	t.Setenv(notify.EnvSocket, m.addr)
	c := notify.TakeEnv()
	if _, ok := os.LookupEnv(notify.EnvSocket); ok {
		t.Fatalf("TakeEnv left %s set", notify.EnvSocket)
	}
	if c.Addr != m.addr {
		t.Fatalf("TakeEnv = %+v, want Addr %q", c, m.addr)
	}
	if sent, err := notify.Ready(); sent || err != nil {
		t.Fatalf("package Ready after TakeEnv = (%v, %v), want (false, nil)", sent, err)
	}
	if sent, err := c.Status("taken"); !sent || err != nil {
		t.Fatalf("Client.Status = (%v, %v)", sent, err)
	}
	if got, _ := m.recv(); got != "STATUS=taken" {
		t.Fatalf("got %q", got)
	}
	// A child started now does not see the variable.
	out, err := exec.Command("sh", "-c", "echo ${NOTIFY_SOCKET-unset}").Output()
	if err != nil || strings.TrimSpace(string(out)) != "unset" {
		t.Fatalf("child sees NOTIFY_SOCKET=%q (%v)", out, err)
	}
}

func TestBarrier(t *testing.T) {
	fdtest.Check(t)
	m := newManager(t, "")
	c := notify.Client{Addr: m.addr}

	// A manager that closes the descriptor releases the barrier.
	done := make(chan error, 1)
	go func() {
		m.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64)
		n, files, err := fdsend.Recv(m.conn, buf, 4)
		for _, f := range files {
			f.Close()
		}
		if err == nil && (string(buf[:n]) != "BARRIER=1" || len(files) != 1) {
			err = fmt.Errorf("barrier message %q with %d files", buf[:n], len(files))
		}
		done <- err
	}()
	start := time.Now()
	if sent, err := c.Barrier(5 * time.Second); !sent || err != nil {
		t.Fatalf("Barrier = (%v, %v)", sent, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Barrier took %v", d)
	}

	// A manager that keeps it: the barrier times out.
	start = time.Now()
	sent, err := c.Barrier(200 * time.Millisecond)
	if sent || !errors.Is(err, syscall.ETIMEDOUT) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Barrier with a silent manager = (%v, %v), want ETIMEDOUT", sent, err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 3*time.Second {
		t.Fatalf("Barrier timed out after %v", d)
	}
	m.recv() // the held pipe end, closed at cleanup

	// The Client's Timeout applies when Barrier has none of its own.
	c.Timeout = 100 * time.Millisecond
	if sent, err := c.Barrier(0); sent || !errors.Is(err, syscall.ETIMEDOUT) {
		t.Fatalf("Barrier(0) with Timeout = (%v, %v)", sent, err)
	}
	m.recv()
}

// TestTimeout fills a manager's queue: a Client with a Timeout gives up
// instead of blocking.
func TestTimeout(t *testing.T) {
	fdtest.Check(t)
	m := newManager(t, "")
	c := notify.Client{Addr: m.addr, Timeout: 50 * time.Millisecond}
	var err error
	for i := 0; i < 5000 && err == nil; i++ {
		_, err = c.Status(strings.Repeat("s", 1000))
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("sending to a full queue: %v, want a deadline error", err)
	}
}

// TestSystemdNotify compares what the real systemd-notify sends with what
// this package sends: READY=1 and STATUS= lines, joined by newlines without a
// trailing one, and a separate BARRIER=1 carrying the write end of a pipe.
func TestSystemdNotify(t *testing.T) {
	fdtest.Check(t)
	for _, addr := range []string{"", fmt.Sprintf("@fdsend-notify-sd-%d", os.Getpid())} {
		m := newManager(t, addr)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "systemd-notify", "--ready", "--status=x y")
		cmd.Env = append(os.Environ(), notify.EnvSocket+"="+m.addr)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		theirs, files := m.recv()
		if len(files) != 0 {
			t.Errorf("systemd-notify sent %d files with %q", len(files), theirs)
		}
		barrier, bfiles := m.recv()
		theirBarrier := describe(t, bfiles)
		for _, f := range bfiles {
			f.Close()
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("systemd-notify: %v: %s", err, stderr.Bytes())
		}

		c := notify.Client{Addr: m.addr}
		var ours []string
		for _, call := range []func() (bool, error){c.Ready, func() (bool, error) { return c.Status("x y") }} {
			if _, err := call(); err != nil {
				t.Fatal(err)
			}
			got, _ := m.recv()
			ours = append(ours, got)
		}
		if want := strings.Join(ours, "\n"); theirs != want {
			t.Errorf("%s: systemd-notify sent %q, our Ready and Status %q", m.addr, theirs, want)
		}
		if sent, err := c.Send(theirs); !sent || err != nil {
			t.Fatal(err)
		}
		if got, _ := m.recv(); got != theirs {
			t.Errorf("Send(%q) delivered %q", theirs, got)
		}

		done := make(chan string, 1)
		go func() {
			got, files := m.recv()
			d := describe(t, files)
			for _, f := range files {
				f.Close()
			}
			done <- got + " " + d
		}()
		if _, err := c.Barrier(5 * time.Second); err != nil {
			t.Fatal(err)
		}
		if ourBarrier := <-done; ourBarrier != barrier+" "+theirBarrier {
			t.Errorf("systemd-notify's barrier: %q %s; ours: %s", barrier, theirBarrier, ourBarrier)
		}
		if theirBarrier != "[fifo O_WRONLY]" {
			t.Errorf("systemd-notify's barrier carries %s", theirBarrier)
		}
	}
}

// describe gives the kind and access mode of each file.
func describe(t *testing.T, files []*os.File) string {
	var parts []string
	for _, f := range files {
		fi, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		kind := "other"
		if fi.Mode()&os.ModeNamedPipe != 0 {
			kind = "fifo"
		}
		rc, _ := f.SyscallConn()
		var fl int
		rc.Control(func(fd uintptr) { fl, _ = unix.FcntlInt(fd, unix.F_GETFL, 0) })
		mode := map[int]string{unix.O_RDONLY: "O_RDONLY", unix.O_WRONLY: "O_WRONLY", unix.O_RDWR: "O_RDWR"}[fl&unix.O_ACCMODE]
		parts = append(parts, kind+" "+mode)
	}
	return fmt.Sprint(parts)
}

// TestPythonManager receives our notifications on a socket bound by Python,
// an independent implementation of the address rules: an abstract name
// without a trailing NUL, and SCM_RIGHTS parsed by the socket module.
func TestPythonManager(t *testing.T) {
	fdtest.Check(t)
	dir := t.TempDir()
	script := `
import socket, sys, os, array
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1].replace("@", "\0", 1) if sys.argv[1].startswith("@") else sys.argv[1])
print("bound", flush=True)
s.settimeout(10)
msg, fds, flags, addr = socket.recv_fds(s, 4096, 4)
print(repr(msg.decode()), len(fds), os.read(fds[0], 64).decode() if fds else "", flush=True)
`
	for _, addr := range []string{filepath.Join(dir, "py.sock"), fmt.Sprintf("@fdsend-notify-py-%d", os.Getpid())} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "python3", "-c", script, addr)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waited := false
		defer func() {
			if !waited {
				cmd.Process.Kill()
				cmd.Wait()
			}
		}()
		out := bufio.NewReader(stdout)
		if line, err := out.ReadString('\n'); err != nil || line != "bound\n" {
			t.Fatalf("python: %q %v", line, err)
		}
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("via python"))
		w.Close()
		sent, err := notify.Client{Addr: addr}.Store("py", r)
		r.Close()
		if !sent || err != nil {
			t.Fatalf("Store to python at %s = (%v, %v)", addr, sent, err)
		}
		rest, _ := readAll(out)
		waited = true
		if err := cmd.Wait(); err != nil {
			t.Fatalf("python: %v", err)
		}
		if want := "'FDSTORE=1\\nFDNAME=py' 1 via python\n"; rest != want {
			t.Errorf("python at %s received %q, want %q", addr, rest, want)
		}
	}
}

func readAll(r interface{ Read([]byte) (int, error) }) (string, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r)
	return b.String(), err
}
