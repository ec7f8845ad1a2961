//go:build linux

package fdstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdstore"
	"github.com/fdsend/fdsend/internal/fdtest"
	"github.com/fdsend/fdsend/notify"
	"golang.org/x/sys/unix"
)

// logs collects a Server's diagnostics.
type logs struct {
	t     *testing.T
	mu    sync.Mutex
	lines []string
}

func (l *logs) logf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
	l.t.Logf("server: %s", s)
}

func (l *logs) has(sub string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.lines, func(s string) bool { return strings.Contains(s, sub) })
}

// start creates a Server that the test closes when it ends.
func start(t *testing.T, max int, outer string) (*fdstore.Server, *logs) {
	t.Helper()
	l := &logs{t: t}
	s, err := fdstore.New(max, outer, l.logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, l
}

// client returns a notify.Client for s.
func client(s *fdstore.Server) notify.Client {
	return notify.Client{Addr: s.Addr(), Timeout: 5 * time.Second}
}

// barrier waits until s has processed everything sent before.
func barrier(t *testing.T, s *fdstore.Server) {
	t.Helper()
	if sent, err := client(s).Barrier(5 * time.Second); !sent || err != nil {
		t.Fatalf("Barrier = (%v, %v)", sent, err)
	}
}

// must fails the test unless a notify call sent its datagram.
func must(t *testing.T) func(bool, error) {
	return func(sent bool, err error) {
		t.Helper()
		if !sent || err != nil {
			t.Fatalf("notify: (%v, %v)", sent, err)
		}
	}
}

func names(entries []fdstore.Entry) []string {
	out := []string{}
	for _, e := range entries {
		out = append(out, e.Name)
	}
	return out
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// pipes returns n pipes; the test closes whatever is left at the end.
func pipes(t *testing.T, n int) (rs, ws []*os.File) {
	t.Helper()
	for range n {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close(); w.Close() })
		rs, ws = append(rs, r), append(ws, w)
	}
	return rs, ws
}

// readerOpen reports whether a pipe's read end is still open anywhere,
// by writing to its write end.
func readerOpen(t *testing.T, w *os.File) bool {
	t.Helper()
	_, err := w.Write([]byte("x"))
	if err == nil {
		return true
	}
	if !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("write: %v", err)
	}
	return false
}

func init() {
	children["store"] = childStore
}

// childStore dials the test's TCP listener, says hello, stores the
// connection and a file with notify.Store, waits for the barrier and exits.
func childStore() error {
	conn, err := net.Dial("tcp", os.Getenv("FDSTORE_TCP"))
	if err != nil {
		return err
	}
	if _, err := conn.Write([]byte("from child")); err != nil {
		return err
	}
	f, err := os.OpenFile(os.Getenv("FDSTORE_FILE"), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if sent, err := notify.Store("conn", conn); !sent || err != nil {
		return fmt.Errorf("Store conn: %v %v", sent, err)
	}
	if sent, err := notify.Store("file", f); !sent || err != nil {
		return fmt.Errorf("Store file: %v %v", sent, err)
	}
	if sent, err := notify.Barrier(5 * time.Second); !sent || err != nil {
		return fmt.Errorf("Barrier: %v %v", sent, err)
	}
	return nil
}

// TestChildStores: a child process stores a connected TCP socket and a file
// and exits; the store keeps both, and they are the child's socket and file.
func TestChildStores(t *testing.T) {
	fdtest.Check(t)
	s, _ := start(t, 8, "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	path := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(path, []byte("file content"), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=store", "FDSTORE_TCP="+ln.Addr().String(),
		"FDSTORE_FILE="+path, notify.EnvSocket+"="+s.Addr())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v: %s", err, out.Bytes())
	}

	entries := s.Entries()
	if got := names(entries); !slices.Equal(got, []string{"conn", "file"}) {
		t.Fatalf("Entries = %q, want [conn file]", got)
	}

	// The connection outlived the child: it is the stored socket.
	peer.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, err := io.ReadFull(peer, buf[:len("from child")])
	if err != nil || string(buf[:n]) != "from child" {
		t.Fatalf("peer read %q, %v", buf[:n], err)
	}
	stored := entries[0].File
	stored.SetDeadline(time.Now().Add(5 * time.Second)) // pollable: the child's conn was non-blocking
	if _, err := peer.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if n, err := stored.Read(buf); err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("stored socket read %q, %v", buf[:n], err)
	}
	if _, err := stored.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if n, err := io.ReadFull(peer, buf[:4]); err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("peer read %q, %v", buf[:n], err)
	}
	if typ, err := sockType(stored); err != nil || typ != unix.SOCK_STREAM {
		t.Fatalf("stored socket type %d, %v", typ, err)
	}

	// The file is the same file, opened read-write by the child.
	var want, got unix.Stat_t
	if err := unix.Stat(path, &want); err != nil {
		t.Fatal(err)
	}
	if err := fstat(entries[1].File, &got); err != nil {
		t.Fatal(err)
	}
	if got.Dev != want.Dev || got.Ino != want.Ino {
		t.Fatalf("stored file is %d:%d, want %d:%d", got.Dev, got.Ino, want.Dev, want.Ino)
	}
	if n, err := entries[1].File.ReadAt(buf, 0); string(buf[:n]) != "file content" {
		t.Fatalf("stored file reads %q, %v", buf[:n], err)
	}
	if _, err := entries[1].File.WriteAt([]byte("FILE"), 0); err != nil {
		t.Fatalf("stored file not writable: %v", err)
	}
}

