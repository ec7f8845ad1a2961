//go:build linux

package fdsend_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdtest"
	"golang.org/x/sys/unix"
)

// connPair returns two Conns over a stream socket pair, and the raw sockets
// under them (for writing hostile bytes).
func connPair(t testing.TB) (a, b *fdsend.Conn, ra, rb *net.UnixConn) {
	t.Helper()
	x, y, err := fdsend.Socketpair(syscall.SOCK_STREAM)
	if err != nil {
		t.Fatal(err)
	}
	a, b = fdsend.NewConn(x), fdsend.NewConn(y)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b, x, y
}

// identFiles opens k distinct temp files and returns them with a map from
// their identity to their index.
func identFiles(t testing.TB, k int) ([]*os.File, map[fileID]int) {
	t.Helper()
	dir := t.TempDir()
	files := make([]*os.File, k)
	ids := map[fileID]int{}
	for i := range files {
		f, err := os.Create(fmt.Sprintf("%s/f%d", dir, i))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		files[i] = f
		var st unix.Stat_t
		unix.Stat(f.Name(), &st)
		ids[fileID{uint64(st.Dev), st.Ino}] = i
	}
	return files, ids
}

func statID(f *os.File) (fileID, error) {
	st, err := f.Stat()
	if err != nil {
		return fileID{}, err
	}
	s := st.Sys().(*syscall.Stat_t)
	return fileID{uint64(s.Dev), s.Ino}, nil
}

func TestConnWholeMessages(t *testing.T) {
	fdtest.Check(t)
	a, b, _, _ := connPair(t)
	pool, ids := identFiles(t, 7)
	for _, tc := range []struct{ size, nfiles int }{
		{0, 0}, {0, 1}, {1, 0}, {8, 3}, {4080, 2}, {4081, 0}, {4096, 253}, {100, 254},
		{0, 506}, {5, 507}, {1 << 20, 0}, {3 << 20, 1000}, {7, 10000},
	} {
		t.Run(fmt.Sprintf("%dB-%dfiles", tc.size, tc.nfiles), func(t *testing.T) {
			fdtest.Check(t)
			data := make([]byte, tc.size)
			for i := range data {
				data[i] = byte(i*7 + tc.nfiles)
			}
			files := make([]any, tc.nfiles)
			for i := range files {
				files[i] = pool[i%len(pool)]
			}
			errc := make(chan error, 1)
			go func() { errc <- a.WriteMsg(data, files...) }()
			got, gotFiles, err := b.ReadMsg()
			if err != nil {
				t.Fatal(err)
			}
			defer closeAll(gotFiles)
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("data differs: %d bytes, want %d", len(got), len(data))
			}
			if len(gotFiles) != tc.nfiles {
				t.Fatalf("%d files, want %d", len(gotFiles), tc.nfiles)
			}
			for i, f := range gotFiles {
				id, err := statID(f)
				if err != nil {
					t.Fatal(err)
				}
				if ids[id] != i%len(pool) {
					t.Fatalf("file %d is pool file %d, want %d", i, ids[id], i%len(pool))
				}
				if i < 5 && !isCloexec(t, rawFD(t, f)) {
					t.Errorf("file %d not close-on-exec", i)
				}
			}
		})
	}
}

