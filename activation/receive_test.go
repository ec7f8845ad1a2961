//go:build linux

package activation

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/activation/internal/acttest"
	"github.com/fdsend/fdsend/internal/fdtest"
)

// testSet builds a set from descriptors this test opens (duplicates, so the
// originals stay the test's), as if inherited in that order.
type testSet struct {
	s *set
}

func newTestSet(t *testing.T, items ...any) *testSet {
	t.Helper()
	ts := &testSet{}
	var entries []entry
	for i := 0; i+1 < len(items); i += 2 {
		name := items[i].(string)
		fd, err := fdsend.DupFD(items[i+1], 0)
		if err != nil {
			t.Fatal(err)
		}
		// fd is only used in messages: number them 0, 1, ... for the tests.
		entries = append(entries, entry{fd: i / 2, name: name, file: os.NewFile(uintptr(fd), "test:"+name)})
	}
	ts.s = &set{load: func() ([]entry, error) { return entries, nil }}
	t.Cleanup(func() {
		for _, e := range entries {
			e.file.Close() // the untaken ones; closing twice is harmless
		}
	})
	return ts
}

func TestTakeListener(t *testing.T) {
	fdtest.Check(t)
	l := acttest.ListenTCP(t)
	ts := newTestSet(t, "web", l)
	got, err := takeAs(ts.s, "web", kindListener, takeOne, net.FileListener, closeListener)
	if err != nil {
		t.Fatal(err)
	}
	ln := got[0].(*net.TCPListener)
	defer ln.Close()
	if ln.Addr().String() != l.Addr().String() {
		t.Errorf("took %s, want %s", ln.Addr(), l.Addr())
	}
	// Pollable: a deadline interrupts Accept.
	ln.SetDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := ln.Accept(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Accept with a deadline: %v, want a timeout", err)
	}
	// And it serves.
	ln.SetDeadline(time.Time{})
	go func() {
		c, err := net.Dial("tcp", l.Addr().String())
		if err == nil {
			c.Write([]byte("x"))
			c.Close()
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	// Taking twice is an error, whatever the kind asked for.
	for _, k := range []kind{kindListener, kindFile} {
		if _, err := takeAs(ts.s, "web", k, takeOne, pollableCopy, closeFile); err == nil || !strings.Contains(err.Error(), "taken already") {
			t.Errorf("second take as %v: %v, want a 'taken already' error", k, err)
		}
	}
	// The shared entry is closed.
	fs, _ := ts.s.list(false)
	if _, err := fs[0].File.Stat(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Files entry after the take: %v, want os.ErrClosed", err)
	}
}

func TestTakeWrongKind(t *testing.T) {
	fdtest.Check(t)
	pr, pw := acttest.Pipe(t)
	a, _ := acttest.StreamPair(t)
	ts := newTestSet(t, "web", acttest.ListenTCP(t), "dns", acttest.ListenUDP(t), "log", pr, "conn", a)
	cases := []struct {
		name string
		k    kind
		want string
	}{
		{"dns", kindListener, `descriptor 1 "dns" is an IPv4 datagram socket, not a listening socket`},
		{"web", kindPacket, `"web" is a listening IPv4 stream socket, not a datagram socket`},
		{"log", kindListener, `"log" is a pipe or FIFO, not a listening socket`},
		{"log", kindConn, `"log" is a pipe or FIFO, not a connected socket`},
		{"conn", kindListener, `"conn" is a connected Unix stream socket, not a listening socket`},
		{"web", kindConn, `not a connected socket`},
	}
	for _, c := range cases {
		_, err := takeAs(ts.s, c.name, c.k, takeOne, func(*os.File) (int, error) { return 0, nil }, func(int) {})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("take %q as %v: %v, want %q", c.name, c.k, err, c.want)
		}
	}
	// Nothing was taken by the failures: each can still be taken rightly.
	if got, err := takeAs(ts.s, "dns", kindPacket, takeOne, net.FilePacketConn, closePacketConn); err != nil {
		t.Errorf("PacketConn after failures: %v", err)
	} else {
		got[0].Close()
	}
	if got, err := takeAs(ts.s, "conn", kindConn, takeOne, net.FileConn, closeConn); err != nil {
		t.Errorf("Conn: %v", err)
	} else {
		// Pollable: the read deadline works.
		got[0].SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		if _, err := got[0].Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Conn read with deadline: %v", err)
		}
		got[0].Close()
	}
	// A pipe taken as a file is pollable.
	got, err := takeAs(ts.s, "log", kindFile, takeOne, pollableCopy, closeFile)
	if err != nil {
		t.Fatal(err)
	}
	f := got[0]
	defer f.Close()
	if err := f.SetReadDeadline(time.Now().Add(30 * time.Millisecond)); err != nil {
		t.Fatalf("SetReadDeadline on a taken pipe: %v", err)
	}
	if _, err := f.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("pipe read with deadline: %v", err)
	}
	pw.Write([]byte("hi"))
	f.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2)
	if _, err := io.ReadFull(f, buf); err != nil || string(buf) != "hi" {
		t.Errorf("read %q, %v", buf, err)
	}
}

