//go:build linux

package holder

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdtest"
	"github.com/fdsend/fdsend/internal/jsonmsg"
)

// rawConn connects to the holder without the client, for sending bytes it
// would never send.
func rawConn(t *testing.T, path string) *net.UnixConn {
	t.Helper()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// expectHangUp waits for the holder to close c.
func expectHangUp(t *testing.T, c *net.UnixConn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			return
		}
		if err != nil {
			t.Errorf("%s: waiting for the holder to hang up: %v", what, err)
			return
		}
	}
}

// canary checks that the holder answers an honest client promptly.
func canary(t *testing.T, c *Client, what string) {
	t.Helper()
	start := time.Now()
	if _, err := c.List(); err != nil {
		t.Fatalf("after %s: honest client: %v", what, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("after %s: honest client waited %v", what, d)
	}
}

// TestHostileClients throws broken and malicious clients at a holder and
// checks after each that it closed what they sent, hung up on them, and
// goes on serving an honest client; and that nothing leaked.
func TestHostileClients(t *testing.T) {
	fdtest.Check(t)
	_, path := startServer(t, Config{Timeout: 500 * time.Millisecond}, "")
	honest := dial(t, path)
	_, w := pipe(t)
	if err := honest.Store("held", w, 0, false); err != nil {
		t.Fatal(err)
	}
	w.Close()
	baseline := fdtest.Count(t)

	t.Run("garbage", func(t *testing.T) {
		c := rawConn(t, path)
		junk := make([]byte, 10000)
		for i := range junk {
			junk[i] = byte(rand.IntN(256))
		}
		junk[0] = 'x' // never a valid magic
		c.Write(junk)
		expectHangUp(t, c, "garbage")
		canary(t, honest, "garbage")
	})

	t.Run("descriptor on a frame announcing none", func(t *testing.T) {
		c := rawConn(t, path)
		r, pw := pipe(t)
		req := []byte(`{"op":"list"}`)
		if _, err := fdsend.Send(c, append(frameHeader(0, len(req)), req...), pw); err != nil {
			t.Fatal(err)
		}
		pw.Close()
		expectHangUp(t, c, "lying frame")
		if !writerClosed(t, r, 2*time.Second) {
			t.Error("the holder kept a descriptor from a lying frame")
		}
		canary(t, honest, "lying frame")
	})

	t.Run("frame announcing more descriptors than sent", func(t *testing.T) {
		c := rawConn(t, path)
		r, pw := pipe(t)
		req := []byte(`{"op":"store","name":"lie"}`)
		if _, err := fdsend.Send(c, append(frameHeader(2, len(req)), req...), pw); err != nil {
			t.Fatal(err)
		}
		pw.Close()
		expectHangUp(t, c, "lying count")
		if !writerClosed(t, r, 2*time.Second) {
			t.Error("the holder kept a descriptor from a lying count")
		}
		canary(t, honest, "lying count")
	})

	t.Run("store with two descriptors", func(t *testing.T) {
		conn, err := fdsend.Dial(path)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		r1, w1 := pipe(t)
		r2, w2 := pipe(t)
		if err := conn.WriteMsg([]byte(`{"op":"store","name":"two"}`), w1, w2); err != nil {
			t.Fatal(err)
		}
		w1.Close()
		w2.Close()
		if _, _, err := conn.ReadMsg(); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("over the descriptor limit: %v, want the holder to hang up", err)
		}
		for i, r := range []*os.File{r1, r2} {
			if !writerClosed(t, r, 2*time.Second) {
				t.Errorf("descriptor %d kept", i)
			}
		}
		canary(t, honest, "two descriptors")
	})

	t.Run("huge announced length", func(t *testing.T) {
		c := rawConn(t, path)
		c.Write(frameHeader(0, 1<<40))
		expectHangUp(t, c, "huge length")
		canary(t, honest, "huge length")
	})

	t.Run("malformed JSON and descriptors on a list", func(t *testing.T) {
		conn, err := fdsend.Dial(path)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		r, pw := pipe(t)
		for _, m := range []struct {
			data  string
			files []any
		}{
			{`{"op":`, nil},
			{`[]`, nil},
			{`{"op":"explode"}`, nil},
			{`{"op":"list"}`, []any{pw}},
			{`{"op":"fetch","names":["held"],"delete":true}`, []any{pw}},
		} {
			if err := conn.WriteMsg([]byte(m.data), m.files...); err != nil {
				t.Fatal(err)
			}
			data, files, err := conn.ReadMsg()
			if err != nil {
				t.Fatalf("%s: %v", m.data, err)
			}
			if len(files) != 0 {
				t.Errorf("%s: answer carries %d descriptors", m.data, len(files))
				jsonmsg.CloseAll(files)
			}
			var resp response
			if err := jsonDecode(string(data), &resp); err != nil || resp.OK || resp.Code != codeInvalid {
				t.Errorf("%s: answer %s (%v), want an invalid-request error", m.data, data, err)
			}
		}
		pw.Close()
		if !writerClosed(t, r, 2*time.Second) {
			t.Error("descriptor sent with a list was kept")
		}
		// The connection still works.
		if err := conn.WriteMsg([]byte(`{"op":"list"}`)); err != nil {
			t.Fatal(err)
		}
		if data, _, err := conn.ReadMsg(); err != nil || string(data[:10]) != `{"ok":true` {
			t.Errorf("list after malformed requests: %s, %v", data, err)
		}
	})

	t.Run("dies mid-request", func(t *testing.T) {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		r, pw := pipe(t)
		cmd := child(exe, "die-mid-store", "HOLDER_SOCK="+path)
		cmd.ExtraFiles = []*os.File{pw}
		out, outW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		cmd.Stdout = outW
		err = cmd.Start()
		outW.Close()
		pw.Close()
		if err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || line != "sent\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child: %q, %v", line, err)
		}
		cmd.Process.Kill()
		cmd.Wait()
		if !writerClosed(t, r, 2*time.Second) {
			t.Error("the holder kept the descriptor of a client that died mid-request")
		}
		canary(t, honest, "a client dying mid-request")
	})

	t.Run("stalled and silent clients", func(t *testing.T) {
		half := rawConn(t, path)
		half.Write(frameHeader(0, 100)[:7]) // half a header, then nothing
		silent := rawConn(t, path)
		// While they stall, the honest client is served at once.
		canary(t, honest, "stalled clients")
		// The timeout (500ms) ends them.
		expectHangUp(t, half, "half a header")
		expectHangUp(t, silent, "silent client")
	})

	t.Run("never reads its answers", func(t *testing.T) {
		conn, err := fdsend.Dial(path)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.UnixConn().SetReadBuffer(1024)
		// Send cheap requests until the holder's answers fill this socket
		// and the holder stops reading: it is now blocked writing to us.
		var werr error
		sent := 0
		for werr == nil && sent < 1e6 {
			conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			werr = conn.WriteMsg([]byte(`{"op":"list"}`))
			sent++
		}
		if !errors.Is(werr, os.ErrDeadlineExceeded) {
			t.Fatalf("after %d requests: %v, want the holder to stop reading", sent, werr)
		}
		canary(t, honest, "a client that never reads")
		// The holder gives up on it after its timeout.
		werr = nil
		deadline := time.Now().Add(3 * time.Second)
		for werr == nil && time.Now().Before(deadline) {
			conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			werr = conn.WriteMsg([]byte(`{"op":"list"}`))
			if errors.Is(werr, os.ErrDeadlineExceeded) {
				werr = nil
			}
		}
		if werr == nil {
			t.Error("the holder kept a connection that never reads")
		}
	})

	// Every hostile connection is gone: the holder is back to what it
	// held before.
	deadline := time.Now().Add(3 * time.Second)
	for fdtest.Count(t) > baseline && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := fdtest.Count(t); n > baseline {
		t.Errorf("%d descriptors open after the hostile clients, %d before: %v", n, baseline, fdtest.Open(t))
	}
	entries, err := honest.List()
	if err != nil || len(entries) != 1 || entries[0].Name != "held" {
		t.Errorf("held entries after the hostile clients: %+v, %v", entries, err)
	}
}

