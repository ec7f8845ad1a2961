//go:build linux

package holder

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdtest"
)

// TestStoreFetchAcrossProcesses stores a TCP listener from a process that
// then exits, and serves a connection on it from another process.
func TestStoreFetchAcrossProcesses(t *testing.T) {
	fdtest.Check(t)
	_, path := startServer(t, Config{}, "")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"HOLDER_SOCK=" + path, "HOLDER_NAME=web"}
	addr := strings.TrimSpace(runChild(t, child(exe, "store-listener", env...)))

	c := dial(t, path)
	entries, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name != "web" || entries[0].Kind != "tcp listener "+addr {
		t.Fatalf("List after the storing process exited: %+v, want web as tcp listener %s", entries, addr)
	}
	if entries[0].ExpiresIn != 0 || entries[0].StoredBy.UID != os.Getuid() || entries[0].StoredBy.PID == os.Getpid() {
		t.Errorf("entry %+v: want no expiry, stored by another process of uid %d", entries[0], os.Getuid())
	}

	// A connection made while nobody serves waits in the held listener's
	// backlog.
	early, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("dial the held listener while nobody serves it: %v", err)
	}
	defer early.Close()

	cmd := child(exe, "fetch-serve", env...)
	out, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout = outW
	err = cmd.Start()
	outW.Close()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	exited := make(chan struct{})
	go func() { done <- cmd.Wait(); close(exited) }()
	defer func() {
		cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(childTimeout):
		}
	}()
	ready, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || ready != "ready\n" {
		t.Fatalf("fetching child: %q, %v", ready, err)
	}
	early.SetDeadline(time.Now().Add(childTimeout))
	line, err := bufio.NewReader(early).ReadString('\n')
	if err != nil {
		t.Fatalf("reading from the fetching child: %v", err)
	}
	if got, want := atoi(t, line), cmd.Process.Pid; got != want {
		t.Errorf("served by pid %d, want the fetching child %d", got, want)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("fetching child: %v", err)
		}
	case <-time.After(childTimeout):
		t.Fatal("fetching child did not exit")
	}
	// Fetch without delete leaves the entry held.
	if entries, err := c.List(); err != nil || len(entries) != 1 {
		t.Errorf("after fetch: %+v, %v", entries, err)
	}
}

// TestStoreExistsReplace checks ErrExists and that replacing closes the old
// descriptor.
func TestStoreExistsReplace(t *testing.T) {
	fdtest.Check(t)
	_, path := startServer(t, Config{}, "")
	c := dial(t, path)
	r1, w1 := pipe(t)
	r2, w2 := pipe(t)
	if err := c.Store("p", w1, 0, false); err != nil {
		t.Fatal(err)
	}
	w1.Close()
	err := c.Store("p", w2, 0, false)
	if !errors.Is(err, ErrExists) || !errors.Is(err, os.ErrExist) {
		t.Fatalf("second store: %v, want ErrExists", err)
	}
	if !strings.Contains(err.Error(), `"p" is already held`) {
		t.Errorf("message %q does not say which name", err)
	}
	w2.Close()
	if !writerClosed(t, r2, 2*time.Second) {
		t.Errorf("refused store: the holder kept the descriptor")
	}
	if writerClosed(t, r1, 100*time.Millisecond) {
		t.Fatalf("the held descriptor was closed by a refused store")
	}
	_, w3 := pipe(t)
	if err := c.Store("p", w3, 0, true); err != nil {
		t.Fatalf("store with replace: %v", err)
	}
	if !writerClosed(t, r1, 2*time.Second) {
		t.Errorf("replace did not close the old descriptor")
	}
}

