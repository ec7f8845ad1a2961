//go:build linux

package fdsend_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdtest"
	"golang.org/x/sys/unix"
)

// The original fdsend README: twelve /dev/null files with "here you go!",
// received with room for 128 bytes and 32 files.
func TestOriginalReadmeExample(t *testing.T) {
	fdtest.Check(t)
	a, b := pair(t, syscall.SOCK_STREAM)
	files := devNulls(t, 12)
	n, err := fdsend.Send(a, []byte("here you go!"), files...)
	if err != nil || n != 12 {
		t.Fatalf("Send = %d, %v", n, err)
	}
	buf := make([]byte, 128)
	n, got, err := fdsend.Recv(b, buf, 32)
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	defer closeAll(got)
	if string(buf[:n]) != "here you go!" || len(got) != 12 {
		t.Fatalf("got %q and %d files", buf[:n], len(got))
	}
	null, err := os.Stat(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range got {
		st, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(st, null) {
			t.Errorf("file %d is not /dev/null", i)
		}
	}
}

func init() {
	children["original"] = func() error {
		c, err := net.Dial("unix", os.Getenv("FDSEND_TEST_PATH"))
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, 16)
		n, files, err := fdsend.Recv(c, buf, 4)
		if err != nil {
			return err
		}
		if string(buf[:n]) != "fds" || len(files) != 1 {
			return fmt.Errorf("got %q with %d files", buf[:n], len(files))
		}
		data, err := io.ReadAll(files[0])
		files[0].Close()
		if err != nil {
			return err
		}
		os.Stdout.Write(data)
		return nil
	}
}

// The original's own test: a parent listening on a path sends "fds" and a
// temp file holding "TESTDATA\n" to a child process, which reads the file
// through the descriptor it received.
func TestOriginalParentChild(t *testing.T) {
	fdtest.Check(t)
	path := filepath.Join(t.TempDir(), "sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f := tempFile(t, "TESTDATA\n")
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_, err = fdsend.Send(c, []byte("fds"), f)
		done <- err
	}()
	out := runChild(t, "original", func(c *exec.Cmd) { c.Env = append(c.Env, "FDSEND_TEST_PATH="+path) })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if out != "TESTDATA\n" {
		t.Fatalf("child read %q", out)
	}
}

// embedsConn is a syscall.Conn whose embedded conn is nil: its method
// panics.
type embedsConn struct{ syscall.Conn }

// panicFd is a value whose Fd method panics.
type panicFd struct{}

func (panicFd) Fd() uintptr { panic("no descriptor here") }

// fdHolder is a value with only an Fd method.
type fdHolder struct{ fd uintptr }

func (h fdHolder) Fd() uintptr { return h.fd }

// connWrapper is a syscall.Conn that is no other known type.
type connWrapper struct{ c syscall.Conn }

func (w connWrapper) SyscallConn() (syscall.RawConn, error) { return w.c.SyscallConn() }

// rawFD returns the descriptor number of a socket, for tests of the integer
// forms; the socket stays owned by the test.
func rawFD(t *testing.T, c syscall.Conn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	rc.Control(func(u uintptr) { fd = int(u) })
	return fd
}

