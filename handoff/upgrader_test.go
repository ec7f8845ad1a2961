//go:build linux

package handoff

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdtest"
	"github.com/fdsend/fdsend/internal/jsonmsg"
)

// open opens an Upgrader at path, closed when the test ends.
func open(t *testing.T, cfg Config) *Upgrader {
	t.Helper()
	u, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { u.Close() })
	return u
}

// listen is u.Listen that fails the test on error; the listener is closed
// when the test ends.
func listen(t *testing.T, u *Upgrader, name, network, addr string) net.Listener {
	t.Helper()
	l, err := u.Listen(name, network, addr)
	if err != nil {
		t.Fatalf("Listen(%q, %q, %q): %v", name, network, addr, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func ready(t *testing.T, u *Upgrader) {
	t.Helper()
	if err := u.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
}

// closedWithin reports whether ch closes within d.
func closedWithin(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

// acceptsOn checks that a connection to l's address is accepted by l.
func acceptsOn(t *testing.T, l net.Listener) {
	t.Helper()
	c, err := net.DialTimeout(l.Addr().Network(), l.Addr().String(), 2*time.Second)
	if err != nil {
		t.Fatalf("dial %v: %v", l.Addr(), err)
	}
	defer c.Close()
	type deadliner interface{ SetDeadline(time.Time) error }
	l.(deadliner).SetDeadline(time.Now().Add(2 * time.Second))
	a, err := l.Accept()
	if err != nil {
		t.Fatalf("accept on %v: %v", l.Addr(), err)
	}
	a.Close()
	l.(deadliner).SetDeadline(time.Time{})
}

func TestFirstInstance(t *testing.T) {
	fdtest.Check(t)
	path := filepath.Join(shortDir(t), "h.sock")
	u := open(t, Config{Path: path})
	l := listen(t, u, "web", "tcp", "127.0.0.1:0")
	if u.Inherited("web") {
		t.Error("Inherited(web) with no older instance")
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("hand-off point exists before Ready: %v", err)
	}
	ready(t, u)
	st, err := os.Lstat(path)
	if err != nil || st.Mode().Type() != fs.ModeSocket || st.Mode().Perm() != 0o600 {
		t.Fatalf("hand-off point after Ready: %v %v", st.Mode(), err)
	}
	if st, err := os.Stat(lockPath(path)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("lock file: %v %v", st, err)
	}
	if err := u.Ready(); err == nil {
		t.Error("second Ready succeeded")
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("hand-off point left after Close: %v", err)
	}
	acceptsOn(t, l) // Close left the caller's listener alone
	if _, err := u.Listen("x", "tcp", "127.0.0.1:0"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Listen after Close: %v", err)
	}
}

func TestHandOver(t *testing.T) {
	fdtest.Check(t)
	dir := shortDir(t)
	path := filepath.Join(dir, "h.sock")
	unixAddr := filepath.Join(dir, "admin.sock")

	a := open(t, Config{Path: path})
	aWeb := listen(t, a, "web", "tcp", "127.0.0.1:0")
	aAdmin := listen(t, a, "admin", "unix", unixAddr)
	aDNS, err := a.ListenPacket("dns", "udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer aDNS.Close()
	state, err := a.File("state", func() (*os.File, error) {
		return os.CreateTemp(dir, "state")
	})
	if err != nil {
		t.Fatal(err)
	}
	defer state.Close()
	ready(t, a)

	b := open(t, Config{Path: path})
	bWeb := listen(t, b, "web", "tcp", "127.0.0.1:0")
	bAdmin := listen(t, b, "admin", "unix", unixAddr)
	bDNS, err := b.ListenPacket("dns", "udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer bDNS.Close()
	bState, err := b.File("state", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bState.Close()
	for _, name := range []string{"web", "admin", "dns", "state"} {
		if !b.Inherited(name) {
			t.Errorf("%s not inherited", name)
		}
	}
	if bWeb.Addr().String() != aWeb.Addr().String() || bDNS.LocalAddr().String() != aDNS.LocalAddr().String() {
		t.Errorf("not the same sockets: web %v/%v dns %v/%v", aWeb.Addr(), bWeb.Addr(), aDNS.LocalAddr(), bDNS.LocalAddr())
	}
	sa, _ := state.Stat()
	sb, _ := bState.Stat()
	if !os.SameFile(sa, sb) {
		t.Error("state: not the same file")
	}

	// The received listener is pollable: a deadline works.
	bWeb.(*net.TCPListener).SetDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := bWeb.Accept(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Accept with a deadline: %v", err)
	}
	bWeb.(*net.TCPListener).SetDeadline(time.Time{})
	bDNS.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, _, err := bDNS.ReadFrom(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("ReadFrom with a deadline: %v", err)
	}

	// Until Ready, the old instance is untouched.
	if closedWithin(a.Draining(), 50*time.Millisecond) {
		t.Fatal("old instance draining before Ready")
	}
	acceptsOn(t, aWeb)

	ready(t, b)
	if !closedWithin(a.Draining(), 2*time.Second) {
		t.Fatal("old instance not told to drain")
	}
	// The old instance closes everything; the new one keeps serving, the
	// Unix socket file included.
	aWeb.Close()
	aAdmin.Close()
	aDNS.Close()
	state.Close()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(unixAddr); err != nil {
		t.Fatalf("the old instance's Close removed the handed-over socket file: %v", err)
	}
	acceptsOn(t, bWeb)
	acceptsOn(t, bAdmin)
	if st, err := os.Lstat(path); err != nil || st.Mode().Type() != fs.ModeSocket {
		t.Fatalf("hand-off point after the old instance closed: %v", err)
	}
	// The new instance owns the Unix socket file now.
	bAdmin.Close()
	if _, err := os.Lstat(unixAddr); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("new instance's Close left the Unix socket file: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("hand-off point left: %v", err)
	}
}

func TestNamesBindNotOrder(t *testing.T) {
	fdtest.Check(t)
	path := filepath.Join(shortDir(t), "h.sock")
	a := open(t, Config{Path: path})
	const n = 50
	addrs := map[string]string{}
	for i := range n {
		name := fmt.Sprintf("l%d", i)
		addrs[name] = listen(t, a, name, "tcp", "127.0.0.1:0").Addr().String()
	}
	moved := listen(t, a, "moved", "tcp", "127.0.0.1:0")
	listen(t, a, "stream", "tcp", "127.0.0.1:0")
	ready(t, a)

	b := open(t, Config{Path: path})
	var eps []Endpoint
	for name, addr := range addrs { // map order: random
		eps = append(eps, Endpoint{Name: name, Network: "tcp", Address: addr}) // the bound address matches too
	}
	rand.Shuffle(len(eps), func(i, j int) { eps[i], eps[j] = eps[j], eps[i] })
	eps = append(eps, Endpoint{Name: "extra", Network: "tcp", Address: "127.0.0.1:0"})
	eps = append(eps, Endpoint{Name: "moved", Network: "tcp", Address: "127.0.0.2:0"})
	ls, err := b.ListenAll(eps)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		defer l.Close()
	}
	for i, ep := range eps[:n] {
		if got := ls[i].Addr().String(); got != addrs[ep.Name] || !b.Inherited(ep.Name) {
			t.Errorf("%s: got %s (inherited %v), the old instance's is %s", ep.Name, got, b.Inherited(ep.Name), addrs[ep.Name])
		}
	}
	if b.Inherited("extra") || b.Inherited("moved") {
		t.Error("a name the old instance lacks, or with another address, was inherited")
	}
	if got := ls[n+1].Addr().String(); got == moved.Addr().String() || !strings.HasPrefix(got, "127.0.0.2:") {
		t.Errorf("moved: %s", got)
	}
	// Same name, other kind: opened afresh.
	pc, err := b.ListenPacket("stream", "udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if b.Inherited("stream") {
		t.Error("a TCP listener was handed over for a UDP socket")
	}
	// Names: checked, and registered once.
	if _, err := b.Listen("a:b", "tcp", "127.0.0.1:0"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("bad name: %v", err)
	}
	if _, err := b.Listen("extra", "tcp", "127.0.0.1:0"); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("name twice: %v", err)
	}
	if _, err := b.ListenAll([]Endpoint{{"d", "tcp", "127.0.0.1:0"}, {"d", "tcp", "127.0.0.1:0"}}); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("name twice in one call: %v", err)
	}
	// A failed ListenAll registers nothing and closes what it took.
	if _, err := b.ListenAll([]Endpoint{{"e1", "tcp", "127.0.0.1:0"}, {"e2", "tcp", "256.0.0.1:0"}}); err == nil {
		t.Error("ListenAll with a bad address succeeded")
	}
	if l, err := b.Listen("e1", "tcp", "127.0.0.1:0"); err != nil {
		t.Errorf("name of a failed ListenAll still registered: %v", err)
	} else {
		l.Close()
	}
	if _, err := b.File("nothing", nil); !errors.Is(err, ErrNotInherited) {
		t.Errorf("File without open: %v", err)
	}
}

func TestSuccessorAbandons(t *testing.T) {
	fdtest.Check(t)
	path := filepath.Join(shortDir(t), "h.sock")
	a := open(t, Config{Path: path})
	aWeb := listen(t, a, "web", "tcp", "127.0.0.1:0")
	ready(t, a)
	st0, _ := os.Lstat(path)

	b := open(t, Config{Path: path})
	bWeb := listen(t, b, "web", "tcp", "127.0.0.1:0")
	if !b.Inherited("web") {
		t.Fatal("not inherited")
	}
	bWeb.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Ready(); err == nil {
		t.Error("Ready after Close succeeded")
	}
	if closedWithin(a.Draining(), 50*time.Millisecond) {
		t.Fatal("old instance draining after an abandoned upgrade")
	}
	if st, err := os.Lstat(path); err != nil || !os.SameFile(st, st0) {
		t.Fatal("hand-off point changed by an abandoned upgrade")
	}
	acceptsOn(t, aWeb)

	c := open(t, Config{Path: path, LockTimeout: time.Second})
	listen(t, c, "web", "tcp", "127.0.0.1:0")
	if !c.Inherited("web") {
		t.Error("the next upgrade did not find the old instance")
	}
	ready(t, c)
	if !closedWithin(a.Draining(), 2*time.Second) {
		t.Error("old instance not draining")
	}
}

func TestReadyTimeout(t *testing.T) {
	fdtest.Check(t)
	path := filepath.Join(shortDir(t), "h.sock")

	t.Run("old side", func(t *testing.T) {
		a := open(t, Config{Path: path, ReadyTimeout: 300 * time.Millisecond})
		aWeb := listen(t, a, "web", "tcp", "127.0.0.1:0")
		ready(t, a)
		b := open(t, Config{Path: path})
		listen(t, b, "web", "tcp", "127.0.0.1:0")
		time.Sleep(500 * time.Millisecond)
		err := b.Ready()
		if err == nil || !strings.Contains(err.Error(), "not ready within") {
			t.Fatalf("Ready after the old instance's timeout: %v", err)
		}
		if closedWithin(a.Draining(), 50*time.Millisecond) {
			t.Fatal("old instance draining")
		}
		acceptsOn(t, aWeb)
		// The lock is free again and the old instance answers.
		c := open(t, Config{Path: path, LockTimeout: 100 * time.Millisecond})
		listen(t, c, "web", "tcp", "127.0.0.1:0")
		if !c.Inherited("web") {
			t.Error("old instance no longer answers")
		}
		c.Close()
		a.Close()
	})

	t.Run("new side", func(t *testing.T) {
		b := open(t, Config{Path: path, ReadyTimeout: 200 * time.Millisecond})
		time.Sleep(300 * time.Millisecond)
		if err := b.Ready(); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Ready after its own timeout: %v", err)
		}
		if _, err := b.Listen("web", "tcp", "127.0.0.1:0"); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Listen after the timeout: %v", err)
		}
		c := open(t, Config{Path: path, LockTimeout: 100 * time.Millisecond})
		c.Close()
	})
}

func TestLockContention(t *testing.T) {
	fdtest.Check(t)
	path := filepath.Join(shortDir(t), "h.sock")
	a := open(t, Config{Path: path})
	listen(t, a, "web", "tcp", "127.0.0.1:0")

	start := time.Now()
	_, err := Open(Config{Path: path, LockTimeout: 300 * time.Millisecond})
	waited := time.Since(start)
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("second Open: %v", err)
	}
	if waited < 300*time.Millisecond {
		t.Errorf("gave up after %v", waited)
	}
	want := fmt.Sprintf("holds %s (process %d) and did not finish within 300ms", lockPath(path), os.Getpid())
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}

	// A waiting upgrade goes ahead once the first is ready, and talks to it.
	type result struct {
		u   *Upgrader
		err error
	}
	ch := make(chan result, 1)
	go func() {
		u, err := Open(Config{Path: path, LockTimeout: 5 * time.Second})
		ch <- result{u, err}
	}()
	time.Sleep(200 * time.Millisecond)
	select {
	case r := <-ch:
		t.Fatalf("third Open did not wait: %v", r.err)
	default:
	}
	ready(t, a)
	var r result
	select {
	case r = <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("third Open still waiting")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.u.Close()
	l := listen(t, r.u, "web", "tcp", "127.0.0.1:0")
	if !r.u.Inherited("web") {
		t.Errorf("third instance did not take from the first: %v", l.Addr())
	}
}

func TestPointChecks(t *testing.T) {
	fdtest.Check(t)
	dir := shortDir(t)

	// A regular file at the path is refused and left alone.
	path := filepath.Join(dir, "file")
	os.WriteFile(path, []byte("keep"), 0o644)
	if _, err := Open(Config{Path: path}); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("Open on a regular file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "keep" {
		t.Error("regular file changed")
	}

	// A socket nobody listens on is a crashed instance's: replaced.
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	u := open(t, Config{Path: stale})
	ready(t, u)
	if c, err := net.Dial("unix", stale); err != nil {
		t.Errorf("stale socket not replaced: %v", err)
	} else {
		c.Close()
	}
	u.Close()

	// A stale Unix socket file at a listening address is replaced too.
	addr := filepath.Join(dir, "svc.sock")
	l, _ = net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
	l.SetUnlinkOnClose(false)
	l.Close()
	u = open(t, Config{Path: filepath.Join(dir, "h2.sock")})
	sl := listen(t, u, "svc", "unix", addr)
	acceptsOn(t, sl)
	u.Close()

	for _, bad := range []Config{
		{},
		{Path: "@abstract"},
		{Path: "/" + strings.Repeat("x", 100)},
		{Path: path, Mode: os.ModeDir | 0o600},
		{Path: path, LockTimeout: -1},
	} {
		if _, err := Open(bad); err == nil {
			t.Errorf("Open(%+v) succeeded", bad)
		}
	}
}

// TestDieAfterRename: a successor that renames its socket over the point
// and dies before saying ready leaves the point to the old instance, which
// takes it back.
func TestDieAfterRename(t *testing.T) {
	fdtest.Check(t)
	path := filepath.Join(shortDir(t), "h.sock")
	a := open(t, Config{Path: path})
	aWeb := listen(t, a, "web", "tcp", "127.0.0.1:0")
	ready(t, a)

	cmd := childCmd("", "renameAndDie", "HANDOFF_POINT="+path, "HANDOFF_ADDR=127.0.0.1:0")
	err := startWait(cmd, 10*time.Second)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Fatalf("child: %v", err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for !a.ownsPoint() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !a.ownsPoint() {
		t.Fatal("old instance did not take the hand-off point back")
	}
	if closedWithin(a.Draining(), 10*time.Millisecond) {
		t.Fatal("old instance draining")
	}
	acceptsOn(t, aWeb)
	b := open(t, Config{Path: path, LockTimeout: 2 * time.Second})
	listen(t, b, "web", "tcp", "127.0.0.1:0")
	if !b.Inherited("web") {
		t.Error("next upgrade did not reach the old instance")
	}
}

// TestHostilePeers: garbage, lies and misuse on the hand-off socket are
// answered or dropped, and the old instance serves on, leaking nothing.
func TestHostilePeers(t *testing.T) {
	fdtest.Check(t)
	path := filepath.Join(shortDir(t), "h.sock")
	a := open(t, Config{Path: path})
	listen(t, a, "web", "tcp", "127.0.0.1:0")
	ready(t, a)

	dial := func() *fdsend.Conn {
		c, err := fdsend.Dial(path)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		m, files, err := receive(c)
		jsonmsg.CloseAll(files)
		if err != nil || m.Op != opHello || m.PID != os.Getpid() {
			t.Fatalf("greeting: %+v %v", m, err)
		}
		return c
	}
	// expectDrop sends data (with files) and expects an error answer or
	// the connection closed.
	expectDrop := func(name string, data []byte, files ...any) {
		c := dial()
		defer c.Close()
		if err := c.WriteMsg(data, files...); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for {
			m, fs, err := receive(c)
			jsonmsg.CloseAll(fs)
			if err != nil {
				return // dropped
			}
			if m.Op != opError {
				t.Errorf("%s: answered %+v", name, m)
			}
		}
	}
	null, _ := os.Open(os.DevNull)
	defer null.Close()
	expectDrop("not JSON", []byte("\x00\xffgarbage"))
	expectDrop("no op", []byte(`{}`))
	expectDrop("unknown op", []byte(`{"op":"gimme"}`))
	expectDrop("ready without prepare", []byte(`{"op":"ready"}`))
	expectDrop("with files", []byte(`{"op":"take","want":[]}`), null, null)
	expectDrop("bad name", []byte(`{"op":"take","want":[{"name":"a:b","kind":"listener"}]}`))
	expectDrop("bad kind", []byte(`{"op":"take","want":[{"name":"web","kind":"pipe"}]}`))
	expectDrop("twice", []byte(`{"op":"take","want":[{"name":"web","kind":"listener"},{"name":"web","kind":"listener"}]}`))
	var many []want
	for i := range maxWantPerRequest + 1 {
		many = append(many, want{Name: "n" + strconv.Itoa(i), Kind: kindListener})
	}
	tooMany, _ := json.Marshal(message{Op: opTake, Want: many})
	expectDrop("too many", tooMany)

	// Raw bytes that are not even a frame.
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.Copy(io.Discard, c) // the greeting, then EOF
	c.Close()

	// A peer that connects and says nothing does not block the next one.
	idle := dial()
	defer idle.Close()

	// A second prepare while one is in progress is refused.
	p1 := dial()
	defer p1.Close()
	if m, err := (&Upgrader{}).exchange(p1, message{Op: opPrepare}); err != nil || m.Op != opPrepared {
		t.Fatalf("prepare: %+v %v", m, err)
	}
	p2 := dial()
	if m, err := (&Upgrader{}).exchange(p2, message{Op: opPrepare}); err != nil || m.Op != opError {
		t.Errorf("second prepare: %+v %v", m, err)
	}
	p2.Close()
	p1.Close() // vanishes after prepare, without renaming: nothing changes

	if closedWithin(a.Draining(), 50*time.Millisecond) {
		t.Fatal("old instance draining")
	}
	b := open(t, Config{Path: path, LockTimeout: 2 * time.Second})
	listen(t, b, "web", "tcp", "127.0.0.1:0")
	if !b.Inherited("web") {
		t.Fatal("old instance stopped answering")
	}
	ready(t, b)
	if !closedWithin(a.Draining(), 2*time.Second) {
		t.Fatal("old instance not draining")
	}
}

// TestPeerUID runs the successor as user nobody, with the hand-off point
// reachable by everyone (mode 0666 in a 0777 directory), so that the only
// thing that can refuse it is the old instance's check of its credentials.
func TestPeerUID(t *testing.T) {
	fdtest.Check(t)
	fdtest.NeedRoot(t, "it starts a child as user nobody")
	exe := fdtest.WorldBinary(t)
	dir := fdtest.WorldDir(t)

	run := func(path, allow string) takeReport {
		t.Helper()
		cmd := childCmd(exe, "take", "HANDOFF_POINT="+path, "HANDOFF_NAME=web", "HANDOFF_ADDR=127.0.0.1:0", "HANDOFF_ALLOW="+allow)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: fdtest.Nobody, Gid: fdtest.Nobody}}
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := startWait(cmd, 10*time.Second); err != nil {
			t.Fatalf("child: %v", err)
		}
		var r takeReport
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("child said %q: %v", out.Bytes(), err)
		}
		return r
	}

	t.Run("refused", func(t *testing.T) {
		path := filepath.Join(dir, "h.sock")
		a := open(t, Config{Path: path, Mode: 0o666})
		aWeb := listen(t, a, "web", "tcp", "127.0.0.1:0")
		ready(t, a)
		r := run(path, "0") // the child would trust us: the refusal is ours
		if !strings.Contains(r.Err, "refused this process: uid 65534 gid 65534 is not allowed") {
			t.Fatalf("child as nobody: %+v", r)
		}
		if r.Addr != "" {
			t.Fatalf("refused child got a socket: %+v", r)
		}
		if closedWithin(a.Draining(), 20*time.Millisecond) {
			t.Fatal("old instance draining")
		}
		acceptsOn(t, aWeb)
		a.Close()
	})

	t.Run("allowed", func(t *testing.T) {
		path := filepath.Join(dir, "h2.sock")
		a := open(t, Config{Path: path, Mode: 0o666, PeerUIDs: []int{fdtest.Nobody}})
		aWeb := listen(t, a, "web", "tcp", "127.0.0.1:0")
		ready(t, a)
		r := run(path, "0")
		if r.Err != "" || !r.Inherited || r.Addr != aWeb.Addr().String() {
			t.Fatalf("allowed child as nobody: %+v, want %s", r, aWeb.Addr())
		}
		// And the child refuses an instance of a user it does not trust.
		r = run(path, "")
		if !strings.Contains(r.Err, "runs as uid 0 gid 0, which Config does not allow") {
			t.Fatalf("child trusting nobody else: %+v", r)
		}
		a.Close()
	})
}