func sockType(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var typ int
	var serr error
	if err := rc.Control(func(fd uintptr) { typ, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE) }); err != nil {
		return 0, err
	}
	return typ, serr
}

func fstat(f *os.File, st *unix.Stat_t) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Fstat(int(fd), st) }); err != nil {
		return err
	}
	return serr
}

func TestRemove(t *testing.T) {
	fdtest.Check(t)
	s, _ := start(t, 10, "")
	c := client(s)
	rs, ws := pipes(t, 4)
	must(t)(c.Store("a", rs[0]))
	must(t)(c.Store("b", rs[1], rs[2]))
	must(t)(c.Store("c", rs[3]))
	barrier(t, s)
	for _, r := range rs {
		r.Close() // only the store's copies remain
	}
	if got := names(s.Entries()); !slices.Equal(got, []string{"a", "b", "b", "c"}) {
		t.Fatalf("Entries = %q", got)
	}
	must(t)(c.Remove("b"))
	must(t)(c.Remove("nothing"))
	barrier(t, s)
	if got := names(s.Entries()); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("after Remove(b): Entries = %q", got)
	}
	for i, want := range []bool{true, false, false, true} {
		if got := readerOpen(t, ws[i]); got != want {
			t.Errorf("pipe %d: read end open = %v, want %v", i, got, want)
		}
	}
	// FDSTOREREMOVE before FDSTORE in one message: replace "a" at once.
	rs2, ws2 := pipes(t, 1)
	must(t)(c.Send("FDSTORE=1\nFDSTOREREMOVE=1\nFDNAME=a", rs2[0]))
	barrier(t, s)
	rs2[0].Close()
	if got := names(s.Entries()); !slices.Equal(got, []string{"c", "a"}) {
		t.Fatalf("after replace: Entries = %q", got)
	}
	if readerOpen(t, ws[0]) || !readerOpen(t, ws2[0]) {
		t.Fatalf("replace did not swap the descriptors")
	}
}