func TestAcceptedTypes(t *testing.T) {
	fdtest.Check(t)
	a, b := pair(t, syscall.SOCK_STREAM)
	afd := rawFD(t, a)

	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	ul, err := net.Listen("unix", filepath.Join(t.TempDir(), "l"))
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	x, y := pair(t, syscall.SOCK_DGRAM)
	f := tempFile(t, "x")
	nul := devNulls(t, 1)[0].(*os.File)
	nulFD := rawFD(t, nul)

	files := []any{f, tcp, udp, ul, x, connWrapper{y}, fdHolder{uintptr(nulFD)},
		nulFD, int32(nulFD), int64(nulFD), uintptr(nulFD)}
	want := make([]fileID, len(files))
	for i, v := range files {
		switch v := v.(type) {
		case fdHolder:
			want[i] = idOfFD(t, int(v.fd))
		case int32, int64, uintptr:
			want[i] = idOfFD(t, nulFD)
		default:
			want[i] = idOf(t, v)
		}
	}

	socks := map[string]any{
		"*net.UnixConn": a,
		"syscall.Conn":  connWrapper{a},
		"int":           afd,
		"int32":         int32(afd),
		"int64":         int64(afd),
		"uintptr":       uintptr(afd),
		"Fd()":          fdHolder{uintptr(afd)},
	}
	af, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(afd), os.O_RDWR, 0)
	if err == nil {
		// An *os.File for the same socket (opening /proc/self/fd of a socket
		// fails with ENXIO, so build it from a duplicate instead).
		af.Close()
	}
	dup, err := unix.FcntlInt(uintptr(afd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	sockFile := os.NewFile(uintptr(dup), "dup")
	defer sockFile.Close()
	socks["*os.File"] = sockFile

	for name, sock := range socks {
		t.Run(name, func(t *testing.T) {
			fdtest.Check(t)
			if _, err := fdsend.Send(sock, []byte("m"), files...); err != nil {
				t.Fatalf("Send: %v", err)
			}
			buf := make([]byte, 4)
			n, got, err := fdsend.Recv(connWrapper{b}, buf, len(files))
			if err != nil {
				t.Fatalf("Recv: %v", err)
			}
			defer closeAll(got)
			if string(buf[:n]) != "m" || len(got) != len(files) {
				t.Fatalf("got %q and %d files", buf[:n], len(got))
			}
			for i, g := range got {
				if id := idOf(t, g); id != want[i] {
					t.Errorf("file %d (%T): received %v, want %v", i, files[i], id, want[i])
				}
			}
		})
	}
}

// nothingQueued asserts that a receiver has no message waiting.
func nothingQueued(t *testing.T, b *net.UnixConn) {
	t.Helper()
	_, _, _, err := fdsend.RecvMsg(b, make([]byte, 8), make([]int, 4), unix.MSG_DONTWAIT)
	if !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("something was sent: RecvMsg err = %v", err)
	}
}

