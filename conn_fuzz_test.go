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
// socket: ReadMsg never panics, every error is one of the documented kinds,
// a message is never longer than the bytes sent, and once an error is
// returned it stays.
func FuzzConnReadMsg(f *testing.F) {
	f.Add(frame(false, 0, 3), []byte("abc"))
	f.Add(frame(true, 253, 0), []byte{})
	f.Add(frame(false, 0, 0), frame(false, 0, 1))
	f.Add([]byte("fd\x01\x00"), []byte("\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x05hello"))
	f.Add(frame(false, 1, 0), []byte{})
	f.Fuzz(func(t *testing.T, a, b []byte) {
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
		go func() {
			x.Write(a)
			x.Write(b)
			x.CloseWrite()
		}()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		total := 0
		for i := 0; ; i++ {
			data, files, err := c.ReadMsg()
			for _, f := range files {
				f.Close()
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
			if len(files) != 0 {
				t.Fatal("files from a stream that carried none")
			}
			total += 16 + len(data)
			if total > len(input) {
				t.Fatalf("read %d bytes of messages from %d bytes", total, len(input))
			}
		}
	})
}