func TestMax(t *testing.T) {
	fdtest.Check(t)
	s, l := start(t, 3, "")
	c := client(s)
	rs, ws := pipes(t, 6)
	must(t)(c.Store("p", rs[0], rs[1], rs[2], rs[3], rs[4]))
	barrier(t, s)
	must(t)(c.Store("q", rs[5]))
	barrier(t, s)
	for _, r := range rs {
		r.Close()
	}
	entries := s.Entries()
	if got := names(entries); !slices.Equal(got, []string{"p", "p", "p"}) {
		t.Fatalf("Entries = %q", got)
	}
	for i, want := range []bool{true, true, true, false, false, false} {
		if got := readerOpen(t, ws[i]); got != want {
			t.Errorf("pipe %d: read end open = %v, want %v", i, got, want)
		}
	}
	// In the order stored: entry i is pipe i.
	for i, e := range entries {
		msg := fmt.Sprintf("pipe %d", i)
		if _, err := ws[i].Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		e.File.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := e.File.Read(buf)
		if err != nil || !strings.HasSuffix(string(buf[:n]), msg) {
			t.Errorf("entry %d reads %q, %v; want %q", i, buf[:n], err, msg)
		}
	}
	if !l.has("full") {
		t.Errorf("no diagnostic about the full store")
	}
	// Room again after a removal.
	must(t)(c.Remove("p"))
	rq, wq := pipes(t, 1)
	must(t)(c.Store("q", rq[0]))
	_ = wq
	barrier(t, s)
	if got := names(s.Entries()); !slices.Equal(got, []string{"q"}) {
		t.Fatalf("Entries = %q", got)
	}
}

func TestMaxZero(t *testing.T) {
	fdtest.Check(t)
	s, _ := start(t, 0, "")
	rs, ws := pipes(t, 1)
	must(t)(client(s).Store("x", rs[0]))
	barrier(t, s)
	rs[0].Close()
	if len(s.Entries()) != 0 || readerOpen(t, ws[0]) {
		t.Fatalf("a store of 0 kept %q", names(s.Entries()))
	}
}

func TestBarrierMessages(t *testing.T) {
	fdtest.Check(t)
	s, _ := start(t, 4, "")
	conn := dial(t, s)
	before := fdtest.Count(t)
	rs, ws := pipes(t, 3)
	// BARRIER=1 with anything else: the message is ignored, fds closed.
	send(t, conn, "BARRIER=1\nREADY=1\nFDSTORE=1\nFDNAME=x", ws[0])
	// BARRIER=1 with two fds: both closed.
	send(t, conn, "BARRIER=1", ws[1], ws[2])
	for _, w := range ws {
		w.Close()
	}
	for i, r := range rs {
		r.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := r.Read(make([]byte, 8)); err != io.EOF {
			t.Fatalf("pipe %d: read %d, %v; want EOF (barrier descriptor closed)", i, n, err)
		}
		r.Close()
	}
	barrier(t, s)
	if len(s.Entries()) != 0 {
		t.Fatalf("BARRIER message stored %q", names(s.Entries()))
	}
	select {
	case <-s.Ready():
		t.Fatalf("READY=1 beside BARRIER=1 was acted on")
	default:
	}
	if n := fdtest.Count(t); n != before {
		t.Fatalf("%d descriptors open, want %d", n, before)
	}
}

// dial connects a raw datagram socket to s, for messages notify refuses to
// send.
func dial(t *testing.T, s *fdstore.Server) *net.UnixConn {
	t.Helper()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: s.Addr(), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c *net.UnixConn, msg string, files ...any) {
	t.Helper()
	if _, err := fdsend.Send(c, []byte(msg), files...); err != nil {
		t.Fatalf("send %.40q: %v", msg, err)
	}
}

func TestSystemdNotifyReady(t *testing.T) {
	fdtest.Check(t)
	s, _ := start(t, 4, "")
	select {
	case <-s.Ready():
		t.Fatal("Ready before READY=1")
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "systemd-notify", "--ready", "--status=serving from systemd-notify")
	cmd.Env = append(os.Environ(), notify.EnvSocket+"="+s.Addr())
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("systemd-notify --ready: %v: %s", err, out)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("systemd-notify took %v: the barrier was not released at once", d)
	}
	select {
	case <-s.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("Ready not closed after systemd-notify --ready")
	}
	if got := s.Status(); got != "serving from systemd-notify" {
		t.Fatalf("Status = %q", got)
	}
}