func TestBadArguments(t *testing.T) {
	fdtest.Check(t)
	a, b := pair(t, syscall.SOCK_STREAM)
	closed, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	closedConn, c2 := pair(t, syscall.SOCK_STREAM)
	closedConn.Close()
	_ = c2
	var nilFile *os.File
	var nilConn *net.UnixConn
	var nilTCP *net.TCPListener
	good := devNulls(t, 1)[0]

	cases := []struct {
		name    string
		sock    any
		files   []any
		arg     string
		typ     string
		wantErr error
	}{
		{"nil file", a, []any{good, good, good, nil}, "files[3]", "<nil>", nil},
		{"typed nil file", a, []any{nilFile}, "files[0]", "*os.File", nil},
		{"typed nil listener", a, []any{good, nilTCP}, "files[1]", "*net.TCPListener", nil},
		{"string", a, []any{"3"}, "files[0]", "string", nil},
		{"struct", a, []any{good, struct{}{}}, "files[1]", "struct {}", nil},
		{"float", a, []any{1.0}, "files[0]", "float64", nil},
		{"closed file", a, []any{good, closed}, "files[1]", "*os.File", os.ErrClosed},
		{"closed conn", a, []any{closedConn}, "files[0]", "*net.UnixConn", net.ErrClosed},
		{"negative int", a, []any{-1}, "files[0]", "int", syscall.EBADF},
		{"negative int64 after conn", a, []any{good, int64(-5)}, "files[1]", "int64", syscall.EBADF},
		{"huge int64", a, []any{int64(1) << 40}, "files[0]", "int64", syscall.EBADF},
		{"huge uintptr", a, []any{^uintptr(0)}, "files[0]", "uintptr", syscall.EBADF},
		{"zero os.File", a, []any{good, &os.File{}}, "files[1]", "*os.File", os.ErrInvalid},
		{"nil embedded conn", a, []any{embedsConn{}}, "files[0]", "fdsend_test.embedsConn", os.ErrInvalid},
		{"panicking Fd", a, []any{panicFd{}}, "files[0]", "fdsend_test.panicFd", os.ErrInvalid},
		{"zero os.File sock", &os.File{}, []any{good}, "sock", "*os.File", os.ErrInvalid},
		{"closed sock", closedConn, []any{good}, "sock", "*net.UnixConn", net.ErrClosed},
		{"closed file sock", closed, nil, "sock", "*os.File", os.ErrClosed},
		{"nil sock", nil, []any{good}, "sock", "<nil>", nil},
		{"typed nil sock", nilConn, []any{good}, "sock", "*net.UnixConn", nil},
		{"string sock", "/tmp/x", nil, "sock", "string", nil},
		{"negative sock", -3, []any{good}, "sock", "int", syscall.EBADF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fdsend.Send(tc.sock, []byte("x"), tc.files...)
			var ae *fdsend.ArgError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v (%T), want *ArgError", err, err)
			}
			if ae.Arg != tc.arg || ae.Type != tc.typ {
				t.Errorf("ArgError names %s (%s), want %s (%s)", ae.Arg, ae.Type, tc.arg, tc.typ)
			}
			if !strings.Contains(err.Error(), tc.arg) || !strings.Contains(err.Error(), tc.typ) {
				t.Errorf("message %q does not name %s and %s", err, tc.arg, tc.typ)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want it to wrap %v", err, tc.wantErr)
			}
			nothingQueued(t, b)
		})
	}
	// Receiving on bad sockets.
	for _, sock := range []any{nil, nilConn, "x", -1, closedConn, &os.File{}, embedsConn{}} {
		_, _, err := fdsend.Recv(sock, make([]byte, 4), 1)
		if err == nil {
			t.Errorf("Recv(%T) succeeded", sock)
		}
	}
	var ae *fdsend.ArgError
	if _, _, err := fdsend.Recv(closedConn, make([]byte, 4), 1); !errors.As(err, &ae) || ae.Arg != "sock" || !errors.Is(err, net.ErrClosed) {
		t.Errorf("Recv on a closed conn: %v", err)
	}
	if _, err := fdsend.PeerCred(&os.File{}); !errors.Is(err, os.ErrInvalid) {
		t.Errorf("PeerCred(zero os.File): %v", err)
	}
	if _, _, err := fdsend.Recv(b, nil, -1); err == nil || !strings.Contains(err.Error(), "maxFiles") {
		t.Errorf("Recv with maxFiles -1: %v", err)
	}
}

// Kernel errors keep their errno and name the system call.
func TestENOTSOCK(t *testing.T) {
	fdtest.Check(t)
	null := devNulls(t, 2)
	_, err := fdsend.Send(null[0], []byte("x"), null[1])
	if !errors.Is(err, syscall.ENOTSOCK) || !strings.Contains(err.Error(), "sendmsg") {
		t.Errorf("Send on /dev/null: %v", err)
	}
	_, _, err = fdsend.Recv(null[0], make([]byte, 4), 2)
	if !errors.Is(err, syscall.ENOTSOCK) || !strings.Contains(err.Error(), "recvmsg") {
		t.Errorf("Recv on /dev/null: %v", err)
	}
	nfd := rawFD(t, null[0].(*os.File))
	_, _, _, err = fdsend.RecvMsg(nfd, make([]byte, 4), make([]int, 2), 0)
	if !errors.Is(err, syscall.ENOTSOCK) || !strings.Contains(err.Error(), "recvmsg") {
		t.Errorf("RecvMsg on /dev/null as int: %v", err)
	}
}

