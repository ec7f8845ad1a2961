//go:build linux

package fdsend_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdtest"
)

// runPython runs a python3 script with sock as its descriptor 3.
func runPython(t *testing.T, script string, sock *os.File, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, fdframePython(), append([]string{"-c", script}, args...)...)
	cmd.ExtraFiles = []*os.File{sock}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("python3: %v\n%s", err, errb.String())
	}
	return out.String()
}

// Python's standard library sends; fdsend receives.
func TestPythonSendsGoReceives(t *testing.T) {
	fdtest.Check(t)
	for _, typ := range []int{syscall.SOCK_STREAM, syscall.SOCK_SEQPACKET, syscall.SOCK_DGRAM} {
		a, b := pair(t, typ)
		af, err := a.File()
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		runPython(t, `
import os, socket, sys
s = socket.socket(fileno=3)
d = sys.argv[1]
fds = []
for i in range(3):
    p = os.path.join(d, "f%d" % i)
    with open(p, "w") as f:
        f.write("python file %d" % i)
    fds.append(os.open(p, os.O_RDONLY))
socket.send_fds(s, [b"from python"], fds)
`, af, dir)
		af.Close()
		buf := make([]byte, 64)
		n, files, err := fdsend.Recv(b, buf, 8)
		if err != nil {
			t.Fatal(err)
		}
		if string(buf[:n]) != "from python" || len(files) != 3 {
			t.Fatalf("got %q with %d files", buf[:n], len(files))
		}
		for i, f := range files {
			data, _ := io.ReadAll(f)
			f.Close()
			if want := "python file " + string(rune('0'+i)); string(data) != want {
				t.Errorf("file %d holds %q, want %q", i, data, want)
			}
		}
	}
}

// fdsend sends; Python's standard library receives and reads the files.
func TestGoSendsPythonReceives(t *testing.T) {
	fdtest.Check(t)
	for _, typ := range []int{syscall.SOCK_STREAM, syscall.SOCK_SEQPACKET, syscall.SOCK_DGRAM} {
		a, b := pair(t, typ)
		files := []any{tempFile(t, "first"), tempFile(t, "second")}
		if _, err := fdsend.Send(a, []byte("to python"), files...); err != nil {
			t.Fatal(err)
		}
		bf, err := b.File()
		if err != nil {
			t.Fatal(err)
		}
		out := runPython(t, `
import os, socket
s = socket.socket(fileno=3)
msg, fds, flags, addr = socket.recv_fds(s, 64, 8)
print(msg.decode(), flags)
for fd in fds:
    print(os.read(fd, 64).decode())
`, bf)
		bf.Close()
		if want := "to python 0\nfirst\nsecond\n"; out != want {
			t.Errorf("python printed %q, want %q", out, want)
		}
		if strings.Contains(out, "Traceback") {
			t.Fatal(out)
		}
	}
}
