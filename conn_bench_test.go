//go:build linux

package fdsend_test

import (
	"os"
	"syscall"
	"testing"

	"github.com/fdsend/fdsend"
)

// BenchmarkConn compares the framing with the core calls in the same run:
// WriteMsg+ReadMsg ("impl=conn") and WriteMsg of integers+ReadMsgFDs with
// reused slices ("impl=conn-ints") against SendMsg+Recv ("impl=core") for 8
// bytes with 1 and 64 files, and for 1 MiB without files, where the core
// side reads into a freshly allocated buffer as ReadMsg must return one.
// The goal: the conn within 1.10x of the core in every case. In both, one
// long-lived goroutine writes while the benchmark's goroutine reads, as in a
// real program (a goroutine per message would mostly measure the growth of
// fresh goroutine stacks).
func BenchmarkConn(b *testing.B) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		b.Fatal(err)
	}
	defer null.Close()
	nullFD := null.Fd()
	for _, tc := range []struct {
		name   string
		size   int
		nfiles int
	}{{"8B-1file", 8, 1}, {"8B-64files", 8, 64}, {"1MiB-0files", 1 << 20, 0}} {
		files := make([]any, tc.nfiles)
		for i := range files {
			files[i] = null
		}
		msg := make([]byte, tc.size)
		b.Run(tc.name+"/impl=core", func(b *testing.B) {
			x, y, err := fdsend.Socketpair(syscall.SOCK_STREAM)
			if err != nil {
				b.Fatal(err)
			}
			defer x.Close()
			defer y.Close()
			write := func() error {
				rest := msg
				var err error
				for first := true; len(rest) > 0 && err == nil; first = false {
					var n int
					if first {
						n, err = fdsend.SendMsg(x, rest, files, 0)
					} else {
						n, err = fdsend.SendMsg(x, rest, nil, 0)
					}
					rest = rest[n:]
				}
				return err
			}
			start, done := writer(write)
			defer close(start)
			b.SetBytes(int64(tc.size))
			b.ReportAllocs()
			for b.Loop() {
				start <- struct{}{}
				buf := make([]byte, tc.size)
				got := 0
				for got < len(buf) {
					n, fs, err := fdsend.Recv(y, buf[got:], tc.nfiles)
					if err != nil {
						b.Fatal(err)
					}
					for _, f := range fs {
						f.Close()
					}
					got += n
				}
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/impl=conn", func(b *testing.B) {
			x, y, err := fdsend.Socketpair(syscall.SOCK_STREAM)
			if err != nil {
				b.Fatal(err)
			}
			w, r := fdsend.NewConn(x), fdsend.NewConn(y)
			defer w.Close()
			defer r.Close()
			start, done := writer(func() error { return w.WriteMsg(msg, files...) })
			defer close(start)
			b.SetBytes(int64(tc.size))
			b.ReportAllocs()
			for b.Loop() {
				start <- struct{}{}
				data, fs, err := r.ReadMsg()
				if err != nil || len(data) != tc.size || len(fs) != tc.nfiles {
					b.Fatal(len(data), len(fs), err)
				}
				for _, f := range fs {
					f.Close()
				}
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/impl=conn-ints", func(b *testing.B) {
			x, y, err := fdsend.Socketpair(syscall.SOCK_STREAM)
			if err != nil {
				b.Fatal(err)
			}
			w, r := fdsend.NewConn(x), fdsend.NewConn(y)
			defer w.Close()
			defer r.Close()
			ints := make([]any, tc.nfiles)
			for i := range ints {
				ints[i] = int(nullFD)
			}
			start, done := writer(func() error { return w.WriteMsg(msg, ints...) })
			defer close(start)
			b.SetBytes(int64(tc.size))
			b.ReportAllocs()
			var data []byte
			var fds []int
			for b.Loop() {
				start <- struct{}{}
				data, fds, err = r.ReadMsgFDs(data[:0], fds[:0])
				if err != nil || len(data) != tc.size || len(fds) != tc.nfiles {
					b.Fatal(len(data), len(fds), err)
				}
				if err := fdsend.CloseFDs(fds); err != nil {
					b.Fatal(err)
				}
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// writer runs write on a long-lived goroutine once per value sent on start,
// and reports each result on done; closing start ends it.
func writer(write func() error) (start chan struct{}, done chan error) {
	start, done = make(chan struct{}), make(chan error, 1)
	go func() {
		for range start {
			done <- write()
		}
	}()
	return start, done
}

// BenchmarkConnWriters has 8 goroutines write 8-byte messages with one
// integer file on one Conn while the benchmark's goroutine reads them with
// ReadMsgFDs: with the write queue ("queue=on", the default: writers that
// find the lock taken send together, one sendmmsg) and without it.
func BenchmarkConnWriters(b *testing.B) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		b.Fatal(err)
	}
	defer null.Close()
	nullFD := int(null.Fd())
	for _, on := range []bool{true, false} {
		name := "queue=off"
		if on {
			name = "queue=on"
		}
		b.Run(name, func(b *testing.B) {
			fdsend.SetQueueWrites(on)
			defer fdsend.SetQueueWrites(true)
			x, y, err := fdsend.Socketpair(syscall.SOCK_STREAM)
			if err != nil {
				b.Fatal(err)
			}
			w, r := fdsend.NewConn(x), fdsend.NewConn(y)
			defer w.Close()
			defer r.Close()
			const writers = 8
			per := b.N/writers + 1
			errc := make(chan error, writers)
			b.ReportAllocs()
			b.ResetTimer()
			for range writers {
				go func() {
					msg := make([]byte, 8)
					var err error
					for range per {
						if err = w.WriteMsg(msg, nullFD); err != nil {
							break
						}
					}
					errc <- err
				}()
			}
			var data []byte
			var fds []int
			for range per * writers {
				data, fds, err = r.ReadMsgFDs(data[:0], fds[:0])
				if err != nil {
					b.Fatal(err)
				}
				fdsend.CloseFDs(fds)
			}
			b.StopTimer()
			for range writers {
				if err := <-errc; err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
