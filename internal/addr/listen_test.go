//go:build linux

package addr

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend/internal/fdtest"
	"golang.org/x/sys/unix"
)

func mustListen(t *testing.T, s string, typ int) *Listener {
	t.Helper()
	a, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Listen(a, typ)
	if err != nil {
		t.Fatalf("Listen(%q): %v", s, err)
	}
	return l
}

// checkFlags asserts the socket is close-on-exec and in blocking mode.
func checkFlags(t *testing.T, f *os.File) {
	t.Helper()
	fd := int(f.Fd())
	fdfl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fdfl&unix.FD_CLOEXEC == 0 {
		t.Errorf("%s: not close-on-exec", f.Name())
	}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fl&unix.O_NONBLOCK != 0 {
		t.Errorf("%s: O_NONBLOCK is set", f.Name())
	}
}

// acceptOne accepts one connection on a blocking listener with a timeout.
func acceptOne(t *testing.T, l *Listener) {
	t.Helper()
	fd := int(l.File.Fd())
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 5000)
	if err != nil || n != 1 {
		t.Fatalf("poll on %s: n=%d err=%v", l.Bound, n, err)
	}
	nfd, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatalf("accept on %s: %v", l.Bound, err)
	}
	unix.Close(nfd)
}

func TestListenTCP(t *testing.T) {
	fdtest.Check(t)
	l := mustListen(t, "127.0.0.1:0", syscall.SOCK_STREAM)
	defer l.Close()
	checkFlags(t, l.File)
	if !strings.HasPrefix(l.Bound, "127.0.0.1:") || l.Bound == "127.0.0.1:0" {
		t.Fatalf("Bound = %q", l.Bound)
	}
	c, err := net.DialTimeout("tcp", l.Bound, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	acceptOne(t, l)
	if v, _ := unix.GetsockoptInt(int(l.File.Fd()), unix.SOL_SOCKET, unix.SO_REUSEADDR); v == 0 {
		t.Error("SO_REUSEADDR not set")
	}
}

func TestListenAnyIsDualStack(t *testing.T) {
	fdtest.Check(t)
	l := mustListen(t, "0", syscall.SOCK_STREAM)
	defer l.Close()
	checkFlags(t, l.File)
	if !strings.HasPrefix(l.Bound, "[::]:") {
		t.Fatalf("Bound = %q, want [::]:PORT", l.Bound)
	}
	port := l.Bound[len("[::]:"):]
	for _, host := range []string{"127.0.0.1", "::1"} {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), 5*time.Second)
		if err != nil {
			t.Fatalf("dial %s: %v", host, err)
		}
		acceptOne(t, l)
		c.Close()
	}
}

func TestListenUDPAndV6(t *testing.T) {
	fdtest.Check(t)
	l := mustListen(t, "[::1]:0", syscall.SOCK_DGRAM)
	defer l.Close()
	checkFlags(t, l.File)
	c, err := net.Dial("udp", l.Bound)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	n, _, err := unix.Recvfrom(int(l.File.Fd()), buf, 0)
	if err != nil || string(buf[:n]) != "hi" {
		t.Fatalf("recvfrom: %q %v", buf[:n], err)
	}
	if typ, _ := unix.GetsockoptInt(int(l.File.Fd()), unix.SOL_SOCKET, unix.SO_TYPE); typ != unix.SOCK_DGRAM {
		t.Errorf("SO_TYPE = %d", typ)
	}
}

func TestListenPath(t *testing.T) {
	fdtest.Check(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "dir", "s.sock")
	l := mustListen(t, path, syscall.SOCK_SEQPACKET)
	checkFlags(t, l.File)
	if l.Bound != path {
		t.Errorf("Bound = %q", l.Bound)
	}
	if typ, _ := unix.GetsockoptInt(int(l.File.Fd()), unix.SOL_SOCKET, unix.SO_TYPE); typ != unix.SOCK_SEQPACKET {
		t.Errorf("SO_TYPE = %d", typ)
	}
	c, err := net.Dial("unixpacket", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	acceptOne(t, l)

	// In use: a second Listen on the same path is refused and leaves it.
	a, _ := Parse(path)
	if l2, err := Listen(a, syscall.SOCK_SEQPACKET); !errors.Is(err, syscall.EADDRINUSE) {
		if l2 != nil {
			l2.Close()
		}
		t.Fatalf("second Listen on a live socket: %v, want EADDRINUSE", err)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("live socket removed: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Close left the socket file: %v", err)
	}

	// Stale: a socket file no one listens on is replaced.
	fd, _ := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	l = mustListen(t, path, syscall.SOCK_STREAM)
	c, err = net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	acceptOne(t, l)

	// Replaced behind our back: Close leaves the newcomer alone.
	os.Remove(path)
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("Close removed a file that was not its socket: %v", err)
	}

	// Not a socket: refused, file kept.
	if l2, err := Listen(a, syscall.SOCK_STREAM); !errors.Is(err, syscall.EEXIST) {
		if l2 != nil {
			l2.Close()
		}
		t.Fatalf("Listen over a regular file: %v, want EEXIST", err)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Fatal(err)
	}
}

