//go:build linux

package fdsend_test

import (
	"errors"
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend"
)

// FuzzConnReadMsg drives the frame decoder with arbitrary bytes on a real
// socket, sent in two writes that each carry 0 to 7 descriptors: ReadMsg
// never panics, every error is one of the documented kinds, a message is
// never longer than the bytes sent nor has more files than were sent, once
// an error is returned it stays, and no descriptor is left open.
func FuzzConnReadMsg(f *testing.F) {
	f.Add(frame(false, 0, 3), []byte("abc"), uint8(0), uint8(0))
	f.Add(frame(true, 253, 0), []byte{}, uint8(3), uint8(0))
	f.Add(frame(false, 0, 0), frame(false, 0, 1), uint8(0), uint8(1))
	f.Add([]byte("fd\x01\x00"), []byte("\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x05hello"), uint8(0), uint8(0))
	f.Add(frame(false, 1, 0), []byte{}, uint8(1), uint8(0))
	f.Add(frame(false, 2, 2), []byte("hi"), uint8(2), uint8(0))
	f.Add(append(frame(false, 0, 1), 'x'), frame(false, 3, 0), uint8(0), uint8(3))
	null, err := os.Open(os.DevNull)
	if err != nil {
		f.Fatal(err)
	}
	defer null.Close()
	f.Fuzz(func(t *testing.T, a, b []byte, na, nb uint8) {
		na, nb = na%8, nb%8
		if (len(a) == 0 && na > 0) || (len(b) == 0 && nb > 0) {
			return // a stream cannot carry files without a byte
		}
		startFDs := len(openFDs())
		defer func() {
			if n := len(openFDs()); n != startFDs {
				t.Fatalf("%d descriptors open before, %d after", startFDs, n)
			}
		}()
		x, y, err := fdsend.Socketpair(syscall.SOCK_STREAM)
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		c := fdsend.NewConn(y)
		defer c.Close()
		c.SetReadLimits(1<<16, 600)
		input := append(append([]byte{}, a...), b...)
		if len(input) > 1<<16 {
			return
		}
		filesOf := func(n uint8) []any {
			files := make([]any, n)
			for i := range files {
				files[i] = null
			}
			return files
		}
		written := make(chan struct{})
		go func() {
			defer close(written)
			fdsend.SendMsg(x, a, filesOf(na), 0)
			fdsend.SendMsg(x, b, filesOf(nb), 0)
			x.CloseWrite()
		}()
		defer func() { <-written }()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		total, totalFiles := 0, 0
		// Odd inputs are read as numbers: both reads share the framing.
		var fdBuf []int
		for i := 0; ; i++ {
			var data []byte
			var files []*os.File
			var err error
			if (na+nb)%2 == 0 {
				data, files, err = c.ReadMsg()
			} else {
				data, fdBuf, err = c.ReadMsgFDs(nil, fdBuf[:0])
				fdsend.CloseFDs(fdBuf)
				files = make([]*os.File, len(fdBuf)) // counted, not used
			}
			for _, f := range files {
				if f != nil {
					f.Close()
				}
			}
			if err != nil {
				switch {
				case errors.Is(err, fdsend.ErrProtocol), err == io.EOF, err == io.ErrUnexpectedEOF:
				case errors.Is(err, os.ErrDeadlineExceeded):
					t.Fatalf("ReadMsg hung on %q", input)
				default:
					t.Fatalf("unexpected error kind: %v", err)
				}
				if len(files) != 0 {
					t.Fatal("files with an error")
				}
				if _, _, err2 := c.ReadMsg(); err2 == nil {
					t.Fatal("the error did not stay")
				}
				return
			}
			totalFiles += len(files)
			if totalFiles > int(na)+int(nb) {
				t.Fatalf("%d files from %d sent", totalFiles, na+nb)
			}
			total += 16 + len(data)
			if total > len(input) {
				t.Fatalf("read %d bytes of messages from %d bytes", total, len(input))
			}
		}
	})
}