// Another program may send several SCM_RIGHTS headers in one message.
func TestSeveralRightsHeaders(t *testing.T) {
	fdtest.Check(t)
	a, b := pair(t, syscall.SOCK_SEQPACKET)
	files := devNulls(t, 2)
	tf := tempFile(t, "x")
	afd := rawFD(t, a)
	ids := []fileID{}
	var first, second []int
	for i := 0; i < 3; i++ {
		fd := rawFD(t, tf)
		if i == 1 {
			fd = rawFD(t, files[0].(*os.File))
		}
		first = append(first, fd)
		ids = append(ids, idOfFD(t, fd))
	}
	for i := 0; i < 2; i++ {
		fd := rawFD(t, files[i].(*os.File))
		second = append(second, fd)
		ids = append(ids, idOfFD(t, fd))
	}
	oob := append(unix.UnixRights(first...), unix.UnixRights(second...)...)
	if err := unix.Sendmsg(afd, []byte("two"), oob, nil, 0); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	n, got, err := fdsend.Recv(b, buf, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(got)
	if string(buf[:n]) != "two" || len(got) != 5 {
		t.Fatalf("got %q with %d files", buf[:n], len(got))
	}
	for i, f := range got {
		if id := idOf(t, f); id != ids[i] {
			t.Errorf("file %d is not the one sent in that place", i)
		}
	}
}

// More files than the receiver asked for: Recv closes what arrived and says
// so; RecvMsg keeps what fits, closes the rest and reports MSG_CTRUNC. Odd
// and even counts, since CMSG_SPACE rounding lets the kernel deliver one more
// descriptor than asked for when the count is odd.
func TestControlTruncation(t *testing.T) {
	for _, typ := range []int{syscall.SOCK_STREAM, syscall.SOCK_SEQPACKET, syscall.SOCK_DGRAM} {
		for max := 0; max <= 5; max++ {
			for _, extra := range []int{1, 2, 7} {
				name := fmt.Sprintf("type%d/max%d/sent%d", typ, max, max+extra)
				t.Run(name, func(t *testing.T) {
					fdtest.Check(t)
					a, b := pair(t, typ)
					files := devNulls(t, max+extra)
					send := func() {
						if _, err := fdsend.Send(a, []byte("payload"), files...); err != nil {
							t.Fatal(err)
						}
					}
					send()
					buf := make([]byte, 64)
					n, got, err := fdsend.Recv(b, buf, max)
					if !errors.Is(err, fdsend.ErrTruncated) || got != nil {
						t.Fatalf("Recv: %v, %d files", err, len(got))
					}
					if !strings.Contains(err.Error(), "files") || string(buf[:n]) != "payload" {
						t.Errorf("Recv: n=%d err=%v", n, err)
					}
					send()
					fds := make([]int, max)
					n, nfds, flags, err := fdsend.RecvMsg(b, buf, fds, 0)
					if err != nil || n != 7 {
						t.Fatalf("RecvMsg: %d, %v", n, err)
					}
					if nfds != max || flags&unix.MSG_CTRUNC == 0 {
						t.Errorf("RecvMsg: nfds=%d flags=%#x, want %d and MSG_CTRUNC", nfds, flags, max)
					}
					for _, fd := range fds[:nfds] {
						if !isCloexec(t, fd) {
							t.Errorf("fd %d not close-on-exec", fd)
						}
						unix.Close(fd)
					}
				})
			}
		}
	}
}

// Data longer than the buffer on message sockets: the files are closed and
// the error says the data was cut.
func TestDataTruncation(t *testing.T) {
	for _, typ := range []int{syscall.SOCK_SEQPACKET, syscall.SOCK_DGRAM} {
		t.Run(strconv.Itoa(typ), func(t *testing.T) {
			fdtest.Check(t)
			a, b := pair(t, typ)
			if _, err := fdsend.Send(a, []byte("0123456789"), devNulls(t, 3)...); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4)
			n, got, err := fdsend.Recv(b, buf, 3)
			if !errors.Is(err, fdsend.ErrTruncated) || got != nil || !strings.Contains(err.Error(), "data") {
				t.Fatalf("Recv: %v, %d files", err, len(got))
			}
			if string(buf[:n]) != "0123" {
				t.Errorf("data %q", buf[:n])
			}
		})
	}
}

