//go:build linux

package fdsend_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdtest"
)

// These tests prove that PROTOCOL.md is enough to interoperate with Conn:
// testdata/fdframe.py implements the format from the document alone, and
// messages with files travel between it and Conn in both directions.

const fdframeScript = "testdata/fdframe.py"

// fdframePython is the python3 interpreter itself: a version manager's shim
// (pyenv) named python3 can take seconds to start, the interpreter a tenth.
var fdframePython = sync.OnceValue(func() string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "python3", "-c", "import sys; print(sys.executable)").Output()
	if exe := strings.TrimSpace(string(out)); err == nil && exe != "" {
		return exe
	}
	return "python3"
})

// fdframePeer starts fdframe.py with args and the far end of a fresh stream
// pair as its descriptor 3. It returns a Conn on the near end (closed when the
// test ends, with a 60-second deadline so a bug fails rather than hangs) and a
// function that waits for Python to exit and returns its stdout.
func fdframePeer(t *testing.T, env []string, args ...string) (*fdsend.Conn, func() string) {
	t.Helper()
	a, b := pair(t, syscall.SOCK_STREAM)
	bf, err := b.File()
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, fdframePython(), append([]string{fdframeScript}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.ExtraFiles = []*os.File{bf}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Start()
	bf.Close()
	if err != nil {
		cancel()
		t.Fatalf("python3 %s: %v", fdframeScript, err)
	}
	waited := false
	wait := func() string {
		t.Helper()
		waited = true
		err := cmd.Wait()
		cancel()
		if err != nil {
			t.Fatalf("python3 %s %s: %v\nstdout: %s\nstderr: %s", fdframeScript, strings.Join(args, " "), err, out.String(), errb.String())
		}
		return out.String()
	}
	c := fdsend.NewConn(a)
	if err := c.SetDeadline(time.Now().Add(60 * time.Second)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		if !waited {
			cmd.Wait()
			cancel()
		}
	})
	return c, wait
}

// fdframeContent is what file i holds.
func fdframeContent(i int) string { return fmt.Sprintf("file %d", i) }

// fdframeFiles writes n files f0..f{n-1} in a fresh directory, each holding
// fdframeContent, and returns the directory and the files opened read-only
// (closed when the test ends).
func fdframeFiles(t *testing.T, n int) (string, []any) {
	t.Helper()
	dir := t.TempDir()
	files := make([]any, n)
	for i := range files {
		p := filepath.Join(dir, fmt.Sprintf("f%d", i))
		if err := os.WriteFile(p, []byte(fdframeContent(i)), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		files[i] = f
	}
	return dir, files
}

// fdframePattern is fdframe.py's pattern(n): byte i is i % 251.
func fdframePattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// fdframeCheckFiles checks that received files are f0..f{n-1} of
// fdframeFiles, in order (by their content, read from offset 0), and are
// close-on-exec.
func fdframeCheckFiles(t *testing.T, what string, files []*os.File, n int) {
	t.Helper()
	if len(files) != n {
		t.Fatalf("%s: got %d files, want %d", what, len(files), n)
	}
	buf := make([]byte, 64)
	for i, f := range files {
		k, err := f.ReadAt(buf, 0)
		if err != nil && err != io.EOF {
			t.Fatalf("%s: file %d: %v", what, i, err)
		}
		if got, want := string(buf[:k]), fdframeContent(i); got != want {
			t.Fatalf("%s: file %d holds %q, want %q", what, i, got, want)
		}
		if !isCloexec(t, int(f.Fd())) {
			t.Fatalf("%s: file %d is not close-on-exec", what, i)
		}
	}
}

// fdframeCase is one message of the cross-language tests.
type fdframeCase struct{ files, size int }

// fdframeCases is every pairing of 0, 1, 253, 254 and 1000 files with 0
// bytes, a few, and several MiB, one message each.
func fdframeCases() []fdframeCase {
	var cs []fdframeCase
	for _, n := range []int{0, 1, 253, 254, 1000} {
		for _, size := range []int{0, 5, 3<<20 + 17} {
			cs = append(cs, fdframeCase{n, size})
		}
	}
	return cs
}

func (c fdframeCase) String() string { return fmt.Sprintf("%d files, %d bytes", c.files, c.size) }

// The Python implementation checks itself first (PROTOCOL.md's examples byte
// for byte, >253 files, partial writes, read-ahead, lying peers), so that a
// disagreement with Go points at one side.
func TestConnPythonSelfTest(t *testing.T) {
	fdtest.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, fdframePython(), fdframeScript, "selftest").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "selftest ok") {
		t.Fatalf("python3 %s selftest: %v\n%s", fdframeScript, err, out)
	}
}