func TestReadyReset(t *testing.T) {
	fdtest.Check(t)
	s, _ := start(t, 4, "")
	c := client(s)
	first := s.Ready()
	s.ResetReady() // not ready yet: same channel
	if s.Ready() != first {
		t.Fatal("ResetReady before READY=1 replaced the channel")
	}
	must(t)(c.Status("starting"))
	barrier(t, s)
	select {
	case <-first:
		t.Fatal("STATUS alone made the server ready")
	default:
	}
	must(t)(c.Ready())
	select {
	case <-first:
	case <-time.After(5 * time.Second):
		t.Fatal("Ready not closed")
	}
	s.ResetReady()
	second := s.Ready()
	select {
	case <-second:
		t.Fatal("channel after ResetReady is closed")
	case <-first:
	}
	must(t)(c.Send("STATUS=up\nREADY=1"))
	select {
	case <-second:
	case <-time.After(5 * time.Second):
		t.Fatal("Ready not closed after the restart's READY=1")
	}
	if s.Status() != "up" {
		t.Fatalf("Status = %q", s.Status())
	}
}

// TestPython stores a descriptor from a client written from the protocol
// with Python's socket module, and releases a barrier from it.
func TestPython(t *testing.T) {
	fdtest.Check(t)
	s, _ := start(t, 4, "")
	path := filepath.Join(t.TempDir(), "py-data")
	if err := os.WriteFile(path, []byte("python's file"), 0o600); err != nil {
		t.Fatal(err)
	}
	script := `
import os, select, socket, sys
addr, path = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(addr)  # before 3.13 send_fds ignores its address argument
fd = os.open(path, os.O_RDONLY)
socket.send_fds(s, [b"FDSTORE=1\nFDNAME=py\n"], [fd])
os.close(fd)
r, w = os.pipe()
socket.send_fds(s, [b"BARRIER=1"], [w])
os.close(w)
ready, _, _ = select.select([r], [], [], 5)
if not ready or os.read(r, 1) != b"":
    sys.exit("barrier not released")
print("ok")
`
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "python3", "-c", script, s.Addr(), path).CombinedOutput()
	if err != nil || string(out) != "ok\n" {
		t.Fatalf("python: %v: %s", err, out)
	}
	entries := s.Entries()
	if got := names(entries); !slices.Equal(got, []string{"py"}) {
		t.Fatalf("Entries = %q", got)
	}
	var want, got unix.Stat_t
	if err := unix.Stat(path, &want); err != nil {
		t.Fatal(err)
	}
	if err := fstat(entries[0].File, &got); err != nil {
		t.Fatal(err)
	}
	if got.Ino != want.Ino || got.Dev != want.Dev {
		t.Fatalf("stored descriptor is not python's file")
	}
	buf := make([]byte, 64)
	if n, _ := entries[0].File.ReadAt(buf, 0); string(buf[:n]) != "python's file" {
		t.Fatalf("stored file reads %q", buf[:n])
	}
}