// SO_PASSCRED puts a credentials header before the descriptors in every
// message; maxFiles files must still arrive whole. SO_PASSPIDFD adds a pidfd,
// which must be closed, never leaked.
func TestCredentialsAndPidfd(t *testing.T) {
	for _, opt := range []struct {
		name string
		opts []int
	}{
		{"passcred", []int{unix.SO_PASSCRED}},
		{"passpidfd", []int{unix.SO_PASSPIDFD}},
		{"both", []int{unix.SO_PASSCRED, unix.SO_PASSPIDFD}},
	} {
		for _, typ := range []int{syscall.SOCK_STREAM, syscall.SOCK_DGRAM} {
			t.Run(fmt.Sprintf("%s/%d", opt.name, typ), func(t *testing.T) {
				fdtest.Check(t)
				a, b := pair(t, typ)
				bfd := rawFD(t, b)
				for _, o := range opt.opts {
					if err := unix.SetsockoptInt(bfd, unix.SOL_SOCKET, o, 1); err != nil {
						t.Fatalf("setsockopt %d: %v", o, err)
					}
				}
				for _, max := range []int{1, 2, 3, 253} {
					if _, err := fdsend.Send(a, []byte("c"), devNulls(t, max)...); err != nil {
						t.Fatal(err)
					}
					_, got, err := fdsend.Recv(b, make([]byte, 4), max)
					if err != nil || len(got) != max {
						t.Fatalf("max %d: Recv: %v, %d files", max, err, len(got))
					}
					closeAll(got)
				}
			})
		}
	}
}

func TestSocketTypes(t *testing.T) {
	for _, tc := range []struct {
		typ        int
		emptyWorks bool
	}{{syscall.SOCK_STREAM, false}, {syscall.SOCK_SEQPACKET, true}, {syscall.SOCK_DGRAM, true}} {
		t.Run(strconv.Itoa(tc.typ), func(t *testing.T) {
			fdtest.Check(t)
			a, b := pair(t, tc.typ)
			f := tempFile(t, "hello")
			if _, err := fdsend.Send(a, []byte("abc"), f); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 8)
			n, got, err := fdsend.Recv(b, buf, 1)
			if err != nil || string(buf[:n]) != "abc" || len(got) != 1 {
				t.Fatalf("Recv: %q %d %v", buf[:n], len(got), err)
			}
			data, _ := io.ReadAll(got[0])
			closeAll(got)
			if string(data) != "hello" {
				t.Errorf("read %q through the received file", data)
			}
			n, err = fdsend.Send(a, nil, f)
			if !tc.emptyWorks {
				var ae *fdsend.ArgError
				if !errors.As(err, &ae) || ae.Arg != "msg" {
					t.Fatalf("empty message with files on a stream: %v", err)
				}
				nothingQueued(t, b)
				return
			}
			if err != nil || n != 0 {
				t.Fatalf("empty message: %d, %v", n, err)
			}
			n, got, err = fdsend.Recv(b, buf, 1)
			if err != nil || n != 0 || len(got) != 1 {
				t.Fatalf("Recv of empty message: %d %d %v", n, len(got), err)
			}
			closeAll(got)
		})
	}
	if _, _, err := fdsend.Socketpair(syscall.SOCK_RAW); err == nil || !strings.Contains(err.Error(), "typ") {
		t.Errorf("Socketpair(SOCK_RAW): %v", err)
	}
	a, b := pair(t, syscall.SOCK_STREAM)
	for _, c := range []*net.UnixConn{a, b} {
		if !isCloexec(t, rawFD(t, c)) {
			t.Error("Socketpair end not close-on-exec")
		}
	}
}

