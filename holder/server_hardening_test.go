//go:build linux

package holder

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdtest"
	"golang.org/x/sys/unix"
)

func init() {
	childRoles["holder-128"] = childHolder128
	childRoles["fd-hog"] = childFDHog
	childRoles["flood"] = childFlood
}

// within runs f and fails the test if it does not return within d (the
// goroutine is left behind: the test is over anyway).
func within(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(d):
		t.Fatalf("%s: no answer within %v", what, d)
	}
}

// dialRetry dials the holder, retrying for up to d while the socket's
// backlog is full (EAGAIN).
func dialRetry(path string, d time.Duration) (*Client, error) {
	deadline := time.Now().Add(d)
	for {
		c, err := Dial(path)
		if err == nil || !errors.Is(err, syscall.EAGAIN) || time.Now().After(deadline) {
			return c, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHungDescriptor: a held descriptor that does not answer when looked at
// (fstat on a hung FUSE mount; here the describe step blocks through the
// test hook) holds up neither the other requests nor Close.
func TestHungDescriptor(t *testing.T) {
	fdtest.Check(t)
	s, path := startServer(t, Config{}, "")
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // before the server's Close cleanup
	var hung atomic.Pointer[os.File]
	hook := func(f *os.File) string {
		// The first descriptor ever described hangs, every time.
		hung.CompareAndSwap(nil, f)
		if hung.Load() == f {
			<-release
		}
		return describe(f)
	}
	s.describeHook.Store(&hook)
	owner := dial(t, path)
	owner.SetTimeout(5 * time.Second)
	_, w := pipe(t)
	within(t, 5*time.Second, "store hung", func() error { return owner.Store("hung", w, 0, false) })
	within(t, 5*time.Second, "list with a hung entry", func() error {
		entries, err := owner.List()
		if err == nil && (len(entries) != 1 || !strings.HasPrefix(entries[0].Kind, "unknown")) {
			err = fmt.Errorf("entries %+v, want hung described as unknown", entries)
		}
		return err
	})
	for range 3 {
		within(t, 5*time.Second, "store other", func() error { return owner.Store("other", w, 0, true) })
		within(t, 5*time.Second, "fetch other", func() error {
			files, err := owner.Fetch([]string{"other"}, false)
			closeAll(files)
			return err
		})
		within(t, 5*time.Second, "list again", func() error { _, err := owner.List(); return err })
		within(t, 5*time.Second, "remove other", func() error { return owner.Remove("other") })
	}
	second := dial(t, path)
	within(t, 5*time.Second, "another client's list", func() error { _, err := second.List(); return err })
	within(t, 8*time.Second, "Close", s.Close)
}

// TestCloseRace: connections arriving while Close runs are never served
// once it has returned, and no interleaving of Serve, connections and Close
// panics (run with -race).
func TestCloseRace(t *testing.T) {
	fdtest.Check(t)
	dir := t.TempDir()
	list := []byte(`{"op":"list"}`)
	for round := range 150 {
		path := filepath.Join(dir, fmt.Sprintf("h%d.sock", round))
		s, err := Listen(path, Config{})
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- s.Serve() }()
		stop := make(chan struct{})
		answered := make(chan struct{}, 1)
		var mu sync.Mutex
		var kept []*fdsend.Conn
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					c, err := fdsend.Dial(path)
					if err != nil {
						continue
					}
					mu.Lock()
					kept = append(kept, c)
					mu.Unlock()
					c.SetDeadline(time.Now().Add(2 * time.Second))
					if c.WriteMsg(list) == nil {
						if _, _, err := c.ReadMsg(); err == nil {
							select {
							case answered <- struct{}{}:
							default:
							}
						}
					}
				}
			}()
		}
		select {
		case <-answered:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: no answer before Close", round)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("round %d: Close: %v", round, err)
		}
		close(stop)
		wg.Wait()
		for _, c := range kept {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			if c.WriteMsg(list) == nil {
				if data, _, err := c.ReadMsg(); err == nil {
					t.Errorf("round %d: a request answered after Close returned: %s", round, data)
				} else if errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("round %d: a connection neither served nor closed after Close returned", round)
				}
			}
			c.Close()
		}
		select {
		case err := <-served:
			if !errors.Is(err, ErrServerClosed) {
				t.Fatalf("round %d: Serve returned %v", round, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: Serve did not return after Close", round)
		}
		if t.Failed() {
			return
		}
	}
}