// TestExpiry checks that an entry expires on time, is closed, and that
// List reports the time left.
func TestExpiry(t *testing.T) {
	fdtest.Check(t)
	var logs logBuffer
	_, path := startServer(t, Config{Logf: logs.logf}, "")
	c := dial(t, path)
	r, w := pipe(t)
	_, w2 := pipe(t)
	start := time.Now()
	if err := c.Store("short", w, 300*time.Millisecond, false); err != nil {
		t.Fatal(err)
	}
	if err := c.Store("long", w2, time.Hour, false); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w2.Close()
	entries, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Name != "long" || entries[1].Name != "short" {
		t.Fatalf("List: %+v", entries)
	}
	if e := entries[1]; e.ExpiresIn <= 0 || e.ExpiresIn > 300*time.Millisecond || e.Kind != "pipe" {
		t.Errorf("short entry %+v: want a pipe expiring within 300ms", e)
	}
	if e := entries[0]; e.ExpiresIn < 59*time.Minute {
		t.Errorf("long entry %+v", e)
	}
	if !writerClosed(t, r, 3*time.Second) {
		t.Fatal("expired descriptor not closed")
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("expired after %v, before its 300ms", took)
	}
	if _, err := c.Fetch([]string{"short"}, false); !errors.Is(err, ErrNotHeld) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("fetch of an expired name: %v, want ErrNotHeld", err)
	}
	if entries, err := c.List(); err != nil || len(entries) != 1 {
		t.Errorf("after expiry: %+v, %v", entries, err)
	}
	if !logs.wait(`dropped "short" (expired)`, time.Second) {
		t.Errorf("log does not tell the expiry:\n%s", logs.String())
	}
}