func TestListenAbstract(t *testing.T) {
	fdtest.Check(t)
	name := "@fdsend-addr-test-" + time.Now().Format("150405.000000000")
	l := mustListen(t, name, syscall.SOCK_STREAM)
	defer l.Close()
	if l.Bound != name {
		t.Errorf("Bound = %q, want %q", l.Bound, name)
	}
	c, err := net.Dial("unix", name)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	acceptOne(t, l)
	a, _ := Parse(name)
	if l2, err := Listen(a, syscall.SOCK_STREAM); !errors.Is(err, syscall.EADDRINUSE) {
		if l2 != nil {
			l2.Close()
		}
		t.Fatalf("second Listen on %s: %v, want EADDRINUSE", name, err)
	}
}

func TestListenErrors(t *testing.T) {
	fdtest.Check(t)
	a, _ := Parse("127.0.0.1:0")
	if _, err := Listen(a, 99); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("bad type: %v", err)
	}
	l := mustListen(t, "127.0.0.1:0", syscall.SOCK_STREAM)
	defer l.Close()
	b, _ := Parse(l.Bound)
	l2, err := Listen(b, syscall.SOCK_STREAM)
	if !errors.Is(err, syscall.EADDRINUSE) {
		if l2 != nil {
			l2.Close()
		}
		t.Fatalf("Listen on a busy port: %v", err)
	}
	if !strings.Contains(err.Error(), l.Bound) {
		t.Errorf("error %q does not name the address", err)
	}
	c, _ := Parse("192.0.2.1:80") // TEST-NET-1, not ours
	if l3, err := Listen(c, syscall.SOCK_STREAM); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		if l3 != nil {
			l3.Close()
		}
		t.Errorf("Listen on a foreign address: %v", err)
	}
}

// TestListenPathFullBacklog: a socket at the path whose listen backlog is
// full (another user can keep it so) is in use, and Listen says so at once;
// it used to probe it with a blocking connect(2) and hang for ever.
func TestListenPathFullBacklog(t *testing.T) {
	fdtest.Check(t)
	path := filepath.Join(t.TempDir(), "busy.sock")
	lfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(lfd)
	if err := unix.Bind(lfd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 0); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
		if err == unix.EAGAIN {
			break
		}
		if err != nil || i > 64 {
			t.Fatalf("filling the backlog: connect %d: %v", i, err)
		}
	}
	a, err := Parse(path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		l, err := Listen(a, syscall.SOCK_STREAM)
		if l != nil {
			l.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("Listen over a busy socket: %v, want EADDRINUSE", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Listen hangs on a socket whose backlog is full")
	}
}

// TestFormatSockaddr checks where Bound's formatting differs from
// fdkind.FormatAddr: zones by name, unnamed Unix sockets, other families.
func TestFormatSockaddr(t *testing.T) {
	lo, err := net.InterfaceByIndex(1)
	if err != nil {
		t.Fatal(err)
	}
	ll := [16]byte{0: 0xfe, 1: 0x80, 15: 1}
	for _, tc := range []struct {
		sa   unix.Sockaddr
		want string
	}{
		{&unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: 80}, "127.0.0.1:80"},
		{&unix.SockaddrInet6{Addr: ll, Port: 53, ZoneId: 1}, "[fe80::1%" + lo.Name + "]:53"},
		{&unix.SockaddrInet6{Addr: ll, Port: 53, ZoneId: 1 << 30}, "[fe80::1%1073741824]:53"},
		{&unix.SockaddrUnix{Name: "/run/x.sock"}, "/run/x.sock"},
		{&unix.SockaddrUnix{Name: "@app"}, "@app"},
		{&unix.SockaddrUnix{Name: "@"}, "@"},
		{&unix.SockaddrUnix{}, "@"},
		{&unix.SockaddrNetlink{}, "*unix.SockaddrNetlink"},
	} {
		if got := formatSockaddr(tc.sa); got != tc.want {
			t.Errorf("formatSockaddr(%#v) = %q, want %q", tc.sa, got, tc.want)
		}
	}
}