// TestCloseClosesLingering: a refused connection still lingering is closed
// by Close, which returns with the descriptor count back where it was
// before Listen.
func TestCloseClosesLingering(t *testing.T) {
	fdtest.Check(t)
	dir := t.TempDir()
	// Warm up the runtime's poller so it is counted in before.
	if l, err := net.Listen("unix", filepath.Join(dir, "warm.sock")); err == nil {
		l.Close()
	}
	before := fdtest.Count(t)
	s, err := Listen(filepath.Join(dir, "holder.sock"), Config{MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	var clients []*Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for range 1 + ownerReserve {
		c, err := Dial(s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		c.SetTimeout(10 * time.Second)
		if _, err := c.List(); err != nil {
			t.Fatal(err)
		}
	}
	refused, err := fdsend.Dial(s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer refused.Close()
	refused.SetReadDeadline(time.Now().Add(10 * time.Second))
	if data, _, err := refused.ReadMsg(); err != nil || !strings.Contains(string(data), codeBusy) {
		t.Fatalf("the connection over the limit: %q, %v; want a busy answer", data, err)
	}
	// The refused connection now lingers in the holder.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := fdtest.Count(t), before+len(clients)+1; got != want {
		t.Errorf("right after Close: %d descriptors open, want %d (before Listen, plus the test's %d client sockets)", got, want, len(clients)+1)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
}

// childHolder128 runs a holder with RLIMIT_NOFILE 128 at HOLDER_SOCK whose
// rules let a group in (so the socket is 0666 and nobody, without rights,
// can connect), says "ready", and serves until its standard input closes.
func childHolder128() error {
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: 128, Max: 128}); err != nil {
		return err
	}
	s, err := Listen(os.Getenv("HOLDER_SOCK"), Config{Rules: []Rule{{UID: -1, GID: 4242, Ops: AllOps}}})
	if err != nil {
		return err
	}
	go s.Serve()
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return s.Close()
}

// childFDHog keeps up to 256 connections to the holder at HOLDER_SOCK,
// making new ones as fast as it can, and sends on every one, over and
// over, a byte of a frame header with 253 descriptors of /dev/null; it says
// "hogging" once it has sent 100 such bytes and goes on until its standard
// input closes.
func childFDHog() error {
	path := os.Getenv("HOLDER_SOCK")
	null, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer null.Close()
	files := make([]any, 253)
	for i := range files {
		files[i] = null
	}
	hdr := frameHeader(1, 100)
	var stop atomic.Bool
	var sent atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ring []*net.UnixConn
			for !stop.Load() {
				if len(ring) < 32 {
					if c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"}); err == nil {
						ring = append(ring, c)
					}
				}
				kept := ring[:0]
				for _, c := range ring {
					c.SetWriteDeadline(time.Now().Add(5 * time.Millisecond))
					if _, err := fdsend.Send(c, hdr[:1], files...); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
						c.Close()
						continue
					}
					sent.Add(1)
					kept = append(kept, c)
				}
				ring = kept
			}
			for _, c := range ring {
				c.Close()
			}
		}()
	}
	for sent.Load() < 100 {
		time.Sleep(time.Millisecond)
	}
	fmt.Println("hogging")
	io.Copy(io.Discard, os.Stdin)
	stop.Store(true)
	wg.Wait()
	return nil
}