// TestFetchDeleteRemove checks fetch with delete, Remove, and that a fetch
// is all or nothing.
func TestFetchDeleteRemove(t *testing.T) {
	fdtest.Check(t)
	_, path := startServer(t, Config{}, "")
	c := dial(t, path)
	ra, wa := pipe(t)
	rb, wb := pipe(t)
	if err := c.Store("a", wa, 0, false); err != nil {
		t.Fatal(err)
	}
	if err := c.Store("b", wb, 0, false); err != nil {
		t.Fatal(err)
	}
	wa.Close()
	wb.Close()
	if files, err := c.Fetch([]string{"a", "nope"}, true); !errors.Is(err, ErrNotHeld) || files != nil {
		t.Fatalf("fetch with a missing name: %v, %v", files, err)
	}
	files, err := c.Fetch([]string{"b", "a"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("got %d files", len(files))
	}
	// Order: b then a. Writing into each reaches the right pipe.
	for i, r := range []*os.File{rb, ra} {
		msg := fmt.Sprintf("to %d\n", i)
		if _, err := files[i].WriteString(msg); err != nil {
			t.Fatal(err)
		}
		files[i].Close()
		got, err := io.ReadAll(r)
		if err != nil || string(got) != msg {
			t.Errorf("pipe %d read %q, %v; want %q (and EOF: the holder dropped its copy)", i, got, err, msg)
		}
	}
	if entries, err := c.List(); err != nil || len(entries) != 0 {
		t.Errorf("after fetch with delete: %+v, %v", entries, err)
	}
	rc, wc := pipe(t)
	if err := c.Store("c", wc, 0, false); err != nil {
		t.Fatal(err)
	}
	wc.Close()
	if err := c.Remove("c"); err != nil {
		t.Fatal(err)
	}
	if !writerClosed(t, rc, 2*time.Second) {
		t.Error("Remove did not close the descriptor")
	}
	if err := c.Remove("c"); !errors.Is(err, ErrNotHeld) {
		t.Errorf("second Remove: %v", err)
	}
}

// TestFetchDeleteUndelivered: a client that asks for fetch with delete and
// goes away before the answer is written loses nothing: the entry is put
// back.
func TestFetchDeleteUndelivered(t *testing.T) {
	fdtest.Check(t)
	s, path := startServer(t, Config{}, "")
	c := dial(t, path)
	r, w := pipe(t)
	if err := c.Store("keep", w, 0, false); err != nil {
		t.Fatal(err)
	}
	w.Close()
	gone := make(chan struct{})
	hook := func() { <-gone }
	s.beforeAnswer.Store(&hook)
	quitter := dial(t, path)
	quitter.SetTimeout(time.Second)
	go func() {
		time.Sleep(200 * time.Millisecond)
		quitter.conn.Close()
		close(gone)
	}()
	if _, err := quitter.Fetch([]string{"keep"}, true); err == nil {
		t.Fatal("fetch on a connection closed under it succeeded")
	}
	<-gone
	deadline := time.Now().Add(2 * time.Second)
	for {
		entries, err := c.List()
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) == 1 && entries[0].Name == "keep" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("entry not put back: %+v", entries)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if writerClosed(t, r, 50*time.Millisecond) {
		t.Error("the entry put back was closed")
	}
}

// TestFull checks the limit on entries.
func TestFull(t *testing.T) {
	fdtest.Check(t)
	_, path := startServer(t, Config{Max: 2}, "")
	c := dial(t, path)
	for _, n := range []string{"one", "two"} {
		_, w := pipe(t)
		if err := c.Store(n, w, 0, false); err != nil {
			t.Fatal(err)
		}
	}
	r, w := pipe(t)
	err := c.Store("three", w, 0, false)
	if !errors.Is(err, ErrFull) {
		t.Fatalf("store beyond Max: %v, want ErrFull", err)
	}
	w.Close()
	if !writerClosed(t, r, 2*time.Second) {
		t.Error("the refused descriptor was kept")
	}
	// Replacing works when full; removing makes room.
	_, w = pipe(t)
	if err := c.Store("two", w, 0, true); err != nil {
		t.Errorf("replace when full: %v", err)
	}
	if err := c.Remove("one"); err != nil {
		t.Fatal(err)
	}
	_, w = pipe(t)
	if err := c.Store("three", w, 0, false); err != nil {
		t.Errorf("store after Remove: %v", err)
	}
}

// TestCloseDropsEverything checks that Close closes every held descriptor
// and removes the socket file, and that a client then gets a clean error.
func TestCloseDropsEverything(t *testing.T) {
	fdtest.Check(t)
	path := t.TempDir() + "/h.sock"
	s, err := Listen(path, Config{})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	c := dial(t, path)
	var readers []*os.File
	for i := range 5 {
		r, w := pipe(t)
		if err := c.Store(fmt.Sprint("p", i), w, 0, false); err != nil {
			t.Fatal(err)
		}
		w.Close()
		readers = append(readers, r)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
	for i, r := range readers {
		if !writerClosed(t, r, 2*time.Second) {
			t.Errorf("entry %d still open after Close", i)
		}
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after Close: %v", err)
	}
	if _, err := c.List(); err == nil {
		t.Error("List on a closed holder succeeded")
	}
}

// TestSocketMode checks the socket file's mode with and without rules for
// other users.
func TestSocketMode(t *testing.T) {
	fdtest.Check(t)
	for _, tc := range []struct {
		rules []Rule
		want  os.FileMode
	}{
		{nil, 0o600},
		{[]Rule{{UID: os.Geteuid(), GID: -1, Ops: OpList}}, 0o600},
		{[]Rule{{UID: 1234, GID: -1, Ops: OpList}}, 0o666},
		{[]Rule{{UID: -1, GID: 1234, Ops: AllOps}}, 0o666},
	} {
		s, path := startServer(t, Config{Rules: tc.rules}, "")
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != tc.want || st.Mode().Type() != os.ModeSocket {
			t.Errorf("rules %v: socket mode %v, want %v", tc.rules, st.Mode(), tc.want)
		}
		s.Close()
	}
}

// TestRefusedPeer runs a child as user nobody against a holder whose
// socket it can reach: what the rules do not grant is refused with
// ErrDenied, and the child gets nothing.
func TestRefusedPeer(t *testing.T) {
	fdtest.Check(t)
	fdtest.NeedRoot(t, "it runs a child as nobody")
	exe := fdtest.WorldBinary(t)
	for _, tc := range []struct {
		name  string
		rules []Rule
		list  bool // nobody may list
	}{
		{"list only", []Rule{{UID: fdtest.Nobody, GID: -1, Ops: OpList}}, true},
		{"another group", []Rule{{UID: -1, GID: 4242, Ops: AllOps}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs logBuffer
			s, path := startServer(t, Config{Rules: tc.rules, Logf: logs.logf}, fdtest.WorldDir(t))
			owner := dial(t, path)
			r, w := pipe(t)
			if err := owner.Store("secret", w, 0, false); err != nil {
				t.Fatal(err)
			}
			w.Close()
			cmd := child(exe, "outsider", "HOLDER_SOCK="+path)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: fdtest.Nobody, Gid: fdtest.Nobody}}
			var res outsiderResult
			if err := jsonDecode(runChild(t, cmd), &res); err != nil {
				t.Fatal(err)
			}
			if res.UID != fdtest.Nobody {
				t.Fatalf("child ran as uid %d", res.UID)
			}
			for op, code := range map[string]string{"store": res.Store, "fetch": res.Fetch, "delete": res.Del} {
				if code != codeDenied || !res.Denied[op] {
					t.Errorf("%s by nobody: code %q (%s), want %q matching ErrDenied and os.ErrPermission", op, code, res.Messages[op], codeDenied)
				}
				if !strings.Contains(res.Messages[op], "uid 65534") || !strings.Contains(res.Messages[op], "may not") {
					t.Errorf("%s refusal is not clear: %q", op, res.Messages[op])
				}
			}
			if tc.list {
				if res.List != "" || len(res.ListNames) != 1 || res.ListNames[0] != "secret" {
					t.Errorf("list by nobody, allowed: %q %v", res.List, res.ListNames)
				}
			} else if res.List != codeDenied {
				t.Errorf("list by nobody, not allowed: %q", res.List)
			}
			if res.FDsAfterFetch != res.FDsBefore {
				t.Errorf("refused fetch: child had %d descriptors before and %d after", res.FDsBefore, res.FDsAfterFetch)
			}
			entries, err := owner.List()
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].Name != "secret" {
				t.Errorf("after the outsider: %+v", entries)
			}
			if writerClosed(t, r, 50*time.Millisecond) {
				t.Error("the secret was closed")
			}
			if !logs.wait("refused store from pid", time.Second) {
				t.Errorf("refusals not logged:\n%s", logs.String())
			}
			s.Close()
		})
	}
}