// TestGarbage sends malformed and hostile messages: the server neither
// crashes nor keeps a descriptor it did not store.
func TestGarbage(t *testing.T) {
	fdtest.Check(t)
	s, l := start(t, 5, "")
	conn := dial(t, s)
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	many := make([]any, 253)
	for i := range many {
		f, err := os.Open(os.DevNull) // distinct open files: no de-duplication
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		many[i] = f
	}
	before := fdtest.Count(t)

	for range 20 {
		b := make([]byte, 1+len(many)%4096)
		rand.Read(b)
		b = b[:1+int(b[0])*int(b[len(b)-1])%len(b)]
		if _, err := fdsend.Send(conn, b, null); err != nil {
			t.Fatal(err)
		}
		if _, err := fdsend.Send(conn, b); err != nil {
			t.Fatal(err)
		}
	}
	msgs := []string{
		"\x00FDSTORE=1\nFDNAME=nul",
		"FDSTORE=1\nFDNAME=",
		"FDSTORE=1\nFDNAME=a:b",
		"FDSTORE=1\nFDNAME=ctl\x01",
		"FDSTORE=1\nFDNAME=caf\xc3\xa9",
		"FDSTORE=1\nFDNAME=" + strings.Repeat("n", 256),
		"FDSTORE=0\nFDNAME=x",
		"FDSTORE=1 \nFDNAME=x",
		"READY=1\nSTATUS=fds without FDSTORE",
		"FDSTOREREMOVE=1",
		"FDSTOREREMOVE=1\nFDNAME=a:b",
		"\n\n\n",
		"=",
		strings.Repeat("FDSTORE=1\n", 1000), // longer than 4096: truncated
	}
	for _, m := range msgs {
		send(t, conn, m, null)
		send(t, conn, m)
	}
	send(t, conn, "FDSTORE=1") // no descriptors
	send(t, conn, "FDSTORE=1\nFDNAME=many", many...)
	send(t, conn, "FDSTORE=1\nFDNAME=many", many...) // all duplicates now, or beyond the maximum
	barrier(t, s)

	entries := s.Entries()
	if got := names(entries); !slices.Equal(got, []string{"many", "many", "many", "many", "many"}) {
		t.Fatalf("Entries = %q", got)
	}
	if n := fdtest.Count(t); n != before+len(entries) {
		t.Fatalf("%d descriptors open, want %d (before) + %d (stored)", n, before, len(entries))
	}
	for _, want := range []string{"truncated", "without FDSTORE=1", "not printable", "separator", "empty", "full"} {
		if !l.has(want) {
			t.Errorf("no diagnostic mentioning %q", want)
		}
	}
	// Still serving.
	must(t)(client(s).Remove("many"))
	must(t)(client(s).Store("after", null))
	barrier(t, s)
	if got := names(s.Entries()); !slices.Equal(got, []string{"after"}) {
		t.Fatalf("Entries = %q", got)
	}
}

func TestRelay(t *testing.T) {
	fdtest.Check(t)
	outerAddr := filepath.Join(t.TempDir(), "outer")
	outer, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: outerAddr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer outer.Close()
	recv := func() string {
		t.Helper()
		outer.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4096)
		n, files, err := fdsend.Recv(outer, buf, 4)
		for _, f := range files {
			f.Close()
			t.Errorf("relay sent a descriptor")
		}
		if err != nil {
			t.Fatalf("outer: %v", err)
		}
		return string(buf[:n])
	}
	s, _ := start(t, 4, outerAddr)
	c := client(s)

	must(t)(c.Send("READY=1\nSTATUS=starting\nMAINPID=1"))
	if got := recv(); got != "READY=1\nSTATUS=starting" {
		t.Fatalf("outer got %q", got)
	}
	must(t)(c.Status("busy"))
	if got := recv(); got != "STATUS=busy" {
		t.Fatalf("outer got %q", got)
	}
	r, w, _ := os.Pipe()
	defer w.Close()
	must(t)(c.Store("x", r))
	r.Close()
	must(t)(c.Send("WATCHDOG=1"))
	must(t)(c.Stopping())
	barrier(t, s)
	outer.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := outer.Read(make([]byte, 64)); err == nil {
		t.Fatalf("relayed something besides READY and STATUS (%d bytes)", n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "systemd-notify", "--ready")
	cmd.Env = append(os.Environ(), notify.EnvSocket+"="+s.Addr())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("systemd-notify: %v: %s", err, out)
	}
	if got := recv(); got != "READY=1" {
		t.Fatalf("outer got %q", got)
	}
}