// TestSuccessorProcessDies: a successor process that takes the sockets and
// is killed before Ready changes nothing for the old instance.
func TestSuccessorProcessDies(t *testing.T) {
	fdtest.Check(t)
	path := filepath.Join(shortDir(t), "h.sock")
	a := open(t, Config{Path: path})
	aWeb := listen(t, a, "web", "tcp", "127.0.0.1:0")
	ready(t, a)
	cmd := childCmd("", "takeAndHangOut", "HANDOFF_POINT="+path, "HANDOFF_ADDR=127.0.0.1:0")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	if line, err := readLine(bufio.NewReader(stdout), 10*time.Second); line != "taken" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child: %q %v", line, err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if closedWithin(a.Draining(), 50*time.Millisecond) {
		t.Fatal("old instance draining")
	}
	acceptsOn(t, aWeb)
	b := open(t, Config{Path: path, LockTimeout: 2 * time.Second})
	listen(t, b, "web", "tcp", "127.0.0.1:0")
	if !b.Inherited("web") {
		t.Error("old instance no longer answers")
	}
}

// fakeOld listens at path as a serving instance would, greets the first
// peer with greeting and hands the connection to script.
func fakeOld(t *testing.T, path string, greeting message, script func(c *fdsend.Conn)) <-chan struct{} {
	t.Helper()
	l, err := fdsend.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer l.Close()
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if send(c, greeting) != nil {
			return
		}
		script(c)
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return done
}