// TestNoRightsCannotHog: a user no rule grants anything, holding as many
// connections as it can, does not keep the holder's own user (nor anyone
// with rights) out.
func TestNoRightsCannotHog(t *testing.T) {
	fdtest.Check(t)
	fdtest.NeedRoot(t, "it runs a child as nobody")
	_, path := startServer(t, Config{MaxConns: 4, Rules: []Rule{{UID: -1, GID: 4242, Ops: AllOps}}}, fdtest.WorldDir(t))
	hog := fdtest.StartChild(t, childEnv, "hog", true, "HOLDER_SOCK="+path)
	var n int
	if _, err := fmt.Fscan(hog.Out, &n); err != nil || n == 0 {
		t.Fatalf("hog connected %d times: %v", n, err)
	}
	for i := range 4 {
		c := dial(t, path)
		if _, err := c.List(); err != nil {
			t.Fatalf("owner connection %d while nobody holds %d: %v", i, n, err)
		}
		defer c.Close()
	}
}

// TestBusy: a connection beyond MaxConns (and, for the holder's own user,
// beyond its reserve) gets ErrBusy at once, and the others go on.
func TestBusy(t *testing.T) {
	fdtest.Check(t)
	_, path := startServer(t, Config{MaxConns: 1}, "")
	first := dial(t, path)
	if _, err := first.List(); err != nil {
		t.Fatal(err)
	}
	for range ownerReserve {
		c := dial(t, path)
		if _, err := c.List(); err != nil {
			t.Fatalf("a connection of the owner's reserve: %v", err)
		}
		defer c.Close()
	}
	second := dial(t, path)
	_, err := second.List()
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("second connection: %v, want ErrBusy", err)
	}
	if _, err := first.List(); err != nil {
		t.Errorf("first connection after the refusal: %v", err)
	}
	first.Close()
	deadline := time.Now().Add(2 * time.Second)
	for {
		third := dial(t, path)
		_, err := third.List()
		if err == nil {
			break
		}
		if !errors.Is(err, ErrBusy) || time.Now().After(deadline) {
			t.Fatalf("after the first closed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestNewServerInherited serves on a listener made elsewhere.
func TestNewServerInherited(t *testing.T) {
	fdtest.Check(t)
	path := t.TempDir() + "/x.sock"
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(ul, Config{})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	defer s.Close()
	c := dial(t, path)
	_, w := pipe(t)
	if err := c.Store("x", w, 0, false); err != nil {
		t.Fatal(err)
	}
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	if _, err := NewServer(tl, Config{}); err == nil {
		t.Error("NewServer took a TCP listener")
	}
	if _, err := NewServer(nil, Config{}); err == nil {
		t.Error("NewServer took nil")
	}
}

// TestInvalidRequests checks names, TTLs and descriptors the holder refuses
// through the client API.
func TestInvalidRequests(t *testing.T) {
	fdtest.Check(t)
	_, path := startServer(t, Config{}, "")
	c := dial(t, path)
	_, w := pipe(t)
	for _, name := range []string{"", "a:b", "tab\there", strings.Repeat("x", 256), "é"} {
		if err := c.Store(name, w, 0, false); !errors.Is(err, ErrInvalid) {
			t.Errorf("store %q: %v, want ErrInvalid", name, err)
		}
	}
	if err := c.Store("x", w, -time.Second, false); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative ttl: %v", err)
	}
	if err := c.Store("x", nil, 0, false); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil file: %v", err)
	}
	closed, w2 := pipe(t)
	closed.Close()
	w2.Close()
	if err := c.Store("x", w2, 0, false); err == nil || !errors.Is(err, os.ErrClosed) {
		t.Errorf("closed file: %v", err)
	}
	if _, err := c.Fetch(nil, false); !errors.Is(err, ErrInvalid) {
		t.Errorf("fetch of nothing: %v", err)
	}
	if _, err := c.Fetch([]string{"a", "a"}, false); !errors.Is(err, ErrInvalid) {
		t.Errorf("fetch of a name twice: %v", err)
	}
	// The client is still usable after every refusal.
	if err := c.Store("x", w, 0, false); err != nil {
		t.Errorf("valid store after refusals: %v", err)
	}
}

// logBuffer collects a server's log lines.
type logBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuffer) logf(format string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

// wait reports whether a line containing s is logged within d.
func (l *logBuffer) wait(s string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !strings.Contains(l.String(), s) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func jsonDecode(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// TestClientIdleReconnect: the holder closes idle connections; a Client made
// by Dial connects again, one made by NewClient reports the hang-up.
func TestClientIdleReconnect(t *testing.T) {
	fdtest.Check(t)
	_, path := startServer(t, Config{Timeout: 200 * time.Millisecond}, "")
	c := dial(t, path)
	conn, err := fdsend.Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	fixed := NewClient(conn)
	defer fixed.Close()
	for _, cl := range []*Client{c, fixed} {
		if _, err := cl.List(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	if _, err := c.List(); err != nil {
		t.Errorf("dialled client after an idle hang-up: %v", err)
	}
	if _, err := fixed.List(); err == nil {
		t.Errorf("NewClient's client after an idle hang-up succeeded")
	}
}

// TestClientCloseUnblocks: Close ends a request in progress at once, and
// every later call fails with os.ErrClosed.
func TestClientCloseUnblocks(t *testing.T) {
	fdtest.Check(t)
	s, path := startServer(t, Config{}, "")
	release := make(chan struct{})
	hook := func() { <-release }
	s.beforeAnswer.Store(&hook)
	defer close(release)
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	c.SetTimeout(0)
	done := make(chan error, 1)
	go func() {
		_, err := c.List()
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Error("request in progress succeeded after Close")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not end the request in progress")
	}
	if _, err := c.List(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("List after Close: %v, want os.ErrClosed", err)
	}
	if err := c.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
}