// TestSlowOuter: an outer manager that never reads does not hold up the
// server, and Close returns promptly.
func TestSlowOuter(t *testing.T) {
	fdtest.Check(t)
	outerAddr := filepath.Join(t.TempDir(), "outer")
	outer, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: outerAddr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer outer.Close()
	// Fill the outer queue.
	filler := notify.Client{Addr: outerAddr, Timeout: 20 * time.Millisecond}
	for i := 0; ; i++ {
		if _, err := filler.Status(strings.Repeat("f", 1000)); err != nil {
			break
		}
		if i > 10000 {
			t.Fatal("outer queue never filled")
		}
	}
	l := &logs{t: t}
	s, err := fdstore.New(4, outerAddr, l.logf)
	if err != nil {
		t.Fatal(err)
	}
	c := client(s)
	start := time.Now()
	for i := range 200 {
		must(t)(c.Status(fmt.Sprint("status ", i)))
		if i%50 == 0 {
			must(t)(c.Ready())
		}
	}
	barrier(t, s)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("200 notifications took %v with a stuck outer socket", d)
	}
	if s.Status() != "status 199" {
		t.Fatalf("Status = %q", s.Status())
	}
	start = time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close took %v", d)
	}
	// Drain: what reached the outer socket after the filler is the latest state.
	waitFor(t, "a relay attempt to fail", func() bool { return l.has("relaying") })
}

func TestPollHangup(t *testing.T) {
	fdtest.Check(t)
	s, l := start(t, 10, "")
	c := client(s)
	rs, ws := pipes(t, 2)
	a, b, err := fdsend.Socketpair(unix.SOCK_STREAM)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	file, err := os.CreateTemp(t.TempDir(), "regular")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	before := fdtest.Count(t)
	must(t)(c.Store("pipe", rs[0]))
	must(t)(c.StoreNoPoll("nopoll", rs[1]))
	must(t)(c.Store("sock", b))
	must(t)(c.Store("file", file)) // cannot be polled: kept
	barrier(t, s)
	rs[0].Close()
	rs[1].Close()
	b.Close()
	if got := names(s.Entries()); !slices.Equal(got, []string{"pipe", "nopoll", "sock", "file"}) {
		t.Fatalf("Entries = %q", got)
	}
	time.Sleep(100 * time.Millisecond) // nothing hung up yet: nothing dropped
	if len(s.Entries()) != 4 {
		t.Fatalf("dropped without a hang-up: %q", names(s.Entries()))
	}

	ws[0].Close()
	waitFor(t, "the hung-up pipe to be dropped", func() bool { return !slices.Contains(names(s.Entries()), "pipe") })
	a.Close()
	waitFor(t, "the hung-up socket to be dropped", func() bool { return !slices.Contains(names(s.Entries()), "sock") })
	ws[1].Close()
	time.Sleep(100 * time.Millisecond)
	if got := names(s.Entries()); !slices.Equal(got, []string{"nopoll", "file"}) {
		t.Fatalf("Entries = %q, want [nopoll file]", got)
	}
	if !l.has("EPOLLHUP") {
		t.Errorf("no diagnostic naming EPOLLHUP")
	}
	// 6 descriptors closed by the test (2 rs, 2 ws, b, a), 2 kept by the store.
	if n := fdtest.Count(t); n != before-6+2 {
		t.Fatalf("%d descriptors open, want %d", n, before-6+2)
	}
}

func TestDuplicates(t *testing.T) {
	fdtest.Check(t)
	s, l := start(t, 10, "")
	c := client(s)
	rs, _ := pipes(t, 1)
	dup, err := unix.FcntlInt(rs[0].Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dup)
	path := filepath.Join(t.TempDir(), "f")
	f1, _ := os.Create(path)
	defer f1.Close()
	f2, _ := os.Open(path) // another open file of the same inode: not a duplicate
	defer f2.Close()

	must(t)(c.Store("a", rs[0]))
	must(t)(c.Store("b", rs[0], dup))
	must(t)(c.Store("a", rs[0], rs[0]))
	must(t)(c.Store("f", f1, f2, f1))
	barrier(t, s)
	if got := names(s.Entries()); !slices.Equal(got, []string{"a", "f", "f"}) {
		t.Fatalf("Entries = %q, want [a f f]", got)
	}
	if !l.has("already stored") {
		t.Errorf("no diagnostic about duplicates")
	}
}

