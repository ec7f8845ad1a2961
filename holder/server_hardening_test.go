//go:build linux

package holder

import (
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
	"github.com/fdsend/fdsend/internal/jsonmsg"
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
			jsonmsg.CloseAll(files)
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

// hogFiles is how many descriptors the hog sends with each byte, by
// goroutine: one, which a receiver that takes what comes and checks the
// request's limit only once the header is whole piles up byte after byte,
// and 253 (the most one sendmsg may carry), which one receive installs all
// at once.
var hogFiles = [...]int{1, 1, 1, 253, 1, 1, 1, 253}

// childFDHog hogs the descriptors of the holder at HOLDER_SOCK. From each
// of len(hogFiles) goroutines it keeps up to 32 connections, making new
// ones as fast as it can, and on each sends the first 15 bytes of a frame
// header announcing one descriptor, one byte at a time, each byte with
// hogFiles descriptors of /dev/null; it never completes the header, so a
// holder that takes them holds them until it times the connection out. A
// connection the holder answers or closes is dropped and replaced. It says
// "hogging" once 1000 bytes have gone out and goes on until its standard
// input closes.
func childFDHog() error {
	path := os.Getenv("HOLDER_SOCK")
	null, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer null.Close()
	hdr := frameHeader(1, 100)
	var stop atomic.Bool
	var sent atomic.Int64
	var wg sync.WaitGroup
	for _, nfiles := range hogFiles {
		files := make([]any, nfiles)
		for i := range files {
			files[i] = null
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			type hogConn struct {
				c    *net.UnixConn
				next int // bytes of the header sent
			}
			var ring []hogConn
			for !stop.Load() {
				if len(ring) < 32 {
					if c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"}); err == nil {
						ring = append(ring, hogConn{c: c})
					}
				}
				busy := false
				kept := ring[:0]
				for _, h := range ring {
					// Anything to read (a refusal, end of stream) means
					// the holder let go of it: drop it.
					if readable(h.c) {
						h.c.Close()
						continue
					}
					if h.next < len(hdr)-1 {
						h.c.SetWriteDeadline(time.Now().Add(5 * time.Millisecond))
						_, err := fdsend.Send(h.c, hdr[h.next:h.next+1], files...)
						switch {
						case err == nil:
							h.next++
							sent.Add(1)
							busy = true
						case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, syscall.ETOOMANYREFS):
							// The holder is slow, or too many of our
							// descriptors are in flight: later.
						default:
							h.c.Close()
							continue
						}
					}
					kept = append(kept, h)
				}
				ring = kept
				if !busy && len(ring) == 32 {
					time.Sleep(time.Millisecond)
				}
			}
			for _, h := range ring {
				h.c.Close()
			}
		}()
	}
	deadline := time.Now().Add(childTimeout)
	for sent.Load() < 1000 {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d bytes sent in %v", sent.Load(), childTimeout)
		}
		time.Sleep(time.Millisecond)
	}
	fmt.Println("hogging")
	io.Copy(io.Discard, os.Stdin)
	stop.Store(true)
	wg.Wait()
	return nil
}

// readable reports whether c has something to read or has been shut down
// by its peer, without waiting.
func readable(c *net.UnixConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return true
	}
	ready := true
	rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		ready = err != nil || n > 0
	})
	return ready
}

// startChild starts the test binary in role (as nobody if asked) and
// waits for its first line, want; the child ends with the test.
func startChild(t *testing.T, role, want string, asNobody bool, env ...string) *fdtest.Child {
	t.Helper()
	c := fdtest.StartChild(t, childEnv, role, asNobody, env...)
	if line, err := c.ReadLine(childTimeout); err != nil || line != want+"\n" {
		t.Fatalf("child %s: %q, %v; want %q", role, line, err, want)
	}
	return c
}

// TestDescriptorHog: a holder under RLIMIT_NOFILE 128, and a user without
// rights connecting as often as it can and sending descriptors with every
// byte: every descriptor the holder can be made to hold is in its budget,
// so the owner's list is answered within a second and its store, fetch and
// remove work (no EMFILE, no descriptor cut off).
func TestDescriptorHog(t *testing.T) {
	fdtest.NeedRoot(t, "runs the hog as another user")
	fdtest.Check(t)
	path := filepath.Join(fdtest.WorldDir(t), "holder.sock")
	startChild(t, "holder-128", "ready", false, "HOLDER_SOCK="+path)
	startChild(t, "fd-hog", "hogging", true, "HOLDER_SOCK="+path)
	_, w := pipe(t)
	for i := range 20 {
		c, err := Dial(path)
		if err != nil {
			t.Fatalf("round %d: dial while the hog runs: %v", i, err)
		}
		c.SetTimeout(time.Second)
		if _, err := c.List(); err != nil {
			c.Close()
			t.Fatalf("round %d: list while the hog runs: %v", i, err)
		}
		c.SetTimeout(5 * time.Second)
		if err := c.Store("x", w, 0, false); err != nil {
			c.Close()
			t.Fatalf("round %d: store while the hog runs: %v", i, err)
		}
		files, err := c.Fetch([]string{"x"}, false)
		jsonmsg.CloseAll(files)
		if err != nil {
			c.Close()
			t.Fatalf("round %d: fetch while the hog runs: %v", i, err)
		}
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
	fdtest.NeedRoot(t, "it runs the flood as another user")
	fdtest.Check(t)
	_, path := startServer(t, Config{Rules: []Rule{{UID: -1, GID: 4242, Ops: AllOps}}}, fdtest.WorldDir(t))
	startChild(t, "flood", "flooding", true, "HOLDER_SOCK="+path)
	// Each Dial is answered at once: the client waits in the kernel's queue
	// of connectors, where the flood cannot keep outrunning it. (A client
	// that retries EAGAIN itself lost the race for up to 2 s, and then
	// failed.)
	var slowest time.Duration
	for i := range 20 {
		start := time.Now()
		c, err := Dial(path)
		took := time.Since(start)
		slowest = max(slowest, took)
		if err != nil {
			t.Fatalf("round %d: dial during the flood: %v (after %v)", i, err, took)
		}
		if took > 500*time.Millisecond {
			c.Close()
			t.Fatalf("round %d: dial during the flood took %v", i, took)
		}
		c.SetTimeout(2 * time.Second)
		_, err = c.List()
		c.Close()
		if err != nil {
			t.Fatalf("round %d: list during the flood: %v", i, err)
		}
	}
	t.Logf("slowest dial during the flood: %v", slowest)
}
