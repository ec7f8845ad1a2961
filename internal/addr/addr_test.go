package addr

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
)

func TestParse(t *testing.T) {
	good := []struct {
		in   string
		want Addr
	}{
		{"8080", Addr{Kind: Any, Port: 8080}},
		{"0", Addr{Kind: Any, Port: 0}},
		{"65535", Addr{Kind: Any, Port: 65535}},
		{"127.0.0.1:80", Addr{Kind: IP, IP: netip.MustParseAddr("127.0.0.1"), Port: 80}},
		{"0.0.0.0:0", Addr{Kind: IP, IP: netip.MustParseAddr("0.0.0.0"), Port: 0}},
		{"[::1]:443", Addr{Kind: IP, IP: netip.MustParseAddr("::1"), Port: 443}},
		{"[::]:443", Addr{Kind: IP, IP: netip.MustParseAddr("::"), Port: 443}},
		{"[fe80::1%lo]:22", Addr{Kind: IP, IP: netip.MustParseAddr("fe80::1%lo"), Port: 22}},
		{"/run/app.sock", Addr{Kind: Path, Name: "/run/app.sock"}},
		{"@app", Addr{Kind: Abstract, Name: "app"}},
		{"@with space", Addr{Kind: Abstract, Name: "with space"}},
	}
	for _, tc := range good {
		got, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		if s := got.String(); s != tc.in {
			t.Errorf("Parse(%q).String() = %q", tc.in, s)
		}
	}
	long := "/" + repeat('a', 107)
	badAddrs := []struct {
		in    string
		errno syscall.Errno
	}{
		{"", syscall.EINVAL},
		{"localhost:80", syscall.EINVAL},
		{"example.com:80", syscall.EINVAL},
		{"80000", syscall.EINVAL},
		{"65536", syscall.EINVAL},
		{"0100", syscall.EINVAL},
		{"-1", syscall.EINVAL},
		{"+80", syscall.EINVAL},
		{"0x50", syscall.EINVAL},
		{" 80", syscall.EINVAL},
		{"1.2.3.4", syscall.EINVAL},
		{"1.2.3.4:", syscall.EINVAL},
		{":80", syscall.EINVAL},
		{"*:80", syscall.EINVAL},
		{"::1:80", syscall.EINVAL},
		{"[::1]", syscall.EINVAL},
		{"[::1]80", syscall.EINVAL},
		{"[127.0.0.1]:80", syscall.EINVAL},
		{"[::ffff:127.0.0.1]:80", syscall.EINVAL},
		{"[nope]:80", syscall.EINVAL},
		{"relative/path", syscall.EINVAL},
		{"./x.sock", syscall.EINVAL},
		{"@", syscall.EINVAL},
		{"/a\x00b", syscall.EINVAL},
		{long, syscall.ENAMETOOLONG},
		{"@" + repeat('x', 108), syscall.ENAMETOOLONG},
		{"vsock:1:2", syscall.EINVAL},
	}
	for _, tc := range badAddrs {
		a, err := Parse(tc.in)
		if err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", tc.in, a)
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Addr != tc.in {
			t.Errorf("Parse(%q): error %v does not name the address", tc.in, err)
		}
		if !errors.Is(err, tc.errno) {
			t.Errorf("Parse(%q): error %v does not wrap %v", tc.in, err, tc.errno)
		}
	}
	if _, err := Parse("/" + repeat('a', 106)); err != nil {
		t.Errorf("a 107-byte path: %v", err)
	}
}

func repeat(c byte, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return string(b)
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"8080", "127.0.0.1:1", "[::1]:2", "/x", "@y", "[fe80::1%eth0]:3", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			return
		}
		b, err := Parse(a.String())
		if err != nil {
			t.Fatalf("Parse(%q) = %+v, but its String %q does not parse: %v", s, a, a.String(), err)
		}
		if a != b {
			t.Fatalf("round trip of %q: %+v then %+v", s, a, b)
		}
	})
}