func TestTooManyFiles(t *testing.T) {
	fdtest.Check(t)
	a, b := pair(t, syscall.SOCK_SEQPACKET)
	files := devNulls(t, 254)
	if _, err := fdsend.Send(a, []byte("x"), files...); err == nil || !errors.Is(err, syscall.EINVAL) || !strings.Contains(err.Error(), "253") {
		t.Fatalf("254 files: %v", err)
	}
	nothingQueued(t, b)
	if _, err := fdsend.Send(a, []byte("x"), files[:253]...); err != nil {
		t.Fatal(err)
	}
	_, got, err := fdsend.Recv(b, make([]byte, 4), 253)
	if err != nil || len(got) != 253 {
		t.Fatalf("253 files: %d, %v", len(got), err)
	}
	closeAll(got)
}

func TestDeadlines(t *testing.T) {
	fdtest.Check(t)
	a, b := pair(t, syscall.SOCK_STREAM)
	b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, _, err := fdsend.Recv(b, make([]byte, 4), 1)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Recv past deadline: %v", err)
	}
	// A deadline set while the call is blocked.
	b.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, _, _, err := fdsend.RecvMsg(b, make([]byte, 4), make([]int, 1), 0)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	b.SetReadDeadline(time.Now())
	awaitErr(t, done, os.ErrDeadlineExceeded, "deadline set while blocked did not unblock RecvMsg")
	// A send that cannot proceed because the peer's buffer is full.
	unix.SetsockoptInt(rawFD(t, a), unix.SOL_SOCKET, unix.SO_SNDBUF, 4096)
	a.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	chunk := make([]byte, 1<<16)
	for i := 0; ; i++ {
		_, err := fdsend.Send(a, chunk)
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Send on a full socket: %v", err)
			}
			break
		}
		if i > 1000 {
			t.Fatal("send never blocked")
		}
	}
}

// MSG_DONTWAIT is honoured on pollable sockets too: a full socket gives
// EAGAIN at once instead of waiting.
func TestSendDontWait(t *testing.T) {
	fdtest.Check(t)
	a, _ := pair(t, syscall.SOCK_STREAM)
	chunk := make([]byte, 1<<16)
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 10000; i++ {
			if _, err := fdsend.SendMsg(a, chunk, nil, unix.MSG_DONTWAIT); err != nil {
				done <- err
				return
			}
		}
		done <- errors.New("never filled")
	}()
	awaitErr(t, done, syscall.EAGAIN, "SendMsg with MSG_DONTWAIT waited")
}

func TestCloseUnblocks(t *testing.T) {
	fdtest.Check(t)
	a, b := pair(t, syscall.SOCK_STREAM)
	_ = a
	done := make(chan error, 1)
	go func() {
		_, _, err := fdsend.Recv(b, make([]byte, 4), 1)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	b.Close()
	awaitErr(t, done, net.ErrClosed, "Close did not unblock Recv")
}

// A raw integer socket in non-blocking mode returns EAGAIN, wrapped.
func TestRawNonblocking(t *testing.T) {
	fdtest.Check(t)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	_, _, _, err = fdsend.RecvMsg(fds[1], make([]byte, 4), nil, 0)
	if !errors.Is(err, syscall.EAGAIN) || !strings.Contains(err.Error(), "recvmsg") {
		t.Fatalf("RecvMsg on empty non-blocking socket: %v", err)
	}
	// And a plain blocking exchange on raw integers.
	if _, err := fdsend.Send(fds[0], []byte("raw"), fds[0]); err != nil {
		t.Fatal(err)
	}
	fd := make([]int, 1)
	n, nfds, _, err := fdsend.RecvMsg(fds[1], make([]byte, 4), fd, 0)
	if err != nil || n != 3 || nfds != 1 {
		t.Fatalf("RecvMsg: %d %d %v", n, nfds, err)
	}
	if idOfFD(t, fd[0]) != idOfFD(t, fds[0]) {
		t.Error("received a different socket")
	}
	unix.Close(fd[0])
}

func init() {
	children["exec-sees"] = func() error {
		var open []string
		for _, s := range strings.Split(os.Getenv("FDSEND_TEST_FDS"), ",") {
			fd, _ := strconv.Atoi(s)
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
				open = append(open, s)
			}
		}
		fmt.Print(strings.Join(open, ","))
		return nil
	}
}

