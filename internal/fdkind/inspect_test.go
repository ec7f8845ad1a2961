//go:build linux

package fdkind

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fdsend/fdsend/internal/fdtest"
	"golang.org/x/sys/unix"
)

// TestFormatAddr checks the one address formatter.
func TestFormatAddr(t *testing.T) {
	for _, tc := range []struct {
		sa   unix.Sockaddr
		want string
	}{
		{&unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: 8080}, "127.0.0.1:8080"},
		{&unix.SockaddrInet4{}, "0.0.0.0:0"},
		{&unix.SockaddrInet6{Addr: [16]byte{15: 1}, Port: 443}, "[::1]:443"},
		{&unix.SockaddrInet6{Addr: [16]byte{0: 0xfe, 1: 0x80, 15: 1}, Port: 53, ZoneId: 2}, "[fe80::1%2]:53"},
		{&unix.SockaddrInet6{Addr: [16]byte{10: 0xff, 11: 0xff, 12: 10, 15: 1}, Port: 1}, "[::ffff:10.0.0.1]:1"},
		{&unix.SockaddrUnix{Name: "/run/x.sock"}, "/run/x.sock"},
		{&unix.SockaddrUnix{Name: "@abstract"}, "@abstract"},
		{&unix.SockaddrUnix{Name: "\x00abstract"}, "@abstract"},
		{&unix.SockaddrUnix{Name: "@"}, ""},
		{&unix.SockaddrUnix{}, ""},
		{nil, ""},
	} {
		if got := FormatAddr(tc.sa); got != tc.want {
			t.Errorf("FormatAddr(%#v) = %q, want %q", tc.sa, got, tc.want)
		}
	}
}

// TestInspect inspects real descriptors and checks both renderings of
// each: the kinds the tests of activation and holder do not reach.
func TestInspect(t *testing.T) {
	fdtest.Check(t)
	dir := t.TempDir()
	link := filepath.Join(dir, "link")
	if err := os.Symlink("nowhere", link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name            string
		open            func() (int, error)
		short, sentence string
		kind            Kind
	}{
		{"unbound tcp", func() (int, error) {
			return unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		}, "tcp 0.0.0.0:0", "an unconnected IPv4 stream socket", File},
		{"unbound unix seqpacket", func() (int, error) {
			return unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		}, "unix seqpacket", "an unconnected Unix seqpacket socket", File},
		{"netlink", func() (int, error) {
			return unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		}, "netlink dgram", "a datagram socket", Packet},
		{"symlink", func() (int, error) {
			return unix.Open(link, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}, "file of type 0120000 " + link, "a symbolic link", File},
	} {
		fd, err := tc.open()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		f := os.NewFile(uintptr(fd), tc.name)
		d, err := Inspect(f)
		if err != nil {
			t.Errorf("%s: Inspect: %v", tc.name, err)
		} else if got := d.String(); got != tc.short {
			t.Errorf("%s: String = %q, want %q", tc.name, got, tc.short)
		}
		if info, err := Of(f); err != nil || info.Desc != tc.sentence || info.Kind != tc.kind {
			t.Errorf("%s: Of = %+v, %v; want %q, %v", tc.name, info, err, tc.sentence, tc.kind)
		}
		f.Close()
	}

	// A closed file: nothing to learn, and both renderings say so.
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = Inspect(f)
	if err == nil {
		t.Fatal("Inspect(closed) succeeded")
	}
	if got, want := Describe(f), "unknown ("+err.Error()+")"; got != want {
		t.Errorf("Describe(closed) = %q, want %q", got, want)
	}
	if _, oerr := Of(f); oerr == nil || oerr.Error() != err.Error() {
		t.Errorf("Of(closed) = %v, want %v", oerr, err)
	}
}