func TestTakeNames(t *testing.T) {
	fdtest.Check(t)
	ts := newTestSet(t, "web", acttest.ListenTCP(t), "web", acttest.ListenTCP(t), "dns", acttest.ListenUDP(t), "", acttest.ListenTCP(t))
	// Singular with two matches.
	_, err := takeAs(ts.s, "web", kindListener, takeOne, net.FileListener, closeListener)
	if err == nil || !strings.Contains(err.Error(), `2 descriptors are named "web" (descriptor 0 "web", descriptor 1 "web")`) {
		t.Errorf("Listener with two matches: %v", err)
	}
	// Not inherited.
	_, err = takeAs(ts.s, "nope", kindListener, takeOne, net.FileListener, closeListener)
	if !errors.Is(err, ErrNotInherited) || !strings.Contains(err.Error(), `"nope"`) || !strings.Contains(err.Error(), `descriptor 2 "dns"`) {
		t.Errorf("missing name: %v", err)
	}
	// Plural takes both, in order, all or nothing.
	ls, err := takeAs(ts.s, "web", kindListener, takeAll, net.FileListener, closeListener)
	if err != nil || len(ls) != 2 {
		t.Fatalf("Listeners: %v, %v", ls, err)
	}
	for _, l := range ls {
		l.Close()
	}
	// The empty name is a name.
	ls, err = takeAs(ts.s, "", kindListener, takeOne, net.FileListener, closeListener)
	if err != nil {
		t.Fatalf("empty name: %v", err)
	}
	ls[0].Close()
	// Inventory marks what is taken.
	_, err = takeAs(ts.s, "nope", kindFile, takeOne, pollableCopy, closeFile)
	if err == nil || !strings.Contains(err.Error(), `descriptor 0 "web" (taken)`) {
		t.Errorf("inventory: %v", err)
	}
}

func TestTakePluralAtomic(t *testing.T) {
	fdtest.Check(t)
	ts := newTestSet(t, "x", acttest.ListenTCP(t), "x", acttest.ListenUDP(t))
	if _, err := takeAs(ts.s, "x", kindListener, takeAll, net.FileListener, closeListener); err == nil {
		t.Fatal("Listeners over a listener and a datagram socket: no error")
	}
	// A conversion failing on the second: the first is closed, nothing taken.
	calls := 0
	conv := func(f *os.File) (*os.File, error) {
		calls++
		if calls == 2 {
			return nil, errors.New("boom")
		}
		return pollableCopy(f)
	}
	if _, err := takeAs(ts.s, "x", kindFile, takeAll, conv, closeFile); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("failing conversion: %v", err)
	}
	fs, err := takeAs(ts.s, "x", kindFile, takeAll, pollableCopy, closeFile)
	if err != nil || len(fs) != 2 {
		t.Fatalf("TakeFiles after failures: %v %v", fs, err)
	}
	for _, f := range fs {
		f.Close()
	}
}

func TestTakeFallbackUnknown(t *testing.T) {
	fdtest.Check(t)
	l := acttest.ListenTCP(t)
	ts := newTestSet(t, UnknownName, acttest.ListenUDP(t), UnknownName, l)
	ls, err := takeAs(ts.s, "http", kindListener, takeOneOrUnnamed, net.FileListener, closeListener)
	if err != nil {
		t.Fatalf("fallback: %v", err)
	}
	if ls[0].Addr().String() != l.Addr().String() {
		t.Errorf("fallback took %s, want %s", ls[0].Addr(), l.Addr())
	}
	ls[0].Close()
	// Without fallback the name must match.
	ts = newTestSet(t, UnknownName, acttest.ListenTCP(t))
	if _, err := takeAs(ts.s, "http", kindListener, takeOne, net.FileListener, closeListener); !errors.Is(err, ErrNotInherited) {
		t.Errorf("no fallback: %v", err)
	}
	// Two unnamed listeners: ambiguous, and said so.
	ts = newTestSet(t, UnknownName, acttest.ListenTCP(t), UnknownName, acttest.ListenTCP(t))
	_, err = takeAs(ts.s, "http", kindListener, takeOneOrUnnamed, net.FileListener, closeListener)
	if err == nil || errors.Is(err, ErrNotInherited) || !strings.Contains(err.Error(), "2 unnamed ones") {
		t.Errorf("two unnamed: %v", err)
	}
}