// Received descriptors are close-on-exec: fcntl says so, and a child the
// receiver execs does not have them.
func TestCloseOnExec(t *testing.T) {
	fdtest.Check(t)
	a, b := pair(t, syscall.SOCK_STREAM)
	if _, err := fdsend.Send(a, []byte("x"), devNulls(t, 3)...); err != nil {
		t.Fatal(err)
	}
	_, got, err := fdsend.Recv(b, make([]byte, 4), 3)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(got)
	if _, err := fdsend.Send(a, []byte("x"), devNulls(t, 2)...); err != nil {
		t.Fatal(err)
	}
	fds := make([]int, 2)
	if _, _, _, err := fdsend.RecvMsg(rawFD(t, b), make([]byte, 4), fds, 0); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	var list []string
	for _, f := range got {
		fd := rawFD(t, f)
		if !isCloexec(t, fd) {
			t.Errorf("Recv: fd %d is not close-on-exec", fd)
		}
		list = append(list, strconv.Itoa(fd))
	}
	for _, fd := range fds {
		if !isCloexec(t, fd) {
			t.Errorf("RecvMsg: fd %d is not close-on-exec", fd)
		}
		list = append(list, strconv.Itoa(fd))
	}
	out := runChild(t, "exec-sees", func(c *exec.Cmd) {
		c.Env = append(c.Env, "FDSEND_TEST_FDS="+strings.Join(list, ","))
	})
	if out != "" {
		t.Errorf("exec'd child has the received descriptors %s open", out)
	}
}

func init() {
	children["low-nofile"] = func() error {
		sock := os.NewFile(3, "sock")
		before := len(openFDs())
		// Room for exactly two more descriptors: the limit sits just above
		// the second free descriptor number.
		lim := &unix.Rlimit{Cur: uint64(nthFreeFD(2) + 1), Max: uint64(nthFreeFD(2) + 1)}
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, lim); err != nil {
			return err
		}
		buf := make([]byte, 16)
		_, files, err := fdsend.Recv(sock, buf, 10)
		if !errors.Is(err, fdsend.ErrTruncated) || files != nil {
			return fmt.Errorf("Recv: %v, %d files", err, len(files))
		}
		if after := len(openFDs()); after != before {
			return fmt.Errorf("%d descriptors open before, %d after", before, after)
		}
		fmt.Print(err)
		return nil
	}
}

// openFDs lists /proc/self/fd (for children, which have no testing.T).
func openFDs() []string {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	return names
}

// nthFreeFD returns the n-th lowest descriptor number not in use.
func nthFreeFD(n int) int {
	used := map[int]bool{}
	for _, s := range openFDs() {
		fd, _ := strconv.Atoi(s)
		used[fd] = true
	}
	for fd := 0; ; fd++ {
		if !used[fd] {
			if n--; n == 0 {
				return fd
			}
		}
	}
}

// A receiver that runs out of descriptors gets ErrTruncated, and whatever
// did arrive is closed.
func TestReceiverOutOfDescriptors(t *testing.T) {
	fdtest.Check(t)
	a, b := pair(t, syscall.SOCK_SEQPACKET)
	if _, err := fdsend.Send(a, []byte("ten"), devNulls(t, 10)...); err != nil {
		t.Fatal(err)
	}
	bf, err := b.File()
	if err != nil {
		t.Fatal(err)
	}
	defer bf.Close()
	out := runChild(t, "low-nofile", func(c *exec.Cmd) { c.ExtraFiles = []*os.File{bf} })
	if !strings.Contains(out, "files cut") {
		t.Errorf("child said %q", out)
	}
}

