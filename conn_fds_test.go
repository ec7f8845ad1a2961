//go:build linux

package fdsend_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdtest"
)

// ReadMsgFDs returns a message's descriptors as numbers, in order,
// close-on-exec, appended to the caller's slices; 300 descriptors span two
// frames. Integer and file arguments to WriteMsg, and ReadMsg and
// ReadMsgFDs on one stream, mix freely.
func TestConnReadMsgFDsRoundTrip(t *testing.T) {
	fdtest.Check(t)
	a, b, _, _ := connPair(t)
	files, ids := identFiles(t, 300)
	ints := make([]any, len(files))
	for i, f := range files {
		ints[i] = rawFD(t, f)
	}
	a.SetDeadline(time.Now().Add(10 * time.Second))
	b.SetDeadline(time.Now().Add(10 * time.Second))
	data := []byte("pre:")
	fds := []int{-1}
	for _, n := range []int{0, 1, 253, 300} {
		msg := []byte(fmt.Sprintf("message with %d", n))
		errc := make(chan error, 1)
		go func() { errc <- a.WriteMsg(msg, ints[:n]...) }()
		got, gotFDs, err := b.ReadMsgFDs(data, fds)
		if werr := <-errc; werr != nil {
			t.Fatal(werr)
		}
		if err != nil {
			t.Fatalf("%d descriptors: %v", n, err)
		}
		if !bytes.Equal(got, append([]byte("pre:"), msg...)) || len(gotFDs) != n+1 || gotFDs[0] != -1 {
			fdsend.CloseFDs(gotFDs[1:])
			t.Fatalf("%d descriptors: got %q and %d numbers", n, got, len(gotFDs)-1)
		}
		for i, fd := range gotFDs[1:] {
			if id := idOfFD(t, fd); ids[id] != i {
				t.Errorf("%d descriptors: number %d is file %d, want %d", n, i, ids[id], i)
			}
			if !isCloexec(t, fd) {
				t.Errorf("%d descriptors: descriptor %d is not close-on-exec", n, fd)
			}
		}
		if err := fdsend.CloseFDs(gotFDs[1:]); err != nil {
			t.Fatal(err)
		}
		// The same message through ReadMsg, written with files.
		fs := make([]any, n)
		for i := range fs {
			fs[i] = files[i]
		}
		go func() { errc <- a.WriteMsg(msg, fs...) }()
		d, rf, err := b.ReadMsg()
		if werr := <-errc; werr != nil {
			t.Fatal(werr)
		}
		if err != nil || !bytes.Equal(d, msg) || len(rf) != n {
			closeAll(rf)
			t.Fatalf("ReadMsg after ReadMsgFDs, %d files: %q %d %v", n, d, len(rf), err)
		}
		for i, f := range rf {
			if id, _ := statID(f); ids[id] != i {
				t.Errorf("ReadMsg, %d files: file %d is %d", n, i, ids[id])
			}
		}
		closeAll(rf)
	}
}

// The slices grow as append's do when the message does not fit; a message
// that fits is read into the caller's array.
func TestConnReadMsgFDsGrows(t *testing.T) {
	fdtest.Check(t)
	a, b, _, _ := connPair(t)
	null := devNulls(t, 5)
	msg := bytes.Repeat([]byte("x"), 100)
	for _, c := range []struct{ dataCap, fdsCap int }{{0, 0}, {10, 1}, {100, 5}, {200, 8}} {
		if err := a.WriteMsg(msg, null...); err != nil {
			t.Fatal(err)
		}
		data, fds := make([]byte, 0, c.dataCap), make([]int, 0, c.fdsCap)
		got, gotFDs, err := b.ReadMsgFDs(data, fds)
		if err != nil || !bytes.Equal(got, msg) || len(gotFDs) != 5 {
			t.Fatalf("caps %v: %d bytes, %d numbers, %v", c, len(got), len(gotFDs), err)
		}
		if fits := c.dataCap >= len(msg); fits != (c.dataCap > 0 && &got[0] == &data[:1][0]) {
			t.Errorf("caps %v: data in the caller's array: %v, want %v", c, !fits, fits)
		}
		if err := fdsend.CloseFDs(gotFDs); err != nil {
			t.Fatal(err)
		}
	}
}

