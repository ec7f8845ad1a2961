//go:build linux

package holder

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdtest"
)

// TestDescribe stores descriptors of many kinds and checks what List says
// each is.
func TestDescribe(t *testing.T) {
	fdtest.Check(t)
	_, path := startServer(t, Config{}, "")
	c := dial(t, path)
	dir := t.TempDir()
	var closers []func() error
	defer func() {
		for _, f := range closers {
			f()
		}
	}()
	want := map[string]string{}
	store := func(name string, v any, kind string) {
		t.Helper()
		if err := c.Store(name, v, 0, false); err != nil {
			t.Fatalf("store %s: %v", name, err)
		}
		want[name] = kind
	}

	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closers = append(closers, tl.Close)
	store("tcp4", tl, "tcp listener "+tl.Addr().String())

	tl6, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	closers = append(closers, tl6.Close)
	store("tcp6", tl6, "tcp listener "+tl6.Addr().String())

	ud, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closers = append(closers, ud.Close)
	store("udp", ud, "udp "+ud.LocalAddr().String())

	tc, err := net.Dial("tcp", tl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	closers = append(closers, tc.Close)
	store("tcpconn", tc, "tcp connected "+tc.LocalAddr().String()+" -> "+tl.Addr().String())

	usock := filepath.Join(dir, "x.sock")
	ul, err := net.Listen("unix", usock)
	if err != nil {
		t.Fatal(err)
	}
	closers = append(closers, ul.Close)
	store("unixl", ul, "unix stream listener "+usock)

	uc, err := net.Dial("unix", usock)
	if err != nil {
		t.Fatal(err)
	}
	closers = append(closers, uc.Close)
	store("unixc", uc, "unix stream connected -> "+usock)

	al, err := net.Listen("unix", "@fdsend-holder-test-"+filepath.Base(dir))
	if err != nil {
		t.Fatal(err)
	}
	closers = append(closers, al.Close)
	store("abstract", al, "unix stream listener @fdsend-holder-test-"+filepath.Base(dir))

	a, b, err := fdsend.Socketpair(syscall.SOCK_DGRAM)
	if err != nil {
		t.Fatal(err)
	}
	closers = append(closers, a.Close, b.Close)
	store("pair", a, "unix dgram connected")

	fpath := filepath.Join(dir, "log.txt")
	f, err := os.Create(fpath)
	if err != nil {
		t.Fatal(err)
	}
	closers = append(closers, f.Close)
	store("file", f, "file "+fpath)

	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	closers = append(closers, d.Close)
	store("dir", d, "directory "+dir)

	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	closers = append(closers, null.Close)
	store("null", null, "character device /dev/null")

	_, w := pipe(t)
	store("pipe", w, "pipe")

	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ff, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	closers = append(closers, ff.Close)
	store("fifo", ff, "fifo "+fifo)

	efd, err := eventfd()
	if err != nil {
		t.Fatal(err)
	}
	closers = append(closers, efd.Close)
	store("eventfd", efd, "eventfd")

	entries, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(want) {
		t.Errorf("%d entries, stored %d", len(entries), len(want))
	}
	for i, e := range entries {
		if i > 0 && entries[i-1].Name >= e.Name {
			t.Errorf("not sorted: %q before %q", entries[i-1].Name, e.Name)
		}
		if e.Kind != want[e.Name] {
			t.Errorf("%s: kind %q, want %q", e.Name, e.Kind, want[e.Name])
		}
		if e.Age < 0 || e.Age > time.Minute || e.ExpiresIn != 0 {
			t.Errorf("%s: age %v, expires in %v", e.Name, e.Age, e.ExpiresIn)
		}
	}
	// A file renamed while held is described by its new path, and a
	// deleted one says so.
	if err := os.Rename(fpath, fpath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "fifo")); err != nil {
		t.Fatal(err)
	}
	entries, err = c.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		switch e.Name {
		case "file":
			if e.Kind != "file "+fpath+".1" {
				t.Errorf("renamed file: %q", e.Kind)
			}
		case "fifo":
			if !strings.HasSuffix(e.Kind, "(deleted)") {
				t.Errorf("deleted fifo: %q", e.Kind)
			}
		}
	}
}

// eventfd returns a new eventfd as a file.
func eventfd() (*os.File, error) {
	fd, _, errno := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_CLOEXEC, 0)
	if errno != 0 {
		return nil, errno
	}
	return os.NewFile(fd, "eventfd"), nil
}