func init() {
	children["toomanyrefs"] = func() error {
		lim := &unix.Rlimit{Cur: 32, Max: 32}
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, lim); err != nil {
			return err
		}
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		// Only /dev/null goes in flight: in-flight copies of the sockets
		// or of stdout would live on after exit until the kernel's garbage
		// collector of Unix sockets ran, and keep the parent's pipe open.
		null, err := os.Open(os.DevNull)
		if err != nil {
			return err
		}
		for i := 0; i < 100; i++ {
			_, err := fdsend.Send(fds[0], []byte("x"), null, null, null, null, null)
			if err != nil {
				if errors.Is(err, syscall.ETOOMANYREFS) && strings.Contains(err.Error(), "sendmsg") {
					fmt.Print("ETOOMANYREFS after ", i, " messages")
					return nil
				}
				return err
			}
		}
		return errors.New("never hit the in-flight limit")
	}
}

// The sender's in-flight limit (ETOOMANYREFS) surfaces with its errno. Root
// is exempt, so the sender is a child running as nobody.
func TestETOOMANYREFS(t *testing.T) {
	fdtest.NeedRoot(t, "it runs a child as nobody")
	bin := fdtest.WorldBinary(t)
	var out bytes.Buffer
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=toomanyrefs")
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: fdtest.Nobody, Gid: fdtest.Nobody}}
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v: %s", err, out.String())
	}
	if !strings.HasPrefix(out.String(), "ETOOMANYREFS") {
		t.Fatalf("child said %q", out.String())
	}
}

// On a blocking integer socket the receive first tries without waiting
// (Linux); nothing there, it blocks as before, a MSG_WAITALL receive still
// waits for all its bytes, and a send larger than the socket's buffer still
// goes whole.
func TestIntBlockingSocket(t *testing.T) {
	fdtest.Check(t)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])

	type result struct {
		n, nfds int
		err     error
	}
	got := make(chan result, 1)
	fd := make([]int, 1)
	// Half is there when the receive starts; it must return all 8 bytes,
	// whenever the other half comes. (A read ends after a message that
	// carries descriptors, so they come with the second half.)
	if _, err := unix.Write(fds[0], []byte("half")); err != nil {
		t.Fatal(err)
	}
	go func() {
		n, nfds, _, err := fdsend.RecvMsg(fds[1], make([]byte, 8), fd, unix.MSG_WAITALL)
		got <- result{n, nfds, err}
	}()
	time.Sleep(50 * time.Millisecond) // not needed to pass: lets the receive start first
	if _, err := fdsend.Send(fds[0], []byte("more"), fds[0]); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if r.err != nil || r.n != 8 || r.nfds != 1 {
			t.Fatalf("RecvMsg(MSG_WAITALL) = %d bytes, %d fds, %v; want 8, 1", r.n, r.nfds, r.err)
		}
		unix.Close(fd[0])
	case <-time.After(10 * time.Second):
		t.Fatal("RecvMsg(MSG_WAITALL) did not return")
	}

	// A blocking send of more than the socket holds goes whole.
	if err := unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 4096); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 1<<20)
	sent := make(chan result, 1)
	go func() {
		n, err := fdsend.Send(fds[0], big, fds[0])
		sent <- result{n: n, err: err}
	}()
	total, files := 0, 0
	buf := make([]byte, 1<<16)
	for total < len(big) {
		n, nfds, _, err := fdsend.RecvMsg(fds[1], buf, fd, 0)
		if err != nil || n == 0 {
			t.Fatalf("RecvMsg after %d bytes: %d, %v", total, n, err)
		}
		if nfds > 0 {
			files += nfds
			unix.Close(fd[0])
		}
		total += n
	}
	r := <-sent
	if r.err != nil || r.n != len(big) || files != 1 {
		t.Fatalf("Send of %d bytes on a blocking socket: %d, %v, %d files arrived", len(big), r.n, r.err, files)
	}
}