// Many writers and many readers on one Conn, with socket buffers shrunk so
// writes are partial: every message arrives once, whole, with its files.
func TestConnConcurrent(t *testing.T) {
	fdtest.Check(t)
	a, b, ra, rb := connPair(t)
	for _, c := range []*net.UnixConn{ra, rb} {
		c.SetWriteBuffer(4096)
		c.SetReadBuffer(4096)
	}
	pool, ids := identFiles(t, 5)
	const writers, perWriter, readers = 8, 250, 4
	total := writers * perWriter
	var wg sync.WaitGroup
	errc := make(chan error, writers+readers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range perWriter {
				size := rng.IntN(20000)
				if rng.IntN(10) == 0 {
					size = 0
				}
				nfiles := rng.IntN(6)
				if rng.IntN(50) == 0 {
					nfiles = 253 + rng.IntN(300)
				}
				msg := make([]byte, 16+size)
				binary.BigEndian.PutUint32(msg[0:], uint32(w))
				binary.BigEndian.PutUint32(msg[4:], uint32(i))
				binary.BigEndian.PutUint32(msg[8:], uint32(nfiles))
				for j := 16; j < len(msg); j++ {
					msg[j] = byte(rng.Uint32())
				}
				sum := sha256.Sum256(msg[16:])
				copy(msg[12:16], sum[:4])
				files := make([]any, nfiles)
				for j := range files {
					files[j] = pool[(i+j)%len(pool)]
				}
				if err := a.WriteMsg(msg, files...); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	var mu sync.Mutex
	seen := map[[2]uint32]bool{}
	var rg sync.WaitGroup
	for range readers {
		rg.Add(1)
		go func() {
			defer rg.Done()
			for {
				mu.Lock()
				done := len(seen) == total
				mu.Unlock()
				if done {
					return
				}
				b.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				msg, files, err := b.ReadMsg()
				if errors.Is(err, os.ErrDeadlineExceeded) {
					continue
				}
				if err != nil {
					errc <- err
					return
				}
				err = checkConcurrentMsg(msg, files, ids, len(pool))
				closeAll(files)
				if err != nil {
					errc <- err
					return
				}
				key := [2]uint32{binary.BigEndian.Uint32(msg), binary.BigEndian.Uint32(msg[4:])}
				mu.Lock()
				if seen[key] {
					mu.Unlock()
					errc <- fmt.Errorf("message %v twice", key)
					return
				}
				seen[key] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	rg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if len(seen) != total {
		t.Errorf("%d messages arrived, want %d", len(seen), total)
	}
}

func checkConcurrentMsg(msg []byte, files []*os.File, ids map[fileID]int, k int) error {
	if len(msg) < 16 {
		return fmt.Errorf("short message %d", len(msg))
	}
	i := int(binary.BigEndian.Uint32(msg[4:]))
	nfiles := int(binary.BigEndian.Uint32(msg[8:]))
	sum := sha256.Sum256(msg[16:])
	if !bytes.Equal(sum[:4], msg[12:16]) {
		return fmt.Errorf("message %x: data corrupted", msg[:8])
	}
	if len(files) != nfiles {
		return fmt.Errorf("message %x: %d files, want %d", msg[:8], len(files), nfiles)
	}
	for j, f := range files {
		id, err := statID(f)
		if err != nil {
			return err
		}
		if ids[id] != (i+j)%k {
			return fmt.Errorf("message %x: file %d is the wrong file", msg[:8], j)
		}
	}
	return nil
}

// frame builds raw frame bytes for hostile-peer tests.
func frame(more bool, nfiles uint32, length uint64, magic ...byte) []byte {
	h := make([]byte, 16)
	copy(h, []byte{'f', 'd', 1, 0})
	if more {
		h[3] = 1
	}
	copy(h, magic)
	binary.BigEndian.PutUint32(h[4:], nfiles)
	binary.BigEndian.PutUint64(h[8:], length)
	return h
}

// rawWrite writes bytes with optional files as one sendmsg on the raw socket.
func rawWrite(t *testing.T, c *net.UnixConn, b []byte, files ...any) {
	t.Helper()
	n, err := fdsend.SendMsg(c, b, files, 0)
	if err != nil || n != len(b) {
		t.Fatalf("raw write: %d of %d: %v", n, len(b), err)
	}
}

// A hostile or broken peer: each case gives a clear error, closes every
// descriptor that arrived, and the error stays, for ReadMsg and ReadMsgFDs.
func TestConnHostilePeer(t *testing.T) {
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	type step struct {
		b     []byte
		files int
	}
	cases := []struct {
		name   string
		steps  []step
		close  bool
		want   error
		limits [2]int64
	}{
		{"bad magic", []step{{frame(false, 0, 0, 'x', 'y'), 0}}, false, fdsend.ErrProtocol, [2]int64{}},
		{"bad version", []step{{frame(false, 0, 0, 'f', 'd', 9), 0}}, false, fdsend.ErrProtocol, [2]int64{}},
		{"unknown flags", []step{{frame(false, 0, 0, 'f', 'd', 1, 0x80), 0}}, false, fdsend.ErrProtocol, [2]int64{}},
		{"too many per frame", []step{{frame(false, 254, 0), 0}}, false, fdsend.ErrProtocol, [2]int64{}},
		{"announces 2 sends 1", []step{{frame(false, 2, 0), 1}}, false, fdsend.ErrProtocol, [2]int64{}},
		{"announces 1 sends 3", []step{{frame(false, 1, 0), 3}}, false, fdsend.ErrProtocol, [2]int64{}},
		{"announces 0 sends 2", []step{{frame(false, 0, 0), 2}, {frame(false, 0, 0), 0}}, false, fdsend.ErrProtocol, [2]int64{}},
		{"announces 1 sends none", []step{{frame(false, 1, 4), 0}, {[]byte("data"), 0}}, false, fdsend.ErrProtocol, [2]int64{}},
		{"files on data bytes", []step{{frame(false, 0, 8), 0}, {[]byte("data"), 2}, {[]byte("more"), 0}}, false, fdsend.ErrProtocol, [2]int64{}},
		// The descriptors arrive with the first byte of the second frame,
		// which announces none: the first message is whole and innocent, the
		// second is the error.
		{"files on data then a frame", []step{{frame(false, 0, 4), 0}, {cat([]byte("data"), frame(false, 0, 0)), 2}}, false, fdsend.ErrProtocol, [2]int64{}},
		{"continued frame short", []step{{frame(true, 3, 0), 3}}, false, fdsend.ErrProtocol, [2]int64{}},
		{"continued frame with data", []step{{frame(true, 253, 1), 253}}, false, fdsend.ErrProtocol, [2]int64{}},
		{"over byte limit", []step{{frame(false, 0, 1000), 0}}, false, fdsend.ErrProtocol, [2]int64{999, 10}},
		{"over file limit", []step{{frame(true, 253, 0), 253}, {frame(false, 1, 0), 1}}, false, fdsend.ErrProtocol, [2]int64{100, 253}},
		{"huge length", []step{{frame(false, 0, 1<<62), 0}}, false, fdsend.ErrProtocol, [2]int64{}},
		{"dies in header", []step{{frame(false, 2, 10)[:7], 2}}, true, io.ErrUnexpectedEOF, [2]int64{}},
		{"dies in data", []step{{cat(frame(false, 2, 10), []byte("abc")), 2}}, true, io.ErrUnexpectedEOF, [2]int64{}},
		{"dies after continued frame", []step{{frame(true, 253, 0), 253}}, true, io.ErrUnexpectedEOF, [2]int64{}},
	}
	null := devNulls(t, 1)[0]
	// Both reads share the framing: each is run on every case.
	readers := []struct {
		name string
		read func(c *fdsend.Conn) ([]byte, int, error)
	}{
		{"ReadMsg", func(c *fdsend.Conn) ([]byte, int, error) {
			data, files, err := c.ReadMsg()
			closeAll(files)
			return data, len(files), err
		}},
		{"ReadMsgFDs", func(c *fdsend.Conn) ([]byte, int, error) {
			data, fds, err := c.ReadMsgFDs(nil, nil)
			fdsend.CloseFDs(fds)
			return data, len(fds), err
		}},
	}
	for _, rd := range readers {
		for _, tc := range cases {
			t.Run(rd.name+"/"+tc.name, func(t *testing.T) {
				fdtest.Check(t)
				_, b, ra, _ := connPair(t)
				if tc.limits[0] != 0 {
					b.SetReadLimits(tc.limits[0], int(tc.limits[1]))
				}
				// Every step fits in the socket buffer: write them all first.
				for _, s := range tc.steps {
					files := make([]any, s.files)
					for i := range files {
						files[i] = null
					}
					rawWrite(t, ra, s.b, files...)
				}
				if tc.close {
					ra.Close()
				}
				b.SetReadDeadline(time.Now().Add(5 * time.Second))
				data, nfiles, err := rd.read(b)
				if tc.name == "files on data then a frame" {
					if err != nil || string(data) != "data" || nfiles != 0 {
						t.Fatalf("first message: %q, %d files, %v", data, nfiles, err)
					}
					_, nfiles, err = rd.read(b)
				}
				if !errors.Is(err, tc.want) || nfiles != 0 {
					t.Fatalf("%s: %v (%d files), want %v", rd.name, err, nfiles, tc.want)
				}
				t.Logf("error: %v", err)
				_, _, err2 := rd.read(b)
				if tc.want == io.ErrUnexpectedEOF {
					if err2 != io.EOF {
						t.Errorf("after unexpected EOF: %v, want io.EOF", err2)
					}
				} else if !errors.Is(err2, fdsend.ErrProtocol) {
					t.Errorf("error did not stay: %v", err2)
				}
			})
		}
	}
}

// WriteMsg needs nothing from the peer: a message sits whole in the buffer.
func TestConnOneWay(t *testing.T) {
	fdtest.Check(t)
	a, b, _, _ := connPair(t)
	a.SetWriteDeadline(time.Now().Add(5 * time.Second))
	for i := range 3 {
		if err := a.WriteMsg([]byte{byte(i)}, devNulls(t, 2)...); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		data, files, err := b.ReadMsg()
		if err != nil || len(data) != 1 || data[0] != byte(i) || len(files) != 2 {
			t.Fatalf("message %d: %v %d %v", i, data, len(files), err)
		}
		closeAll(files)
	}
}

// SetReadLimits does not wait for a ReadMsg in progress, and applies to the
// next header.
func TestConnSetReadLimitsWhileReading(t *testing.T) {
	fdtest.Check(t)
	a, b, _, _ := connPair(t)
	done := make(chan error, 1)
	go func() { _, _, err := b.ReadMsg(); done <- err }()
	time.Sleep(50 * time.Millisecond)
	set := make(chan struct{})
	go func() { b.SetReadLimits(10, 0); close(set) }()
	select {
	case <-set:
	case <-time.After(5 * time.Second):
		t.Fatal("SetReadLimits waited for ReadMsg")
	}
	if err := a.WriteMsg(make([]byte, 11)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, fdsend.ErrProtocol) {
		t.Fatalf("message over the new limit: %v", err)
	}
}

func TestConnEOF(t *testing.T) {
	fdtest.Check(t)
	a, b, _, _ := connPair(t)
	if err := a.WriteMsg([]byte("last"), devNulls(t, 1)...); err != nil {
		t.Fatal(err)
	}
	a.Close()
	data, files, err := b.ReadMsg()
	if err != nil || string(data) != "last" || len(files) != 1 {
		t.Fatalf("%q %d %v", data, len(files), err)
	}
	closeAll(files)
	for range 3 {
		if _, _, err := b.ReadMsg(); err != io.EOF {
			t.Fatalf("after close: %v, want io.EOF", err)
		}
	}
	b.Close()
	if _, _, err := b.ReadMsg(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("after our own Close: %v, want net.ErrClosed", err)
	}
}

// A read that times out mid-message loses nothing; a deadline set while
// blocked applies.
func TestConnReadDeadlineMidMessage(t *testing.T) {
	fdtest.Check(t)
	_, b, ra, _ := connPair(t)
	whole := append(frame(false, 2, 6), "abcdef"...)
	rawWrite(t, ra, whole[:19], devNulls(t, 2)...)
	b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, _, err := b.ReadMsg(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadMsg: %v", err)
	}
	rawWrite(t, ra, whole[19:])
	b.SetReadDeadline(time.Time{})
	data, files, err := b.ReadMsg()
	if err != nil || string(data) != "abcdef" || len(files) != 2 {
		t.Fatalf("after the timeout: %q %d %v", data, len(files), err)
	}
	closeAll(files)

	done := make(chan error, 1)
	go func() { _, _, err := b.ReadMsg(); done <- err }()
	time.Sleep(50 * time.Millisecond)
	b.SetReadDeadline(time.Now())
	awaitErr(t, done, os.ErrDeadlineExceeded, "deadline set while blocked did not apply")
}

// Close unblocks ReadMsg and WriteMsg with net.ErrClosed, and closes the
// descriptors of a message not yet finished.
func TestConnCloseUnblocks(t *testing.T) {
	fdtest.Check(t)
	_, b, ra, _ := connPair(t)
	rawWrite(t, ra, frame(false, 3, 100), devNulls(t, 3)...)
	done := make(chan error, 1)
	go func() { _, _, err := b.ReadMsg(); done <- err }()
	time.Sleep(50 * time.Millisecond)
	b.Close()
	awaitErr(t, done, net.ErrClosed, "Close did not unblock ReadMsg")
	// A writer blocked on a full socket whose peer is open but not reading.
	a, _, _, _ := connPair(t)
	go func() { done <- a.WriteMsg(make([]byte, 8<<20)) }()
	time.Sleep(50 * time.Millisecond)
	a.Close()
	awaitErr(t, done, net.ErrClosed, "Close did not unblock WriteMsg")
}

// A write that times out part-way leaves the stream unusable for writing;
// one that times out before writing a byte does not.
func TestConnWriteTimeoutSticky(t *testing.T) {
	fdtest.Check(t)
	a, _, _, rb := connPair(t)

	// Expired before the call: nothing written, nothing sticky.
	a.SetWriteDeadline(time.Now().Add(-time.Second))
	if err := a.WriteMsg([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("WriteMsg past its deadline: %v", err)
	}
	a.SetWriteDeadline(time.Time{})
	if err := a.WriteMsg([]byte("x")); err != nil {
		t.Fatalf("WriteMsg after a timeout that wrote nothing: %v", err)
	}

	// Part-way: a message larger than the socket buffers blocks once the
	// buffers are full; the deadline then hits it in the middle. (A fresh
	// pair, so that the bytes queued are this message's.)
	a, _, _, rb = connPair(t)
	done := make(chan error, 1)
	go func() { done <- a.WriteMsg(make([]byte, 8<<20)) }()
	queued := func() int {
		n := 0
		rc, _ := rb.SyscallConn()
		rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
		return n
	}
	for deadline := time.Now().Add(5 * time.Second); queued() <= 1; {
		if time.Now().After(deadline) {
			t.Fatal("the large message never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	a.SetWriteDeadline(time.Now())
	var err error
	select {
	case err = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the deadline did not stop the write")
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("WriteMsg: %v", err)
	}
	a.SetWriteDeadline(time.Time{})
	if err2 := a.WriteMsg([]byte("x")); !errors.Is(err2, os.ErrDeadlineExceeded) {
		t.Fatalf("later WriteMsg: %v, want the same error", err2)
	}
}

// Rejected arguments write nothing: the next message arrives intact.
func TestConnRejectedArgsWriteNothing(t *testing.T) {
	fdtest.Check(t)
	a, b, _, _ := connPair(t)
	closed, _ := os.Open(os.DevNull)
	closed.Close()
	good := devNulls(t, 300)
	for _, bad := range []any{"x", nil, closed, -1} {
		files := append(append([]any{}, good...), bad)
		var ae *fdsend.ArgError
		if err := a.WriteMsg([]byte("bad"), files...); !errors.As(err, &ae) || ae.Arg != "files[300]" {
			t.Fatalf("WriteMsg with %T: %v", bad, err)
		}
	}
	if err := a.WriteMsg([]byte("good"), good[:2]...); err != nil {
		t.Fatal(err)
	}
	data, files, err := b.ReadMsg()
	if err != nil || string(data) != "good" || len(files) != 2 {
		t.Fatalf("%q %d %v", data, len(files), err)
	}
	closeAll(files)
}

func TestConnNotStream(t *testing.T) {
	fdtest.Check(t)
	x, y := pair(t, syscall.SOCK_SEQPACKET)
	c := fdsend.NewConn(x)
	if err := c.WriteMsg([]byte("x")); err == nil || !errors.Is(err, syscall.EPROTOTYPE) {
		t.Fatalf("WriteMsg on seqpacket: %v", err)
	}
	if _, _, err := fdsend.NewConn(y).ReadMsg(); err == nil {
		t.Fatal("ReadMsg on seqpacket succeeded")
	}
}

func TestPeerCred(t *testing.T) {
	fdtest.Check(t)
	a, b, _, _ := connPair(t)
	for _, c := range []*fdsend.Conn{a, b} {
		cred, err := c.PeerCred()
		if err != nil {
			t.Fatal(err)
		}
		if cred.PID != os.Getpid() || cred.UID != os.Getuid() || cred.GID != os.Getgid() {
			t.Errorf("PeerCred = %+v", cred)
		}
	}
	null := devNulls(t, 1)
	if _, err := fdsend.PeerCred(null[0]); !errors.Is(err, syscall.ENOTSOCK) {
		t.Errorf("PeerCred(/dev/null): %v", err)
	}
}

// Many goroutines writing short messages at once: the queued ones go in
// batches (one sendmmsg each), and every message still arrives once, whole,
// with its own files, whether given as *os.File or as numbers.
func TestConnQueuedWrites(t *testing.T) {
	fdtest.Check(t)
	a, b, _, _ := connPair(t)
	pool, ids := identFiles(t, 3)
	const writers, perWriter = 8, 400
	before := fdsend.QueueBatches()
	var wg sync.WaitGroup
	errc := make(chan error, writers+1)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				msg := make([]byte, 16)
				binary.BigEndian.PutUint32(msg[0:], uint32(w))
				binary.BigEndian.PutUint32(msg[4:], uint32(i))
				binary.BigEndian.PutUint32(msg[8:], 1)
				sum := sha256.Sum256(nil)
				copy(msg[12:16], sum[:4])
				var file any = pool[i%len(pool)]
				if w%2 == 1 {
					file = rawFD(t, pool[i%len(pool)])
				}
				if err := a.WriteMsg(msg, file); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	seen := map[[2]uint32]bool{}
	next := make([]uint32, writers)
	for len(seen) < writers*perWriter {
		b.SetReadDeadline(time.Now().Add(20 * time.Second))
		msg, files, err := b.ReadMsg()
		if err != nil {
			t.Fatalf("after %d messages: %v", len(seen), err)
		}
		err = checkConcurrentMsg(msg, files, ids, len(pool))
		closeAll(files)
		if err != nil {
			t.Fatal(err)
		}
		w, i := binary.BigEndian.Uint32(msg), binary.BigEndian.Uint32(msg[4:])
		if int(w) >= writers || i != next[w] {
			t.Fatalf("writer %d's message %d arrived, want its %d (one writer's messages stay in order)", w, i, next[w])
		}
		next[w]++
		seen[[2]uint32{w, i}] = true
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if n := fdsend.QueueBatches() - before; n == 0 {
		t.Errorf("%d writers at once never queued a batch", writers)
	} else {
		t.Logf("%d messages, %d batches", writers*perWriter, n)
	}
}

// Queued writes that time out fail together and leave the stream whole: the
// reader then gets only whole messages, and writing goes on after the
// deadline is lifted.
func TestConnQueuedWriteDeadline(t *testing.T) {
	fdtest.Check(t)
	a, b, _, _ := connPair(t)
	pool, _ := identFiles(t, 1)
	// Fill the socket with one writer.
	a.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	sent := 0
	for {
		if err := a.WriteMsg([]byte("fill"), pool[0]); err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal(err)
			}
			break
		}
		sent++
	}
	a.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for w := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = a.WriteMsg([]byte("late"), pool[0])
		}()
	}
	wg.Wait()
	for w, err := range errs {
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("writer %d on a full socket past its deadline: %v", w, err)
		}
	}
	a.SetWriteDeadline(time.Time{})
	done := make(chan error, 1)
	go func() { done <- a.WriteMsg([]byte("after"), pool[0]) }()
	for got := 0; ; got++ {
		b.SetReadDeadline(time.Now().Add(20 * time.Second))
		msg, files, err := b.ReadMsg()
		closeAll(files)
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", got, sent, err)
		}
		if string(msg) == "after" {
			if got != sent || len(files) != 1 {
				t.Errorf("%q came after %d messages with %d files, want after %d with 1", msg, got, len(files), sent)
			}
			break
		}
		if string(msg) != "fill" || len(files) != 1 {
			t.Fatalf("message %d: %q with %d files", got, msg, len(files))
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A queued message with a descriptor that is not open fails alone: the
// writers queued with it still get their messages through, and no error of
// theirs.
func TestConnQueuedBadFile(t *testing.T) {
	fdtest.Check(t)
	a, b, _, _ := connPair(t)
	// Fill the socket, then leave one writer blocked on it holding the
	// stream, so the next writers queue.
	a.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	filled := 0
	for a.WriteMsg(make([]byte, 1000)) == nil {
		filled++
	}
	a.SetWriteDeadline(time.Time{})
	first := make(chan error, 1)
	go func() { first <- a.WriteMsg(make([]byte, 1000)) }()
	time.Sleep(100 * time.Millisecond) // not needed to pass: lets the others queue
	bad := make(chan error, 1)
	good := make(chan error, 2)
	go func() { good <- a.WriteMsg([]byte("good-1")) }()
	time.Sleep(20 * time.Millisecond)
	go func() { bad <- a.WriteMsg([]byte("bad"), 1<<20) }() // not an open descriptor
	time.Sleep(20 * time.Millisecond)
	go func() { good <- a.WriteMsg([]byte("good-2")) }()
	time.Sleep(50 * time.Millisecond)

	var got []string
	for len(got) < filled+3 {
		b.SetReadDeadline(time.Now().Add(20 * time.Second))
		msg, files, err := b.ReadMsg()
		closeAll(files)
		if err != nil {
			t.Fatalf("after %d messages: %v", len(got), err)
		}
		got = append(got, string(msg[:min(len(msg), 6)]))
	}
	if err := <-first; err != nil {
		t.Errorf("the blocked writer: %v", err)
	}
	if err := <-bad; !errors.Is(err, syscall.EBADF) {
		t.Errorf("the writer with a closed descriptor: %v, want EBADF", err)
	}
	for range 2 {
		if err := <-good; err != nil {
			t.Errorf("a writer queued with the bad one: %v", err)
		}
	}
	tail := strings.Join(got[filled+1:], " ")
	if !strings.Contains(tail, "good-1") || !strings.Contains(tail, "good-2") || strings.Contains(tail, "bad") {
		t.Errorf("after the blocked message came %q; want good-1 and good-2, not bad", tail)
	}
}
