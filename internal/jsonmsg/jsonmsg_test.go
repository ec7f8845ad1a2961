//go:build linux

package jsonmsg

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdtest"
)

type msg struct {
	Op   string `json:"op"`
	Name string `json:"name"`
}

func pair(t *testing.T) (*fdsend.Conn, *fdsend.Conn) {
	t.Helper()
	a, b, err := fdsend.Socketpair(syscall.SOCK_STREAM)
	if err != nil {
		t.Fatal(err)
	}
	ca, cb := fdsend.NewConn(a), fdsend.NewConn(b)
	t.Cleanup(func() { ca.Close(); cb.Close() })
	return ca, cb
}

func TestRoundTrip(t *testing.T) {
	fdtest.Check(t)
	a, b := pair(t)
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if err := Write(a, msg{Op: "store", Name: "web"}, null, null); err != nil {
		t.Fatal(err)
	}
	var m msg
	files, err := Read(b, &m)
	if err != nil {
		t.Fatal(err)
	}
	defer CloseAll(files)
	if m != (msg{Op: "store", Name: "web"}) || len(files) != 2 {
		t.Fatalf("got %+v with %d files", m, len(files))
	}
}

// A message that does not decode leaves none of its descriptors open.
func TestMalformedClosesFiles(t *testing.T) {
	fdtest.Check(t)
	a, b := pair(t)
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	for _, data := range []string{"not json", `["an","array"]`, `{"op":1}`} {
		if err := a.WriteMsg([]byte(data), null, null, null); err != nil {
			t.Fatal(err)
		}
		var m msg
		files, err := Read(b, &m)
		if !errors.Is(err, ErrMalformed) || files != nil {
			t.Fatalf("Read(%q) = %d files, %v; want ErrMalformed and none", data, len(files), err)
		}
	}
}

// Errors of the Conn come back as they are.
func TestConnError(t *testing.T) {
	a, b := pair(t)
	a.Close()
	var m msg
	if _, err := Read(b, &m); err == nil || errors.Is(err, ErrMalformed) {
		t.Fatalf("Read after the peer closed: %v", err)
	}
}