// TestParseRule checks the --allow syntax.
func TestParseRule(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Rule
	}{
		{"uid=1000", Rule{UID: 1000, GID: -1, Ops: AllOps}},
		{"uid=1000:fetch", Rule{UID: 1000, GID: -1, Ops: OpFetch}},
		{"gid=33:store,fetch", Rule{UID: -1, GID: 33, Ops: OpStore | OpFetch}},
		{"uid=nobody:list", Rule{UID: 65534, GID: -1, Ops: OpList}},
		{"gid=nogroup:delete,list", Rule{UID: -1, GID: 65534, Ops: OpList | OpDelete}},
		{"uid=0:", Rule{UID: 0, GID: -1, Ops: AllOps}},
	} {
		got, err := ParseRule(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseRule(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if err == nil {
			back, err := ParseRule(got.String())
			if err != nil || back != got {
				t.Errorf("ParseRule(%q.String() = %q) = %+v, %v", tc.in, got.String(), back, err)
			}
		}
	}
	for _, in := range []string{"", "uid", "uid=", "user=1", "uid=1:steal", "uid=1:list,list", "uid=-1", "uid=99999999999", "uid=no-such-user-here", "gid=no-such-group-here", "uid=1:list:fetch"} {
		if r, err := ParseRule(in); err == nil {
			t.Errorf("ParseRule(%q) = %+v, want an error", in, r)
		} else if !strings.Contains(err.Error(), "holder: rule") {
			t.Errorf("ParseRule(%q): %v does not name the rule", in, err)
		}
	}
	if _, err := ParseRule("uid=1:fly"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("bad operation: %v, want EINVAL", err)
	}
	if got := (OpStore | OpDelete).String(); got != "store,delete" {
		t.Errorf("Op.String = %q", got)
	}
	if got := Op(0).String(); got != "none" {
		t.Errorf("Op(0).String = %q", got)
	}
}

// TestConfigChecked checks that bad configurations are refused.
func TestConfigChecked(t *testing.T) {
	for _, cfg := range []Config{
		{Max: -1},
		{MaxConns: -1},
		{Timeout: -time.Second},
		{Rules: []Rule{{UID: 1, GID: 1, Ops: OpList}}},
		{Rules: []Rule{{UID: -1, GID: -1, Ops: OpList}}},
		{Rules: []Rule{{UID: 1, GID: -1, Ops: 0x80}}},
	} {
		if s, err := Listen(filepath.Join(t.TempDir(), "s"), cfg); err == nil {
			s.Close()
			t.Errorf("Listen with %+v succeeded", cfg)
		} else if !errors.Is(err, syscall.EINVAL) {
			t.Errorf("Listen with %+v: %v, want EINVAL", cfg, err)
		}
	}
}

// TestFitLimits checks how Max, MaxConns and the slots beyond them are
// fitted into the limit on open descriptors: everything the holder can be
// made to hold at once must fit, with the reserve to spare.
func TestFitLimits(t *testing.T) {
	for _, tc := range []struct {
		max, conns, limit  int
		wantMax, wantConns int
	}{
		{1024, 1024, 20000, 1024, 1024},
		{1024, 1024, 0, 1024, 1024},
		{1024, 1024, 2080, 1024, 108},
		{1024, 1024, 1024, 558, 46},
		{3000, 1000, 432, 212, 17},
		{10, 1000, 100, 10, 3},
		{1000, 5, 100, 36, 3},
		{1024, 1024, 128, 50, 4},
		{10, 10, 20, 1, 1},
	} {
		var logged string
		cfg, sl := fitLimits(Config{Max: tc.max, MaxConns: tc.conns, Logf: func(f string, a ...any) { logged = fmt.Sprintf(f, a...) }}, tc.limit)
		if cfg.Max != tc.wantMax || cfg.MaxConns != tc.wantConns {
			t.Errorf("fitLimits(%d, %d, limit %d) = %d, %d; want %d, %d", tc.max, tc.conns, tc.limit, cfg.Max, cfg.MaxConns, tc.wantMax, tc.wantConns)
		}
		need := fdReserve + cfg.Max + servedCost*(cfg.MaxConns+sl.noRights+sl.ownerReserve) + lingerCost*sl.lingers
		if tc.limit >= 64 && need > tc.limit {
			t.Errorf("limit %d: the holder can be made to hold %d descriptors (%+v, slots %+v)", tc.limit, need, cfg, sl)
		}
		asked := fdReserve + tc.max + servedCost*(tc.conns+maxNoRights+ownerReserve) + lingerCost*maxLingers
		if (tc.limit > 0 && asked > tc.limit) != (logged != "") {
			t.Errorf("limit %d: slots %+v, logged %q", tc.limit, sl, logged)
		}
	}
}