// TestConcurrentClients runs 1,000 clients at once — most honest, storing,
// fetching and removing their own names, the rest hostile — and checks that
// every honest one is served and nothing leaks.
func TestConcurrentClients(t *testing.T) {
	fdtest.Check(t)
	const n = 1000
	_, path := startServer(t, Config{Max: n, MaxConns: 2 * n, Timeout: 10 * time.Second}, "")
	baseline := fdtest.Count(t)
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if i%10 == 9 {
				hostile(path, i)
				return
			}
			if err := honestRound(path, fmt.Sprint("client-", i)); err != nil {
				failed.Add(1)
				errs <- err
				return
			}
			ok.Add(1)
		}()
	}
	close(start)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("clients did not finish in 60s")
	}
	close(errs)
	for err := range errs {
		t.Error(err)
		break
	}
	if failed.Load() > 0 || ok.Load() != n*9/10 {
		t.Errorf("%d honest clients served, %d failed, want %d served", ok.Load(), failed.Load(), n*9/10)
	}
	deadline := time.Now().Add(5 * time.Second)
	for fdtest.Count(t) > baseline && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := fdtest.Count(t); got > baseline {
		t.Errorf("%d descriptors open after the clients, %d before", got, baseline)
	}
	c := dial(t, path)
	if entries, err := c.List(); err != nil || len(entries) != 0 {
		t.Errorf("entries left: %d, %v", len(entries), err)
	}
}

// honestRound stores a pipe under name, fetches it, checks it is the same
// pipe, and removes it.
func honestRound(path, name string) error {
	c, err := Dial(path)
	if err != nil {
		return err
	}
	defer c.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	err = c.Store(name, w, time.Minute, false)
	w.Close()
	if err != nil {
		return fmt.Errorf("%s: store: %w", name, err)
	}
	files, err := c.Fetch([]string{name}, false)
	if err != nil {
		return fmt.Errorf("%s: fetch: %w", name, err)
	}
	_, err = files[0].WriteString(name)
	files[0].Close()
	if err != nil {
		return err
	}
	buf := make([]byte, len(name))
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != name {
		return fmt.Errorf("%s: read %q through the fetched pipe: %v", name, buf, err)
	}
	if err := c.Remove(name); err != nil {
		return fmt.Errorf("%s: remove: %w", name, err)
	}
	return nil
}

// hostile is one misbehaving client of several kinds.
func hostile(path string, i int) {
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return
	}
	defer c.Close()
	switch i % 3 {
	case 0: // garbage
		c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	case 1: // a store that never finishes, with a descriptor
		r, w, err := os.Pipe()
		if err != nil {
			return
		}
		fdsend.Send(c, frameHeader(1, 50), w)
		r.Close()
		w.Close()
	case 2: // a descriptor on the wrong bytes
		r, w, err := os.Pipe()
		if err != nil {
			return
		}
		req := []byte(`{"op":"list"}`)
		fdsend.Send(c, append(frameHeader(0, len(req)), req...), w)
		r.Close()
		w.Close()
	}
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	io.Copy(io.Discard, c)
}
