//go:build linux

package fdsend_test

import (
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"

	"github.com/fdsend/fdsend"
	"golang.org/x/sys/unix"
)

// BenchmarkSendRecv compares fdsend with the standard library, like for like,
// in one run: SendMsg+RecvMsg against WriteMsgUnix+UnixRights and
// ReadMsgUnix+ParseSocketControlMessage+ParseUnixRights with integer
// descriptors ("raw"), and Send+Recv against the same plus os.NewFile per
// descriptor ("files"). Run with -benchmem; the ratio of each pair is what
// the run shows.
func BenchmarkSendRecv(b *testing.B) {
	for _, n := range []int{1, 8, 64, 253} {
		b.Run("files="+strconv.Itoa(n), func(b *testing.B) {
			x, y, err := fdsend.Socketpair(syscall.SOCK_SEQPACKET)
			if err != nil {
				b.Fatal(err)
			}
			defer x.Close()
			defer y.Close()
			null, err := os.Open(os.DevNull)
			if err != nil {
				b.Fatal(err)
			}
			defer null.Close()
			nfd := int(null.Fd())
			ints := make([]int, n)
			anys := make([]any, n)
			for i := range ints {
				ints[i] = nfd
				anys[i] = nfd
			}
			msg := []byte("benchmark message")
			buf := make([]byte, 64)
			fds := make([]int, n)

			b.Run("impl=fdsend/api=raw", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := fdsend.SendMsg(x, msg, anys, 0); err != nil {
						b.Fatal(err)
					}
					_, got, _, err := fdsend.RecvMsg(y, buf, fds, 0)
					if err != nil || got != n {
						b.Fatal(got, err)
					}
					for _, fd := range fds[:got] {
						unix.Close(fd)
					}
				}
			})
			b.Run("impl=stdlib/api=raw", func(b *testing.B) {
				b.ReportAllocs()
				oob := make([]byte, unix.CmsgSpace(4*n))
				for b.Loop() {
					got := stdlibRoundTrip(b, x, y, msg, buf, oob, ints)
					for _, fd := range got {
						unix.Close(fd)
					}
				}
			})
			b.Run("impl=fdsend/api=files", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := fdsend.Send(x, msg, anys...); err != nil {
						b.Fatal(err)
					}
					_, files, err := fdsend.Recv(y, buf, n)
					if err != nil || len(files) != n {
						b.Fatal(len(files), err)
					}
					for _, f := range files {
						f.Close()
					}
				}
			})
			b.Run("impl=stdlib/api=files", func(b *testing.B) {
				b.ReportAllocs()
				oob := make([]byte, unix.CmsgSpace(4*n))
				for b.Loop() {
					got := stdlibRoundTrip(b, x, y, msg, buf, oob, ints)
					files := make([]*os.File, len(got))
					for i, fd := range got {
						files[i] = os.NewFile(uintptr(fd), "stdlib")
					}
					for _, f := range files {
						f.Close()
					}
				}
			})
		})
	}
}

// stdlibRoundTrip sends and receives one message with the standard
// library's own calls, with close-on-exec as fdsend gives it (the standard
// library's ReadMsgUnix sets MSG_CMSG_CLOEXEC on Linux).
func stdlibRoundTrip(b *testing.B, x, y *net.UnixConn, msg, buf, oob []byte, fds []int) []int {
	if _, _, err := x.WriteMsgUnix(msg, syscall.UnixRights(fds...), nil); err != nil {
		b.Fatal(err)
	}
	_, oobn, _, _, err := y.ReadMsgUnix(buf, oob)
	if err != nil {
		b.Fatal(err)
	}
	scms, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		b.Fatal(err)
	}
	var got []int
	for _, scm := range scms {
		r, err := syscall.ParseUnixRights(&scm)
		if err != nil {
			b.Fatal(err)
		}
		got = append(got, r...)
	}
	if len(got) != len(fds) {
		b.Fatalf("stdlib received %d of %d", len(got), len(fds))
	}
	return got
}