// expect reads the next request on c, failing the test unless it is op.
func expect(t *testing.T, c *fdsend.Conn, op string) message {
	m, files, err := receive(c)
	jsonmsg.CloseAll(files)
	if err != nil || m.Op != op {
		t.Errorf("fake old instance: got %+v %v, want %q", m, err, op)
	}
	return m
}

// TestLyingOldInstance: an older instance that breaks the protocol gets a
// clear error, and whatever descriptors it sent are closed.
func TestLyingOldInstance(t *testing.T) {
	fdtest.Check(t)
	dir := shortDir(t)
	hello := message{Op: opHello, Version: protocolVersion, PID: 1}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()

	for _, tc := range []struct {
		name   string
		answer func(wants []want) (message, []any)
		want   string
	}{
		{"wrong name", func(ws []want) (message, []any) {
			return message{Op: opFiles, Items: []item{{Name: "other", Status: statusOK, Kind: kindListener}}}, []any{r}
		}, `item 0 is "other", the request asked for "web"`},
		{"more files", func(ws []want) (message, []any) {
			return message{Op: opFiles, Items: []item{{Name: "web", Status: statusOK, Kind: kindListener}}}, []any{r, w}
		}, "more than 1 files (the read limit)"},
		{"fewer files", func(ws []want) (message, []any) {
			return message{Op: opFiles, Items: []item{{Name: "web", Status: statusOK, Kind: kindListener}}}, nil
		}, "1 items handed over, 0 descriptors arrived"},
		{"files for nothing", func(ws []want) (message, []any) {
			return message{Op: opFiles, Items: []item{{Name: "web", Status: statusAbsent}}}, []any{r}
		}, "0 items handed over, 1 descriptors arrived"},
		{"kind", func(ws []want) (message, []any) {
			return message{Op: opFiles, Items: []item{{Name: "web", Status: statusOK, Kind: kindFile}}}, []any{r}
		}, "handed over as a file, asked for as a listener"},
		{"status", func(ws []want) (message, []any) {
			return message{Op: opFiles, Items: []item{{Name: "web", Status: "maybe"}}}, nil
		}, `has status "maybe"`},
		{"not a socket", func(ws []want) (message, []any) {
			return message{Op: opFiles, Items: []item{{Name: "web", Status: statusOK, Kind: kindListener}}}, []any{r}
		}, "the descriptor the older instance handed over"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "h.sock")
			fakeOld(t, path, hello, func(c *fdsend.Conn) {
				m := expect(t, c, opTake)
				a, files := tc.answer(m.Want)
				send(c, a, files...)
				c.ReadMsg() // until the peer goes
			})
			u := open(t, Config{Path: path})
			_, err := u.Listen("web", "tcp", "127.0.0.1:0")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Listen: %v, want %q", err, tc.want)
			}
			u.Close()
		})
	}

	t.Run("version", func(t *testing.T) {
		path := filepath.Join(dir, "v.sock")
		fakeOld(t, path, message{Op: opHello, Version: 2}, func(c *fdsend.Conn) {})
		if _, err := Open(Config{Path: path}); !errors.Is(err, syscall.EPROTONOSUPPORT) {
			t.Errorf("Open: %v", err)
		}
	})

	t.Run("unconfirmed", func(t *testing.T) {
		path := filepath.Join(dir, "u.sock")
		done := fakeOld(t, path, hello, func(c *fdsend.Conn) {
			expect(t, c, opPrepare)
			send(c, message{Op: opPrepared})
			expect(t, c, opReady)
			send(c, message{Op: opError, Error: "cannot drain"})
			c.ReadMsg()
		})
		u := open(t, Config{Path: path})
		err := u.Ready()
		if !errors.Is(err, ErrUnconfirmed) || !strings.Contains(err.Error(), "cannot drain") {
			t.Fatalf("Ready: %v", err)
		}
		<-done
		// Ready all the same: this instance answers at the point.
		c, err := fdsend.Dial(path)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if m, _, err := receive(c); err != nil || m.Op != opHello || m.PID != os.Getpid() {
			t.Errorf("greeting from the new instance: %+v %v", m, err)
		}
		c.Close()
		if err := u.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("point left: %v", err)
		}
	})
}
