//go:build linux

package fdsend_test

import (
	"syscall"
	"testing"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdtest"
	"golang.org/x/sys/unix"
)

// SendMsg and RecvMsg allocate nothing in the steady state when the socket is
// a *net.UnixConn or an int and the files are ints.
func TestSendRecvMsgAllocFree(t *testing.T) {
	fdtest.Check(t)
	a, b := pair(t, syscall.SOCK_SEQPACKET)
	null := devNulls(t, 8)
	files := make([]any, 8)
	for i := range files {
		files[i] = rawFD(t, null[i].(interface {
			syscall.Conn
		}))
	}
	msg := []byte("steady state")
	buf := make([]byte, 64)
	fds := make([]int, 8)
	for _, tc := range []struct {
		name       string
		send, recv any
	}{
		{"*net.UnixConn", a, b},
		{"int", rawFD(t, a), rawFD(t, b)},
	} {
		var failure error
		allocs := testing.AllocsPerRun(200, func() {
			if _, err := fdsend.SendMsg(tc.send, msg, files, 0); err != nil {
				failure = err
				return
			}
			_, nfds, _, err := fdsend.RecvMsg(tc.recv, buf, fds, 0)
			if err != nil {
				failure = err
				return
			}
			for _, fd := range fds[:nfds] {
				unix.Close(fd)
			}
		})
		if failure != nil {
			t.Fatal(failure)
		}
		if allocs != 0 {
			t.Errorf("%s: %v allocations per SendMsg+RecvMsg, want 0", tc.name, allocs)
		}
	}
}

// Send and Recv allocate only what Recv returns: the slice and one *os.File
// per descriptor (os.NewFile allocates the File and its internals).
func TestSendRecvAllocs(t *testing.T) {
	fdtest.Check(t)
	a, b := pair(t, syscall.SOCK_SEQPACKET)
	null := devNulls(t, 1)
	fd := rawFD(t, null[0].(syscall.Conn))
	buf := make([]byte, 64)
	msg := []byte("x")
	allocsNone := testing.AllocsPerRun(100, func() {
		fdsend.Send(a, msg)
		fdsend.Recv(b, buf, 4)
	})
	if allocsNone != 0 {
		t.Errorf("Send+Recv without files: %v allocations, want 0", allocsNone)
	}
	// One file: what os.NewFile costs on its own, measured in this process.
	perFile := testing.AllocsPerRun(100, func() {
		dup, _ := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		f := osNewFile(dup)
		f.Close()
	})
	allocsOne := testing.AllocsPerRun(100, func() {
		fdsend.Send(a, msg, fd)
		_, files, _ := fdsend.Recv(b, buf, 4)
		for _, f := range files {
			f.Close()
		}
	})
	// The returned slice, plus the File.
	if allocsOne > perFile+1 {
		t.Errorf("Send+Recv of one file: %v allocations, want at most %v (slice + os.NewFile's %v)", allocsOne, perFile+1, perFile)
	}
}

// Conn's WriteMsg with integer files and ReadMsgFDs with reused slices
// allocate nothing in the steady state, at 1 descriptor and at 300 (two
// frames).
func TestConnIntsAllocFree(t *testing.T) {
	fdtest.Check(t)
	x, y, err := fdsend.Socketpair(syscall.SOCK_STREAM)
	if err != nil {
		t.Fatal(err)
	}
	w, r := fdsend.NewConn(x), fdsend.NewConn(y)
	defer w.Close()
	defer r.Close()
	null := devNulls(t, 1)
	fd := rawFD(t, null[0].(syscall.Conn))
	msg := []byte("steady state")
	for _, n := range []int{1, 300} {
		files := make([]any, n)
		for i := range files {
			files[i] = fd
		}
		var data []byte
		var fds []int
		var failure error
		allocs := testing.AllocsPerRun(100, func() {
			if err := w.WriteMsg(msg, files...); err != nil {
				failure = err
				return
			}
			data, fds, err = r.ReadMsgFDs(data[:0], fds[:0])
			if err != nil {
				failure = err
				return
			}
			if err := fdsend.CloseFDs(fds); err != nil {
				failure = err
			}
		})
		if failure != nil {
			t.Fatal(failure)
		}
		if string(data) != string(msg) || len(fds) != n {
			t.Fatalf("%d files: got %q and %d numbers", n, data, len(fds))
		}
		if allocs != 0 {
			t.Errorf("%d files: %v allocations per WriteMsg+ReadMsgFDs, want 0", n, allocs)
		}
		if n > 1 {
			continue // 101 messages of 300 in flight is too many for some limits
		}
		// The write on its own, read back outside the measurement.
		allocs = testing.AllocsPerRun(100, func() {
			if err := w.WriteMsg(msg, files...); err != nil {
				failure = err
			}
		})
		for range 101 {
			data, fds, err = r.ReadMsgFDs(data[:0], fds[:0])
			if err != nil {
				t.Fatal(err)
			}
			fdsend.CloseFDs(fds)
		}
		if failure != nil {
			t.Fatal(failure)
		}
		if allocs != 0 {
			t.Errorf("%d files: %v allocations per WriteMsg of integers, want 0", n, allocs)
		}
	}
}

// SendMsgs and RecvMsgs allocate nothing in the steady state, on a
// *net.UnixConn and on integers.
func TestMsgsAllocFree(t *testing.T) {
	fdtest.Check(t)
	a, b := pair(t, syscall.SOCK_SEQPACKET)
	fd := rawFD(t, devNulls(t, 1)[0].(syscall.Conn))
	send := make([]fdsend.Msg, 8)
	for i := range send {
		send[i] = fdsend.Msg{Data: []byte("12345678"), FDs: []int{fd}}
	}
	recv := make([]fdsend.Msg, 8)
	for i := range recv {
		recv[i] = fdsend.Msg{Data: make([]byte, 16), FDs: make([]int, 2)}
	}
	for _, socks := range [][2]any{{a, b}, {rawFD(t, a), rawFD(t, b)}} {
		allocs := testing.AllocsPerRun(50, func() {
			if n, err := fdsend.SendMsgs(socks[0], send, 0); n != len(send) || err != nil {
				t.Fatalf("SendMsgs: %d, %v", n, err)
			}
			for got := 0; got < len(send); {
				n, err := fdsend.RecvMsgs(socks[1], recv, 0)
				if err != nil {
					t.Fatalf("RecvMsgs: %v", err)
				}
				for _, m := range recv[:n] {
					fdsend.CloseFDs(m.FDs[:m.NFDs])
				}
				got += n
			}
		})
		if allocs != 0 {
			t.Errorf("%T: SendMsgs+RecvMsgs of %d messages: %v allocations, want 0", socks[0], len(send), allocs)
		}
	}
}