func TestDup(t *testing.T) {
	fdtest.Check(t)
	s, _ := start(t, 10, "")
	rs, ws := pipes(t, 2)
	must(t)(client(s).Store("a", rs[0]))
	must(t)(client(s).Store("b", rs[1]))
	barrier(t, s)
	rs[0].Close()
	rs[1].Close()
	dups, err := s.Dup()
	if err != nil {
		t.Fatal(err)
	}
	if got := names(dups); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("Dup names = %q", got)
	}
	entries := s.Entries()
	for i, d := range dups {
		if d.File.Fd() == entries[i].File.Fd() {
			t.Fatalf("Dup returned the stored descriptor itself")
		}
		flags, err := unix.FcntlInt(d.File.Fd(), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC == 0 {
			t.Fatalf("duplicate not close-on-exec: %#x %v", flags, err)
		}
	}
	// The duplicates outlive the Server.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for i, d := range dups {
		if !readerOpen(t, ws[i]) {
			t.Fatalf("duplicate %d closed with the Server", i)
		}
		d.File.Close()
		if readerOpen(t, ws[i]) {
			t.Fatalf("pipe %d still open after closing the duplicate and the Server", i)
		}
	}
	if len(s.Entries()) != 0 {
		t.Fatalf("Entries after Close = %q", names(s.Entries()))
	}
}

func TestClose(t *testing.T) {
	fdtest.Check(t)
	before := fdtest.Count(t)
	s, err := fdstore.New(4, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(s.Addr())
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 || !fi.IsDir() {
		t.Fatalf("socket directory %s: %v %v, want a 0700 directory", dir, fi.Mode(), err)
	}
	if fi, err := os.Stat(s.Addr()); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket %s: %v", s.Addr(), err)
	}
	if len(s.Addr()) >= 108 {
		t.Fatalf("socket path %d bytes long", len(s.Addr()))
	}
	r, w, _ := os.Pipe()
	defer w.Close()
	must(t)(client(s).Store("x", r))
	barrier(t, s)
	r.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if readerOpen(t, w) {
		t.Fatal("stored descriptor still open after Close")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("directory left behind: %v", err)
	}
	if sent, err := client(s).Ready(); sent || err == nil {
		t.Fatalf("Ready after Close = (%v, %v)", sent, err)
	}
	s.ResetReady()
	if n := fdtest.Count(t); n != before+1 { // w
		t.Fatalf("%d descriptors open after Close, want %d", n, before+1)
	}
}

func TestNewErrors(t *testing.T) {
	fdtest.Check(t)
	tests := []struct {
		max   int
		outer string
		want  error
	}{
		{-1, "", syscall.EINVAL},
		{1, "relative", syscall.EINVAL},
		{1, "vsock:2:1", errors.ErrUnsupported},
		{1, "/" + strings.Repeat("x", 200), syscall.EINVAL},
	}
	for _, tt := range tests {
		s, err := fdstore.New(tt.max, tt.outer, nil)
		if err == nil {
			s.Close()
		}
		if !errors.Is(err, tt.want) {
			t.Errorf("New(%d, %.20q) = %v, want %v", tt.max, tt.outer, err, tt.want)
		}
	}
	// An outer socket that does not exist yet is not an error: the relay
	// reports failures to logf.
	l := &logs{t: t}
	s, err := fdstore.New(1, "/nonexistent/notify", l.logf)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	must(t)(client(s).Ready())
	waitFor(t, "the relay failure to be logged", func() bool { return l.has("relaying") })
}

// TestConcurrent stores, removes and hangs up from several goroutines at
// once (run with -race).
func TestConcurrent(t *testing.T) {
	fdtest.Check(t)
	s, _ := start(t, 50, "")
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client(s)
			name := fmt.Sprint("g", g)
			for i := range 50 {
				r, w, err := os.Pipe()
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := c.Store(name, r); err != nil {
					t.Error(err)
				}
				r.Close()
				if i%3 == 0 {
					w.Close() // hang up
				} else {
					defer w.Close()
				}
				if i%10 == 9 {
					if _, err := c.Remove(name); err != nil {
						t.Error(err)
					}
				}
				_ = s.Entries()
			}
		}()
	}
	wg.Wait()
	barrier(t, s)
	if n := len(s.Entries()); n > 50 {
		t.Fatalf("%d entries, max 50", n)
	}
}
