//go:build linux

package fdsend

import (
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzCmsgParse drives the control-message parser with arbitrary bytes: it
// never panics, never returns data outside the buffer, and never yields more
// descriptors than the bytes can hold.
func FuzzCmsgParse(f *testing.F) {
	f.Add(unix.UnixRights(3, 4, 5))
	f.Add(append(unix.UnixRights(3), unix.UnixRights(7, 8)...))
	other := unix.UnixRights(1, 2, 3)
	other[cmsgTypeOff] = 99 // an unrelated control message before the rights
	f.Add(append(other, unix.UnixRights(9)...))
	f.Add([]byte{})
	f.Add(make([]byte, cmsgHdrSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		rest := b
		total := 0
		for i := 0; ; i++ {
			var data []byte
			var ok bool
			_, _, data, rest, ok = nextCmsg(rest)
			if !ok {
				break
			}
			if i > len(b) {
				t.Fatal("parser does not advance")
			}
			if len(data) > 0 && !within(b, data) {
				t.Fatal("data outside the buffer")
			}
			total += len(data) / 4
			for j := 0; j < len(data)/4; j++ {
				_ = fdAt(data, j)
			}
		}
		if total > len(b)/4 {
			t.Fatalf("%d descriptors from %d bytes", total, len(b))
		}
	})
}

// within reports whether sub lies inside b.
func within(b, sub []byte) bool {
	if len(b) == 0 {
		return false
	}
	for i := range b {
		if &b[i] == &sub[0] {
			return i+len(sub) <= len(b)
		}
	}
	return false
}

// The parser reads headers the kernel would build, and stops at a lie.
func TestCmsgIter(t *testing.T) {
	b := append(unix.UnixRights(3, 4, 5), unix.UnixRights(6, 7)...)
	rest := b
	var got []int
	for {
		var level, typ int32
		var data []byte
		var ok bool
		level, typ, data, rest, ok = nextCmsg(rest)
		if !ok {
			break
		}
		if level != unix.SOL_SOCKET || typ != unix.SCM_RIGHTS {
			t.Fatalf("level %d type %d", level, typ)
		}
		for i := 0; i < len(data)/4; i++ {
			got = append(got, fdAt(data, i))
		}
	}
	if len(got) != 5 || got[0] != 3 || got[4] != 7 {
		t.Fatalf("got %v", got)
	}
	// A header claiming more than the buffer holds (darwin's truncation)
	// is cut to the buffer, and ends the walk.
	bad := unix.UnixRights(3, 4)
	bad[0] = 200
	_, _, data, rest, ok := nextCmsg(bad)
	if !ok || len(data) != 8 || fdAt(data, 1) != 4 || rest != nil {
		t.Fatalf("long header: ok=%v data=%v rest=%v", ok, data, rest)
	}
	// putRightsHeader builds what the kernel expects.
	buf := make([]byte, oobSendMax)
	space := putRightsHeader(buf, 2)
	putFD(buf, 0, 10)
	putFD(buf, 1, 11)
	want := unix.UnixRights(10, 11)
	if string(buf[:space]) != string(want) {
		t.Fatalf("built %x, want %x", buf[:space], want)
	}
}