// BenchmarkCloseFDs compares CloseFDs with a loop of unix.Close on n
// received-like descriptors: numbered as the kernel numbers received ones,
// lowest free first, so usually one run. op=close times the closing alone
// (the timer is stopped while the descriptors are made); op=dup+close
// times making and closing them, the same making for both. Run with
// -benchmem; compare the two impls within one run.
func BenchmarkCloseFDs(b *testing.B) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		b.Fatal(err)
	}
	defer null.Close()
	nfd := int(null.Fd())
	for _, n := range []int{1, 8, 64, 253} {
		fds := make([]int, n)
		dups := func(b *testing.B) {
			for i := range fds {
				fd, err := unix.FcntlInt(uintptr(nfd), unix.F_DUPFD_CLOEXEC, 0)
				if err != nil {
					b.Fatal(err)
				}
				fds[i] = fd
			}
		}
		impls := []struct {
			name  string
			close func(b *testing.B)
		}{
			{"CloseFDs", func(b *testing.B) {
				if err := fdsend.CloseFDs(fds); err != nil {
					b.Fatal(err)
				}
			}},
			{"close-loop", func(b *testing.B) {
				for _, fd := range fds {
					if err := unix.Close(fd); err != nil {
						b.Fatal(err)
					}
				}
			}},
		}
		for _, op := range []string{"close", "dup+close"} {
			for _, impl := range impls {
				b.Run("files="+strconv.Itoa(n)+"/op="+op+"/impl="+impl.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if op == "close" {
							b.StopTimer()
							dups(b)
							b.StartTimer()
						} else {
							dups(b)
						}
						impl.close(b)
					}
				})
			}
		}
	}
}

// BenchmarkMsgs sends and receives 16 messages of 8 bytes with one
// descriptor each per op on a SOCK_SEQPACKET pair: with SendMsgs+RecvMsgs
// ("impl=batch", sendmmsg/recvmmsg on Linux) and with 16 SendMsg+RecvMsg
// ("impl=single"), in the same run. The receiver closes every descriptor
// with one CloseFDs per op in both.
func BenchmarkMsgs(b *testing.B) {
	x, y, err := fdsend.Socketpair(syscall.SOCK_SEQPACKET)
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	defer y.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		b.Fatal(err)
	}
	defer null.Close()
	nfd := int(null.Fd())
	const batch = 16
	send := make([]fdsend.Msg, batch)
	recv := make([]fdsend.Msg, batch)
	for i := range send {
		send[i] = fdsend.Msg{Data: []byte("12345678"), FDs: []int{nfd}}
		recv[i] = fdsend.Msg{Data: make([]byte, 16), FDs: make([]int, 1)}
	}
	all := make([]int, 0, batch)
	b.Run("impl=batch", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if n, err := fdsend.SendMsgs(x, send, 0); n != batch || err != nil {
				b.Fatal(n, err)
			}
			all = all[:0]
			for got := 0; got < batch; {
				n, err := fdsend.RecvMsgs(y, recv, 0)
				if err != nil {
					b.Fatal(err)
				}
				for _, m := range recv[:n] {
					all = append(all, m.FDs[:m.NFDs]...)
				}
				got += n
			}
			fdsend.CloseFDs(all)
		}
	})
	b.Run("impl=single", func(b *testing.B) {
		b.ReportAllocs()
		files := []any{nfd}
		buf := make([]byte, 16)
		fds := make([]int, 1)
		for b.Loop() {
			for range batch {
				if _, err := fdsend.SendMsg(x, send[0].Data, files, 0); err != nil {
					b.Fatal(err)
				}
			}
			all = all[:0]
			for range batch {
				_, nfds, _, err := fdsend.RecvMsg(y, buf, fds, 0)
				if err != nil {
					b.Fatal(err)
				}
				all = append(all, fds[:nfds]...)
			}
			fdsend.CloseFDs(all)
		}
	})
}
