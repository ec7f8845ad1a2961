//go:build linux

package fdsend_test

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdtest"
	"golang.org/x/sys/unix"
)

func TestDup(t *testing.T) {
	fdtest.Check(t)
	a, _ := pair(t, syscall.SOCK_STREAM)
	f := tempFile(t, "x")
	for _, v := range []any{a, f, rawFD(t, f), fdHolder{uintptr(rawFD(t, f))}} {
		d, err := fdsend.Dup(v)
		if err != nil {
			t.Fatalf("Dup(%T): %v", v, err)
		}
		fd := rawFD(t, d)
		if want := map[bool]fileID{true: idOf(t, a), false: idOf(t, f)}[v == any(a)]; idOfFD(t, fd) != want {
			t.Errorf("Dup(%T) is another file", v)
		}
		if !isCloexec(t, fd) {
			t.Errorf("Dup(%T) not close-on-exec", v)
		}
		d.Close()
	}
	fd, err := fdsend.DupFD(f, 100)
	if err != nil || fd < 100 {
		t.Fatalf("DupFD(min 100) = %d, %v", fd, err)
	}
	if idOfFD(t, fd) != idOf(t, f) {
		t.Error("DupFD gave another file")
	}
	unix.Close(fd)
	closed, _ := os.Open(os.DevNull)
	closed.Close()
	var ae *fdsend.ArgError
	for _, bad := range []any{nil, &os.File{}, closed, -1, "x"} {
		if _, err := fdsend.Dup(bad); !errors.As(err, &ae) || ae.Arg != "file" {
			t.Errorf("Dup(%T): %v", bad, err)
		}
	}
}