// Go writes, Python reads and reports what arrived: one message of each case
// over one stream, back to back.
func TestConnGoWritesPythonReads(t *testing.T) {
	fdtest.Check(t)
	_, files := fdframeFiles(t, 1000)
	cases := fdframeCases()
	c, wait := fdframePeer(t, nil, "recv-report", fmt.Sprint(len(cases)))
	for _, tc := range cases {
		if err := c.WriteMsg(fdframePattern(tc.size), files[:tc.files]...); err != nil {
			t.Fatalf("%v: WriteMsg: %v", tc, err)
		}
	}
	out := wait()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(cases) {
		t.Fatalf("python reported %d messages, want %d:\n%s", len(lines), len(cases), out)
	}
	for i, tc := range cases {
		var rep struct {
			Len      int      `json:"len"`
			SHA256   string   `json:"sha256"`
			NFiles   int      `json:"nfiles"`
			Contents []string `json:"contents"`
		}
		if err := json.Unmarshal([]byte(lines[i]), &rep); err != nil {
			t.Fatalf("%v: python printed %q: %v", tc, lines[i], err)
		}
		sum := sha256.Sum256(fdframePattern(tc.size))
		if rep.Len != tc.size || rep.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("%v: python got %d bytes with sha256 %s, want %x", tc, rep.Len, rep.SHA256, sum)
		}
		if rep.NFiles != tc.files || len(rep.Contents) != tc.files {
			t.Fatalf("%v: python got %d files (%d contents)", tc, rep.NFiles, len(rep.Contents))
		}
		for j, got := range rep.Contents {
			if want := fdframeContent(j); got != want {
				t.Fatalf("%v: python's file %d holds %q, want %q", tc, j, got, want)
			}
		}
	}
}

// Python writes, Go reads: one message of each case over one stream, back to
// back; then Python's close is a clean io.EOF, for every later ReadMsg too.
func TestConnPythonWritesGoReads(t *testing.T) {
	fdtest.Check(t)
	dir, _ := fdframeFiles(t, 1000)
	cases := fdframeCases()
	args := []string{"send-many", dir}
	for _, tc := range cases {
		args = append(args, fmt.Sprintf("%d:%d", tc.files, tc.size))
	}
	c, wait := fdframePeer(t, nil, args...)
	for _, tc := range cases {
		data, files, err := c.ReadMsg()
		if err != nil {
			t.Fatalf("%v: ReadMsg: %v", tc, err)
		}
		if !bytes.Equal(data, fdframePattern(tc.size)) {
			t.Errorf("%v: got %d bytes, not the %d sent", tc, len(data), tc.size)
		}
		fdframeCheckFiles(t, tc.String(), files, tc.files)
		closeAll(files)
	}
	wait()
	for range 2 {
		if data, files, err := c.ReadMsg(); err != io.EOF {
			closeAll(files)
			t.Fatalf("after Python exited: ReadMsg = %d bytes, %d files, %v; want io.EOF", len(data), len(files), err)
		}
	}

	// The brief's single-message mode, with its default data.
	c, wait = fdframePeer(t, nil, "send-files", dir, "3")
	data, files, err := c.ReadMsg()
	defer closeAll(files)
	if err != nil || string(data) != "py" {
		t.Fatalf("send-files: ReadMsg = %q, %v; want \"py\"", data, err)
	}
	fdframeCheckFiles(t, "send-files", files, 3)
	wait()
}

