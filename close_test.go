//go:build linux

package fdsend_test

import (
	"errors"
	"net"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdtest"
	"golang.org/x/sys/unix"
)

// connOnly hides every method of a socket but SyscallConn, so that it is
// taken as "any syscall.Conn".
type connOnly struct{ syscall.Conn }

// pollableFilePair returns a connected SOCK_SEQPACKET pair as *os.File
// values made by os.NewFile from non-blocking descriptors, which the runtime
// polls.
func pollableFilePair(t *testing.T) (a, b *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b = os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// waitIOWait waits up to five seconds for a goroutine to be parked in the
// network poller inside fdsend, and fails the test if none is.
func waitIOWait(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "[IO wait") && strings.Contains(g, "github.com/fdsend/fdsend.") {
				return
			}
		}
	}
	t.Fatal("the call did not block in the poller within 5 s")
}

// fillSendBuffer sends on sock without waiting until the socket is full.
func fillSendBuffer(t *testing.T, sock any) {
	t.Helper()
	chunk := make([]byte, 4096)
	for range 100000 {
		_, err := fdsend.SendMsg(sock, chunk, nil, unix.MSG_DONTWAIT)
		if errors.Is(err, syscall.EAGAIN) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("the socket never filled")
}

// A call that Close unblocks, or that starts on a closed socket, returns an
// error matching net.ErrClosed and os.ErrClosed, whatever kind of socket it
// was given: the README promises net.ErrClosed, and package os's RawConn
// says only "use of closed file".
func TestCloseUnblocksEveryKind(t *testing.T) {
	fdtest.Check(t)
	kinds := []struct {
		name string
		// pair returns the socket under test, its peer, and how to close
		// the socket.
		pair func(t *testing.T) (sock, peer any, close func())
	}{
		{"*net.UnixConn", func(t *testing.T) (any, any, func()) {
			a, b := pair(t, syscall.SOCK_SEQPACKET)
			return a, b, func() { a.Close() }
		}},
		{"*os.File", func(t *testing.T) (any, any, func()) {
			a, b := pollableFilePair(t)
			return a, b, func() { a.Close() }
		}},
		{"syscall.Conn of a *net.UnixConn", func(t *testing.T) (any, any, func()) {
			a, b := pair(t, syscall.SOCK_SEQPACKET)
			return connOnly{a}, b, func() { a.Close() }
		}},
		{"syscall.Conn of an *os.File", func(t *testing.T) (any, any, func()) {
			a, b := pollableFilePair(t)
			return connOnly{a}, b, func() { a.Close() }
		}},
	}
	ops := []struct {
		name string
		fill bool // the call waits for room to send
		call func(sock any) error
	}{
		{"Recv", false, func(sock any) error {
			_, files, err := fdsend.Recv(sock, make([]byte, 16), 4)
			closeAll(files)
			return err
		}},
		{"RecvMsg", false, func(sock any) error {
			_, _, _, err := fdsend.RecvMsg(sock, make([]byte, 16), make([]int, 4), 0)
			return err
		}},
		{"Send", true, func(sock any) error {
			_, err := fdsend.Send(sock, []byte("x"), os.Stdin)
			return err
		}},
	}
	for _, k := range kinds {
		for _, op := range ops {
			t.Run(k.name+"/"+op.name+"/blocked", func(t *testing.T) {
				sock, _, closeSock := k.pair(t)
				if op.fill {
					fillSendBuffer(t, sock)
				}
				done := make(chan error, 1)
				go func() { done <- op.call(sock) }()
				waitIOWait(t)
				closeSock()
				select {
				case err := <-done:
					checkClosedErr(t, err)
				case <-time.After(5 * time.Second):
					t.Fatal("Close did not unblock the call within 5 s")
				}
			})
			t.Run(k.name+"/"+op.name+"/after", func(t *testing.T) {
				sock, _, closeSock := k.pair(t)
				closeSock()
				checkClosedErr(t, op.call(sock))
			})
		}
	}
}

// checkClosedErr fails the test unless err matches net.ErrClosed and
// os.ErrClosed.
func checkClosedErr(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, net.ErrClosed) || !errors.Is(err, os.ErrClosed) {
		t.Errorf("got %v (net.ErrClosed %v, os.ErrClosed %v), want an error matching both", err, errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrClosed))
	}
}