// TestDescriptorHog: a holder under RLIMIT_NOFILE 128, and a user without
// rights connecting as often as it can and sending descriptors by the
// hundred: the owner's requests are still answered at once.
func TestDescriptorHog(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the hog as another user")
	}
	fdtest.Check(t)
	exe := fdtest.WorldBinary(t)
	path := filepath.Join(fdtest.WorldDir(t), "holder.sock")
	holder := child(exe, "holder-128", "HOLDER_SOCK="+path)
	hstdin, err := holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	hout, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Wait()
	defer hstdin.Close()
	if line, err := fdtest.ReadLine(bufio.NewReader(hout), childTimeout); err != nil || line != "ready\n" {
		t.Fatalf("holder: %q, %v", line, err)
	}
	hog := child(exe, "fd-hog", "HOLDER_SOCK="+path)
	hog.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: fdtest.Nobody, Gid: fdtest.Nobody}}
	stdin, err := hog.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := hog.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := hog.Start(); err != nil {
		t.Fatal(err)
	}
	defer hog.Wait()
	defer stdin.Close()
	if line, err := fdtest.ReadLine(bufio.NewReader(out), childTimeout); err != nil || line != "hogging\n" {
		t.Fatalf("hog: %q, %v", line, err)
	}
	_, w := pipe(t)
	for i := range 30 {
		c, err := dialRetry(path, 2*time.Second)
		if err != nil {
			t.Fatalf("round %d: dial while the hog runs: %v", i, err)
		}
		c.SetTimeout(2 * time.Second)
		if _, err := c.List(); err != nil {
			c.Close()
			t.Fatalf("round %d: list while the hog runs: %v", i, err)
		}
		if err := c.Store("x", w, 0, false); err != nil {
			t.Fatalf("round %d: store while the hog runs: %v", i, err)
		}
		files, err := c.Fetch([]string{"x"}, false)
		if err != nil {
			t.Fatalf("round %d: fetch while the hog runs: %v", i, err)
		}
		closeAll(files)
		err = c.Remove("x")
		c.Close()
		if err != nil {
			t.Fatalf("round %d: remove while the hog runs: %v", i, err)
		}
	}
}

// childFlood connects to the holder at HOLDER_SOCK from 16 goroutines as
// fast as it can, never reading or writing, keeping the newest connections
// open; it says "flooding" after 500 connections and goes on until its
// standard input closes.
func childFlood() error {
	path := os.Getenv("HOLDER_SOCK")
	var stop atomic.Bool
	var made atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ring []int
			addr := &unix.SockaddrUnix{Name: path}
			for !stop.Load() {
				fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					time.Sleep(time.Millisecond)
					continue
				}
				if err := unix.Connect(fd, addr); err != nil {
					unix.Close(fd)
					continue
				}
				made.Add(1)
				if len(ring) == 32 {
					unix.Close(ring[0])
					ring = ring[1:]
				}
				ring = append(ring, fd)
			}
			for _, fd := range ring {
				unix.Close(fd)
			}
		}()
	}
	for made.Load() < 500 {
		time.Sleep(time.Millisecond)
	}
	fmt.Println("flooding")
	io.Copy(io.Discard, os.Stdin)
	stop.Store(true)
	wg.Wait()
	return nil
}

// TestConnectFlood: a user without rights flooding the holder's socket with
// connections does not lock the owner out: a client that retries a full
// backlog for up to two seconds gets in and is answered.
func TestConnectFlood(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the flood as another user")
	}
	fdtest.Check(t)
	exe := fdtest.WorldBinary(t)
	_, path := startServer(t, Config{Rules: []Rule{{UID: -1, GID: 4242, Ops: AllOps}}}, fdtest.WorldDir(t))
	flood := child(exe, "flood", "HOLDER_SOCK="+path)
	flood.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: fdtest.Nobody, Gid: fdtest.Nobody}}
	stdin, err := flood.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := flood.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := flood.Start(); err != nil {
		t.Fatal(err)
	}
	defer flood.Wait()
	defer stdin.Close()
	if line, err := fdtest.ReadLine(bufio.NewReader(out), childTimeout); err != nil || line != "flooding\n" {
		t.Fatalf("flood: %q, %v", line, err)
	}
	for i := range 10 {
		c, err := dialRetry(path, 2*time.Second)
		if err != nil {
			t.Fatalf("round %d: dial during the flood: %v", i, err)
		}
		c.SetTimeout(2 * time.Second)
		_, err = c.List()
		c.Close()
		if err != nil {
			t.Fatalf("round %d: list during the flood: %v", i, err)
		}
	}
}