// Many messages through Python and back, written and read concurrently, with
// random sizes and file counts; with small buffers both sides' writes are
// partial. Echoed files must be the very files sent.
func TestConnPythonEcho(t *testing.T) {
	fdtest.Check(t)
	for _, small := range []bool{false, true} {
		t.Run(fmt.Sprintf("smallbuf=%v", small), func(t *testing.T) {
			fdtest.Check(t)
			const count = 60
			_, pool := fdframeFiles(t, 600)
			rng := rand.New(rand.NewSource(1))
			type msg struct {
				data  []byte
				files []any
			}
			msgs := make([]msg, count)
			for i := range msgs {
				size := rng.Intn(2000)
				if i%10 == 3 {
					size = 1<<20 + rng.Intn(1000)
				}
				nf := rng.Intn(4)
				switch i % 7 {
				case 2:
					nf = 253 + rng.Intn(2)
				case 5:
					nf = 300 + rng.Intn(300)
				}
				off := rng.Intn(len(pool) - nf + 1)
				data := make([]byte, size)
				rng.Read(data)
				msgs[i] = msg{data, pool[off : off+nf]}
			}
			var env []string
			if small {
				env = []string{"FDFRAME_SMALLBUF=1"}
			}
			c, wait := fdframePeer(t, env, "echo", fmt.Sprint(count))
			if small {
				uc := c.UnixConn()
				if err := uc.SetWriteBuffer(4096); err != nil {
					t.Fatal(err)
				}
				if err := uc.SetReadBuffer(4096); err != nil {
					t.Fatal(err)
				}
			}
			werr := make(chan error, 1)
			go func() {
				for _, m := range msgs {
					if err := c.WriteMsg(m.data, m.files...); err != nil {
						werr <- err
						return
					}
				}
				werr <- nil
			}()
			for i, m := range msgs {
				data, files, err := c.ReadMsg()
				if err != nil {
					t.Fatalf("reply %d: ReadMsg: %v", i, err)
				}
				ok := bytes.Equal(data, append([]byte("echo:"), m.data...)) && len(files) == len(m.files)
				for j := 0; ok && j < len(files); j++ {
					ok = idOf(t, files[j]) == idOf(t, m.files[j])
				}
				closeAll(files)
				if !ok {
					t.Fatalf("reply %d: %d bytes with %d files, want %d bytes with %d files (the same ones)",
						i, len(data), len(files), len("echo:")+len(m.data), len(m.files))
				}
			}
			if err := <-werr; err != nil {
				t.Fatalf("WriteMsg: %v", err)
			}
			var stats struct {
				PartialWrites int `json:"partial_writes"`
			}
			out := wait()
			if err := json.Unmarshal([]byte(out), &stats); err != nil {
				t.Fatalf("python printed %q: %v", out, err)
			}
			if small && stats.PartialWrites == 0 {
				t.Errorf("python's writes were never partial: %s", out)
			}
			if _, _, err := c.ReadMsg(); err != io.EOF {
				t.Fatalf("after Python exited: ReadMsg error %v, want io.EOF", err)
			}
		})
	}
}

// A Python peer that breaks the format after one good message: the good
// message arrives whole, the lie is an error that hands over nothing, every
// descriptor that came with it is closed by ReadMsg itself (before Close),
// and the stream stays broken (or, for a peer dying mid-message, reads io.EOF).
func TestConnPythonLies(t *testing.T) {
	fdtest.Check(t)
	kinds := map[string]error{
		"fewer":        fdsend.ErrProtocol,
		"more":         fdsend.ErrProtocol,
		"none":         fdsend.ErrProtocol,
		"wrongbytes":   fdsend.ErrProtocol,
		"middata":      fdsend.ErrProtocol,
		"badmagic":     fdsend.ErrProtocol,
		"badversion":   fdsend.ErrProtocol,
		"badflags":     fdsend.ErrProtocol,
		"morewithdata": fdsend.ErrProtocol,
		"shortmore":    fdsend.ErrProtocol,
		"toomany":      fdsend.ErrProtocol,
		"midmsg":       io.ErrUnexpectedEOF,
		"midmore":      io.ErrUnexpectedEOF,
		"midheader":    io.ErrUnexpectedEOF,
	}
	for kind, want := range kinds {
		t.Run(kind, func(t *testing.T) {
			fdtest.Check(t)
			c, wait := fdframePeer(t, nil, "lie", kind)
			wait() // everything is in the socket buffer, the peer has closed
			before := fdtest.Count(t)
			data, files, err := c.ReadMsg()
			if err != nil || string(data) != "ok" || len(files) != 1 {
				closeAll(files)
				t.Fatalf("first message: %q with %d files, %v; want \"ok\" with 1", data, len(files), err)
			}
			files[0].Close()
			data, files, err = c.ReadMsg()
			closeAll(files)
			if !errors.Is(err, want) || data != nil || files != nil {
				t.Fatalf("lie: ReadMsg = %q, %d files, %v; want nothing and an error wrapping %v", data, len(files), err, want)
			}
			if after := fdtest.Count(t); after != before {
				t.Errorf("after the error %d descriptors are open, want %d: the lie's descriptors were not closed", after, before)
			}
			data, files, err = c.ReadMsg()
			closeAll(files)
			if want == io.ErrUnexpectedEOF {
				if err != io.EOF {
					t.Errorf("after an unexpected EOF: ReadMsg error %v, want io.EOF", err)
				}
			} else if err == nil || data != nil || files != nil {
				t.Errorf("after a protocol error: ReadMsg = %q, %d files, %v; want an error", data, len(files), err)
			}
		})
	}
}