// Over a read limit, ReadMsgFDs fails with ErrProtocol, adds nothing to the
// slices, and closes every descriptor; the error stays.
func TestConnReadMsgFDsLimits(t *testing.T) {
	for _, c := range []struct {
		name     string
		maxBytes int64
		maxFiles int
		size     int
		nfiles   int
	}{
		{"files", 100, 2, 1, 3},
		{"files zero", 100, 0, 1, 1},
		{"files two frames", 100, 260, 1, 300},
		{"bytes", 10, 10, 11, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			fdtest.Check(t)
			a, b, _, _ := connPair(t)
			b.SetReadLimits(c.maxBytes, c.maxFiles)
			files := devNulls(t, c.nfiles)
			errc := make(chan error, 1)
			go func() { errc <- a.WriteMsg(make([]byte, c.size), files...) }()
			b.SetReadDeadline(time.Now().Add(5 * time.Second))
			data, fds := []byte("keep"), []int{7}
			got, gotFDs, err := b.ReadMsgFDs(data, fds)
			if !errors.Is(err, fdsend.ErrProtocol) {
				t.Fatalf("got %v, want ErrProtocol", err)
			}
			if string(got) != "keep" || !slices.Equal(gotFDs, []int{7}) {
				t.Errorf("with an error: %q %v, want the slices as given", got, gotFDs)
			}
			if _, _, err := b.ReadMsgFDs(nil, nil); !errors.Is(err, fdsend.ErrProtocol) {
				t.Errorf("error did not stay: %v", err)
			}
			b.Close() // the writer of a message over the limit may be blocked
			<-errc
		})
	}
}

// A read that times out mid-message loses nothing and leaves the caller's
// buffer alone once it has returned: the next call, with another buffer,
// goes on with the same message.
func TestConnReadMsgFDsDeadlineMidMessage(t *testing.T) {
	fdtest.Check(t)
	_, b, ra, _ := connPair(t)
	whole := append(frame(false, 2, 6), "abcdef"...)
	rawWrite(t, ra, whole[:19], devNulls(t, 2)...)
	first := make([]byte, 0, 64)
	b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, _, err := b.ReadMsgFDs(first, nil); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadMsgFDs: %v", err)
	}
	full := first[:cap(first)]
	for i := range full {
		full[i] = 'z'
	}
	rawWrite(t, ra, whole[19:])
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	data, fds, err := b.ReadMsgFDs(make([]byte, 0, 64), nil)
	if err != nil || string(data) != "abcdef" || len(fds) != 2 {
		fdsend.CloseFDs(fds)
		t.Fatalf("after the timeout: %q %d %v", data, len(fds), err)
	}
	fdsend.CloseFDs(fds)
	if !bytes.Equal(full, bytes.Repeat([]byte("z"), cap(first))) {
		t.Errorf("the first call's buffer was written after it returned: %q", full)
	}
}

// Close unblocks ReadMsgFDs with net.ErrClosed and closes the descriptors of
// the unfinished message.
func TestConnReadMsgFDsCloseUnblocks(t *testing.T) {
	fdtest.Check(t)
	_, b, ra, _ := connPair(t)
	rawWrite(t, ra, frame(false, 3, 100), devNulls(t, 3)...)
	done := make(chan error, 1)
	go func() {
		_, fds, err := b.ReadMsgFDs(nil, nil)
		fdsend.CloseFDs(fds)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	b.Close()
	awaitErr(t, done, net.ErrClosed, "Close did not unblock ReadMsgFDs")
}