func TestSetLoadError(t *testing.T) {
	fdtest.Check(t)
	calls := 0
	want := &EnvError{Var: envFDs, Value: "x", Err: syscall.EINVAL}
	s := &set{load: func() ([]entry, error) { calls++; return nil, want }}
	for range 3 {
		if _, err := s.list(false); err != want {
			t.Errorf("list: %v", err)
		}
		if _, err := takeAs(s, "a", kindFile, takeOneOrUnnamed, pollableCopy, closeFile); err != want {
			t.Errorf("take: %v", err)
		}
	}
	if calls != 1 {
		t.Errorf("load ran %d times", calls)
	}
}

// TestListenOrInheritBare: this test process inherited nothing, so
// ListenOrInherit listens afresh and the helpers say "not inherited".
func TestListenOrInheritBare(t *testing.T) {
	fdtest.Check(t)
	l, err := ListenOrInherit("http", "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	pc, err := ListenPacketOrInherit("dns", "udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc.Close()
	if _, err := Listener("http"); !errors.Is(err, ErrNotInherited) || !strings.Contains(err.Error(), "nothing was inherited") {
		t.Errorf("Listener: %v", err)
	}
	if fs, err := Files(); fs != nil || err != nil {
		t.Errorf("Files: %v, %v", fs, err)
	}
}

// TestSocketActivateServer starts a server built on this package with the
// real systemd-socket-activate, which names the sockets with --fdname, and
// talks to it with real clients: HTTP over TCP and a line over a Unix socket.
func TestSocketActivateServer(t *testing.T) {
	fdtest.Check(t)
	sa := acttest.SocketActivate(t)
	for _, mode := range []string{"named", "unnamed-or-inherit"} {
		t.Run(mode, func(t *testing.T) {
			fdtest.Check(t)
			port := freePort(t, "tcp")
			ctl := filepath.Join(t.TempDir(), "ctl.sock")
			args := []string{"-l", "127.0.0.1:" + port, "-l", ctl, "-E", acttest.ChildEnv + "=server"}
			wantNames := "web,ctl"
			if mode == "named" {
				args = append(args, "--fdname=web:ctl", "-E", "ACTIVATION_TEST_NAME=web")
			} else {
				// No names: the server's ListenOrInherit("web", ...) falls back to
				// the one unnamed listener... but there are two (TCP and Unix),
				// so give only the TCP one and no ctl.
				args = []string{"-l", "127.0.0.1:" + port, "-E", acttest.ChildEnv + "=server",
					"-E", "ACTIVATION_TEST_NAME=web", "-E", "ACTIVATION_TEST_OR_INHERIT=1"}
				wantNames = UnknownName
			}
			args = append(args, "--", acttest.Exe(t), "-test.run=^$")
			cmd := exec.Command(sa, args...)
			cmd.Env = acttest.Env("")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			t.Cleanup(func() { // after the child has been waited for
				if t.Failed() {
					t.Logf("systemd-socket-activate's log:\n%s", stderr.String())
				}
			})
			acttest.Start(t, cmd)
			client := &http.Client{Timeout: acttest.ChildTimeout}
			var body string
			deadline := time.Now().Add(acttest.ChildTimeout)
			for {
				resp, err := client.Get("http://127.0.0.1:" + port + "/hello")
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					body = string(b)
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("GET: %v", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			want := fmt.Sprintf("pid=%d names=%s path=/hello", cmd.Process.Pid, wantNames)
			if body != want {
				t.Errorf("server said %q, want %q", body, want)
			}
			// A second request, on a new connection, to the same process.
			resp, err := client.Get("http://127.0.0.1:" + port + "/again")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.HasPrefix(string(b), fmt.Sprintf("pid=%d ", cmd.Process.Pid)) {
				t.Errorf("second answer %q", b)
			}
			if mode == "named" {
				c := acttest.DialRetry(t, "unix", ctl)
				c.SetDeadline(time.Now().Add(acttest.ChildTimeout))
				fmt.Fprintf(c, "ping\n")
				line, err := bufio.NewReader(c).ReadString('\n')
				c.Close()
				if want := fmt.Sprintf("ctl %d ping\n", cmd.Process.Pid); line != want || err != nil {
					t.Errorf("ctl said %q, %v; want %q", line, err, want)
				}
			}
		})
	}
}

// TestSocketActivateDatagram: a UDP server built on PacketConn, started by
// systemd-socket-activate -d on the first datagram, answers it and the next.
func TestSocketActivateDatagram(t *testing.T) {
	fdtest.Check(t)
	sa := acttest.SocketActivate(t)
	port := freePort(t, "udp")
	cmd := exec.Command(sa, "-d", "-l", "127.0.0.1:"+port, "--fdname=dns", "-E", acttest.ChildEnv+"=udpserver", "--", acttest.Exe(t), "-test.run=^$")
	cmd.Env = acttest.Env("")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	acttest.Start(t, cmd)
	c, err := net.Dial("udp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 512)
	deadline := time.Now().Add(acttest.ChildTimeout)
	for i := 0; ; i++ {
		fmt.Fprintf(c, "q%d", i)
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := c.Read(buf)
		if err == nil {
			got := string(buf[:n])
			if !strings.HasPrefix(got, fmt.Sprintf("pid=%d got=q", cmd.Process.Pid)) {
				t.Errorf("answer %q", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer: %v\n%s", err, stderr.String())
		}
	}
}

// freePort returns a port that was free a moment ago.
func freePort(t *testing.T, network string) string {
	t.Helper()
	var addr net.Addr
	if network == "udp" {
		c := acttest.ListenUDP(t)
		addr = c.LocalAddr()
		c.Close()
	} else {
		l := acttest.ListenTCP(t)
		addr = l.Addr()
		l.Close()
	}
	_, port, _ := net.SplitHostPort(addr.String())
	return port
}

// TestMalformedEnv runs a child per case with two real inherited
// descriptors and the variables given: a clear error naming the variable (or
// nothing inherited, where the protocol says so), the same result twice, no
// descriptor opened, no panic.
func TestMalformedEnv(t *testing.T) {
	fdtest.Check(t)
	long := strings.Repeat("n", 256)
	cases := []struct {
		name    string
		pid     string // "self", "other", "unset", or a literal
		pidfdid string // "self", "other", "" (unset) or a literal
		fds     string // "" means unset
		names   *string
		wantErr string // substring; "" means no error
		want    []string
	}{
		{name: "ok", pid: "self", fds: "2", names: ptr("a:b"), want: []string{"a", "b"}},
		{name: "ok unnamed", pid: "self", fds: "2", want: []string{UnknownName, UnknownName}},
		{name: "ok empty names", pid: "self", fds: "2", names: ptr(":"), want: []string{"", ""}},
		{name: "ok pidfdid", pid: "self", pidfdid: "self", fds: "2", names: ptr("a:b"), want: []string{"a", "b"}},
		{name: "pidfdid of another process", pid: "self", pidfdid: "other", fds: "2", names: ptr("a:b")},
		{name: "pid of another process", pid: "other", fds: "2", names: ptr("a:b")},
		{name: "no pid", pid: "unset", fds: "2", names: ptr("a:b")},
		{name: "no fds", pid: "self", names: ptr("a:b")},
		{name: "zero fds", pid: "self", fds: "0"},
		{name: "pid not a number", pid: "12x", fds: "2", wantErr: `LISTEN_PID="12x": byte 2 is 'x'`},
		{name: "pid empty", pid: "", fds: "2", wantErr: `LISTEN_PID="": empty`},
		{name: "pid zero", pid: "0", fds: "2", wantErr: `LISTEN_PID="0": not a process ID`},
		{name: "pid negative", pid: "-5", fds: "2", wantErr: `LISTEN_PID="-5"`},
		{name: "pid huge", pid: "99999999999", fds: "2", wantErr: `LISTEN_PID="99999999999": out of range`},
		{name: "pidfdid bad", pid: "self", pidfdid: "0x12", fds: "2", wantErr: `LISTEN_PIDFDID="0x12"`},
		{name: "pidfdid too big", pid: "self", pidfdid: "18446744073709551616", fds: "2", wantErr: `LISTEN_PIDFDID="18446744073709551616": out of range`},
		{name: "fds not a number", pid: "self", fds: "two", wantErr: `LISTEN_FDS="two"`},
		{name: "fds negative", pid: "self", fds: "-1", wantErr: `LISTEN_FDS="-1"`},
		{name: "fds leading zero", pid: "self", fds: "02", wantErr: `LISTEN_FDS="02": leading zero`},
		{name: "fds with space", pid: "self", fds: " 2", wantErr: `LISTEN_FDS=" 2"`},
		{name: "fds huge", pid: "self", fds: "4294967296", wantErr: `LISTEN_FDS="4294967296": out of range`},
		{name: "fds more than passed", pid: "self", fds: "3", names: ptr("a:b:c"), wantErr: `LISTEN_FDS="3": descriptor 5`},
		{name: "fds far more than passed", pid: "self", fds: "1000", wantErr: `LISTEN_FDS="1000": descriptor 5`},
		{name: "fds at the maximum", pid: "self", fds: "2147483644", wantErr: `LISTEN_FDS="2147483644": descriptor 5`},
		{name: "too few names", pid: "self", fds: "2", names: ptr("a"), wantErr: `LISTEN_FDNAMES="a": 1 names for LISTEN_FDS=2`},
		{name: "too many names", pid: "self", fds: "2", names: ptr("a:b:c"), wantErr: `3 names for LISTEN_FDS=2`},
		{name: "empty names for two", pid: "self", fds: "2", names: ptr(""), wantErr: `1 names for LISTEN_FDS=2`},
		{name: "names for zero", pid: "self", fds: "0", names: ptr("a"), wantErr: `names given, but LISTEN_FDS=0`},
		{name: "control char", pid: "self", fds: "2", names: ptr("a\x01b:c"), wantErr: `name 0 (descriptor 3) "a\x01b" contains control character 0x01`},
		{name: "newline", pid: "self", fds: "2", names: ptr("a:b\n"), wantErr: `name 1 (descriptor 4) "b\n" contains control character 0x0a`},
		{name: "DEL", pid: "self", fds: "2", names: ptr("a\x7f:b"), wantErr: `control character 0x7f`},
		{name: "name too long", pid: "self", fds: "2", names: ptr("a:" + long), wantErr: `is 256 bytes long, at most 255`},
		{name: "name of 255", pid: "self", fds: "2", names: ptr("a:" + long[:255]), want: []string{"a", long[:255]}},
		{name: "utf-8 name", pid: "self", fds: "2", names: ptr("é:ü"), want: []string{"é", "ü"}},
	}
	pcs := make([]parseCase, len(cases))
	for i, c := range cases {
		pcs[i] = parseCase{PID: c.pid, PIDFDID: c.pidfdid, Env: map[string]string{}}
		if c.fds != "" {
			pcs[i].Env[envFDs] = c.fds
		}
		if c.names != nil {
			pcs[i].Env[envFDNames] = *c.names
		}
	}
	js, err := json.Marshal(pcs)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := acttest.Pipe(t)
	cmd := acttest.Command(t, "parse", "ACTIVATION_TEST_CASES="+string(js))
	cmd.ExtraFiles = []*os.File{pr, pw}
	results := acttest.Decode[[]parseResult](t, acttest.RunChild(t, cmd))
	if len(results) != len(cases) {
		t.Fatalf("%d results for %d cases", len(results), len(cases))
	}
	for i, c := range cases {
		res := results[i]
		t.Run(c.name, func(t *testing.T) {
			if res.PanicString != "" {
				t.Fatalf("panic: %s", res.PanicString)
			}
			if c.wantErr != "" {
				if !strings.Contains(res.Err, c.wantErr) {
					t.Errorf("error %q, want one containing %q", res.Err, c.wantErr)
				}
				if !strings.HasPrefix(res.Err, "activation: LISTEN_") {
					t.Errorf("error %q does not start by naming the variable", res.Err)
				}
			} else if res.Err != "" {
				t.Errorf("unexpected error %q", res.Err)
			}
			if res.SecondErr != res.Err || !res.Same {
				t.Errorf("second call differs: %q vs %q (same=%v)", res.SecondErr, res.Err, res.Same)
			}
			if fmt.Sprint(res.Names) != fmt.Sprint(c.want) {
				t.Errorf("names %q, want %q", res.Names, c.want)
			}
			if len(res.NewFDs) != 0 {
				t.Errorf("Files opened descriptors: %v", res.NewFDs)
			}
			if len(res.EnvAfter) != 0 {
				t.Errorf("LISTEN_* left set: %v", res.EnvAfter)
			}
			// The inherited descriptors stay open; when adopted, closing the
			// Files closes them.
			if fmt.Sprint(res.StillOpen) != "[3 4]" {
				t.Errorf("inherited descriptors open after Files: %v, want [3 4]", res.StillOpen)
			}
			if c.want != nil && len(res.OpenAfter) != 0 {
				t.Errorf("adopted descriptors still open after closing the Files: %v", res.OpenAfter)
			}
		})
	}
}

func ptr(s string) *string { return &s }