// The Go reader's limits apply to a Python writer's >253-file messages, which
// span frames: the totals count, not one frame's.
func TestConnPythonLimits(t *testing.T) {
	fdtest.Check(t)
	dir, _ := fdframeFiles(t, 300)
	c, wait := fdframePeer(t, nil, "send-files", dir, "300")
	wait()
	before := fdtest.Count(t)
	c.SetReadLimits(fdsend.DefaultMaxMsgBytes, 299)
	data, files, err := c.ReadMsg()
	closeAll(files)
	if !errors.Is(err, fdsend.ErrProtocol) || data != nil || files != nil {
		t.Fatalf("ReadMsg = %d bytes, %d files, %v; want an error wrapping ErrProtocol", len(data), len(files), err)
	}
	if after := fdtest.Count(t); after != before {
		t.Errorf("after the error %d descriptors are open, want %d", after, before)
	}

	c, wait = fdframePeer(t, nil, "send-files", dir, "0", "1000")
	wait()
	c.SetReadLimits(999, fdsend.DefaultMaxMsgFiles)
	if data, files, err := c.ReadMsg(); !errors.Is(err, fdsend.ErrProtocol) || data != nil || files != nil {
		closeAll(files)
		t.Fatalf("ReadMsg = %d bytes, %d files, %v; want an error wrapping ErrProtocol", len(data), len(files), err)
	}
}

// WriteMsg puts exactly PROTOCOL.md's example bytes on the wire, each frame's
// descriptors with the call that returns its first header byte.
func TestConnWireExample(t *testing.T) {
	fdtest.Check(t)
	a, b := pair(t, syscall.SOCK_STREAM)
	c := fdsend.NewConn(a)
	defer c.Close()
	if err := b.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	files := devNulls(t, 300)
	type frame struct {
		hex    string
		nfiles int
	}
	for _, tc := range []struct {
		data   string
		nfiles int
		frames []frame
	}{
		{"hi", 2, []frame{{"6664010000000002000000000000000268 69", 2}}},
		{"abc", 300, []frame{
			{"66640101000000fd0000000000000000", 253},
			{"666401000000002f0000000000000003616263", 47},
		}},
	} {
		if err := c.WriteMsg([]byte(tc.data), files[:tc.nfiles]...); err != nil {
			t.Fatal(err)
		}
		for i, fr := range tc.frames {
			want, err := hex.DecodeString(strings.ReplaceAll(fr.hex, " ", ""))
			if err != nil {
				t.Fatal(err)
			}
			// Each frame went with its own sendmsg carrying descriptors, so
			// one Recv returns it whole with exactly its descriptors.
			buf := make([]byte, 64)
			n, got, err := fdsend.Recv(b, buf, 253)
			closeAll(got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf[:n], want) || len(got) != fr.nfiles {
				t.Errorf("%q frame %d: % x with %d files, want % x with %d", tc.data, i, buf[:n], len(got), want, fr.nfiles)
			}
		}
	}
}

// PROTOCOL.md: a receiver's control buffer has room for 253 descriptors plus
// the credentials Linux adds to every read once SO_PASSCRED is set, so a
// full frame is not cut (MSG_CTRUNC) on such a socket.
func TestConnPythonPassCred(t *testing.T) {
	fdtest.Check(t)
	dir, _ := fdframeFiles(t, 506)
	c, wait := fdframePeer(t, nil, "send-many", dir, "253:3", "506:0", "0:9")
	rc, err := c.UnixConn().SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_PASSCRED, 1)
	}); err != nil || serr != nil {
		t.Fatalf("SO_PASSCRED: %v %v", err, serr)
	}
	for _, tc := range []fdframeCase{{253, 3}, {506, 0}, {0, 9}} {
		data, files, err := c.ReadMsg()
		if err != nil {
			t.Fatalf("%v: ReadMsg: %v", tc, err)
		}
		if !bytes.Equal(data, fdframePattern(tc.size)) {
			t.Errorf("%v: got %d bytes", tc, len(data))
		}
		fdframeCheckFiles(t, tc.String(), files, tc.files)
		closeAll(files)
	}
	wait()
}
