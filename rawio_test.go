//go:build linux

package fdsend_test

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdtest"
	"golang.org/x/sys/unix"
)

// setBlocking puts the descriptor of c in blocking mode behind package net's
// back, as a program that hands it to a blocking library might.
func setBlocking(t *testing.T, c *net.UnixConn) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetNonblock(int(fd), false) }); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatalf("clearing O_NONBLOCK: %v", serr)
	}
}

// A deadline ends a RecvMsg or SendMsg on a *net.UnixConn whose descriptor
// was put in blocking mode: the call waits in the poller, not in the kernel.
// Should it hang, the peer is closed to set it free and the test fails.
func TestDeadlineInBlockingMode(t *testing.T) {
	fdtest.Check(t)
	t.Run("RecvMsg", func(t *testing.T) {
		a, b := pair(t, syscall.SOCK_STREAM)
		setBlocking(t, b)
		b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		done := make(chan error, 1)
		go func() {
			buf := make([]byte, 16)
			fds := make([]int, 4)
			_, nfds, _, err := fdsend.RecvMsg(b, buf, fds, 0)
			fdsend.CloseFDs(fds[:nfds])
			done <- err
		}()
		awaitBounded(t, done, func() { a.Close() })
	})
	t.Run("SendMsg", func(t *testing.T) {
		a, b := pair(t, syscall.SOCK_STREAM)
		setBlocking(t, a)
		a.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		done := make(chan error, 1)
		go func() {
			msg := make([]byte, 64<<10)
			for {
				if _, err := fdsend.SendMsg(a, msg, nil, 0); err != nil {
					done <- err
					return
				}
			}
		}()
		awaitBounded(t, done, func() { b.Close() })
	})
}

// awaitBounded waits up to five seconds for a call that should end with
// os.ErrDeadlineExceeded; if it does not, release sets it free and the test
// fails.
func awaitBounded(t *testing.T, done <-chan error, release func()) {
	t.Helper()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the call returned %v, want os.ErrDeadlineExceeded", err)
		}
	case <-time.After(5 * time.Second):
		release()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		t.Fatal("the call was still blocked 5 s after its deadline (blocked in the kernel, not the poller)")
	}
}

// 10000 messages, each with a descriptor, go through SendMsg and RecvMsg on
// *net.UnixConn while another goroutine sends the process SIGURG (the
// runtime's preemption signal) and SIGUSR1 as fast as it can: every message
// arrives in order with its descriptor, close-on-exec, and none is left open.
func TestSignalStorm(t *testing.T) {
	for _, mode := range []string{"non-blocking", "blocking mode"} {
		t.Run(mode, func(t *testing.T) {
			fdtest.Check(t)
			a, b := pair(t, syscall.SOCK_SEQPACKET)
			if mode == "blocking mode" {
				setBlocking(t, a)
				setBlocking(t, b)
			}
			null := devNulls(t, 1)
			file := rawFD(t, null[0].(syscall.Conn))

			usr1 := make(chan os.Signal, 64)
			signal.Notify(usr1, syscall.SIGUSR1)
			defer signal.Stop(usr1)
			stop := make(chan struct{})
			stormDone := make(chan struct{})
			go func() {
				defer close(stormDone)
				pid := os.Getpid()
				for {
					select {
					case <-stop:
						return
					case <-usr1:
					default:
					}
					unix.Kill(pid, syscall.SIGURG)
					unix.Kill(pid, syscall.SIGUSR1)
				}
			}()
			defer func() { close(stop); <-stormDone }()

			const count = 10000
			deadline := time.Now().Add(60 * time.Second)
			a.SetDeadline(deadline)
			b.SetDeadline(deadline)
			sent := make(chan error, 1)
			go func() {
				msg := make([]byte, 8)
				files := []any{file}
				for i := range count {
					binary.LittleEndian.PutUint64(msg, uint64(i))
					if _, err := fdsend.SendMsg(a, msg, files, 0); err != nil {
						sent <- err
						return
					}
				}
				sent <- nil
			}()
			buf := make([]byte, 16)
			fds := make([]int, 4)
			for i := range count {
				n, nfds, mflags, err := fdsend.RecvMsg(b, buf, fds, 0)
				if err != nil {
					a.Close()
					<-sent
					t.Fatalf("message %d: RecvMsg: %v", i, err)
				}
				for _, fd := range fds[:nfds] {
					if !isCloexec(t, fd) {
						t.Errorf("message %d: descriptor %d is not close-on-exec", i, fd)
					}
				}
				fdsend.CloseFDs(fds[:nfds])
				if n != 8 || nfds != 1 || mflags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
					a.Close()
					<-sent
					t.Fatalf("message %d: n=%d nfds=%d flags=%#x, want 8, 1, no truncation", i, n, nfds, mflags)
				}
				if got := binary.LittleEndian.Uint64(buf); got != uint64(i) {
					a.Close()
					<-sent
					t.Fatalf("message %d arrived as number %d", i, got)
				}
			}
			if err := <-sent; err != nil {
				t.Fatalf("SendMsg: %v", err)
			}
		})
	}
}

// TestRecvMsgFlagsAreTheMessages: the flags RecvMsg returns say only what
// happened to the message; the MSG_CMSG_CLOEXEC the package passes (and
// Linux echoes back) is not among them.
func TestRecvMsgFlagsAreTheMessages(t *testing.T) {
	fdtest.Check(t)
	a, b, err := fdsend.Socketpair(syscall.SOCK_SEQPACKET)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	for _, sock := range []any{b, recvFD(t, b)} {
		if _, err := fdsend.Send(a, []byte("x"), null); err != nil {
			t.Fatal(err)
		}
		fds := make([]int, 4)
		_, nfds, flags, err := fdsend.RecvMsg(sock, make([]byte, 8), fds, 0)
		if err != nil {
			t.Fatal(err)
		}
		fdsend.CloseFDs(fds[:nfds])
		if flags != 0 || nfds != 1 {
			t.Errorf("RecvMsg(%T): %d descriptors, flags %#x; want 1 and no flags", sock, nfds, flags)
		}
	}
}

// recvFD returns c's descriptor number, for the integer path; c keeps it.
func recvFD(t *testing.T, c syscall.Conn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	rc.Control(func(u uintptr) { fd = int(u) })
	return fd
}
