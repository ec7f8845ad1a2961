//go:build linux

package fdsend_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend"
	"golang.org/x/sys/unix"
)

// pair returns a connected socket pair of the given type, closed when the
// test ends.
func pair(t *testing.T, typ int) (a, b *net.UnixConn) {
	t.Helper()
	x, y, err := fdsend.Socketpair(typ)
	if err != nil {
		t.Fatalf("Socketpair: %v", err)
	}
	t.Cleanup(func() { x.Close(); y.Close() })
	return x, y
}

// fileID identifies the open file behind a descriptor.
type fileID struct{ dev, ino uint64 }

func idOfFD(t *testing.T, fd int) fileID {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatalf("fstat %d: %v", fd, err)
	}
	return fileID{uint64(st.Dev), st.Ino}
}

func idOf(t *testing.T, v any) fileID {
	t.Helper()
	var fd int
	switch x := v.(type) {
	case int:
		fd = x
	case syscall.Conn:
		rc, err := x.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var id fileID
		if err := rc.Control(func(u uintptr) { id = idOfFD(t, int(u)) }); err != nil {
			t.Fatal(err)
		}
		return id
	default:
		t.Fatalf("idOf: %T", v)
	}
	return idOfFD(t, fd)
}

// tempFile returns an open temporary file holding content.
func tempFile(t *testing.T, content string) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "data")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	return f
}

// devNulls opens n files on /dev/null, closed when the test ends.
func devNulls(t *testing.T, n int) []any {
	t.Helper()
	files := make([]any, n)
	for i := range files {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		files[i] = f
	}
	return files
}

// closeAll closes received files.
func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// isCloexec reports whether fd has FD_CLOEXEC set.
func isCloexec(t *testing.T, fd int) bool {
	t.Helper()
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		t.Fatalf("F_GETFD %d: %v", fd, err)
	}
	return flags&unix.FD_CLOEXEC != 0
}

// runChild re-executes the test binary in the given role and returns its
// stdout; it fails the test if the child fails or takes over 30 seconds.
func runChild(t *testing.T, role string, setup func(*exec.Cmd)) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+role)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if setup != nil {
		setup(cmd)
	}
	if err := cmd.Run(); err != nil {
		t.Fatalf("child %s: %v\nstdout: %s\nstderr: %s", role, err, out.String(), errb.String())
	}
	return out.String()
}

// osNewFile wraps a descriptor the way Recv does.
func osNewFile(fd int) *os.File { return os.NewFile(uintptr(fd), "fdsend-received") }

// awaitErr waits up to five seconds for the error of a call blocked in
// another goroutine, and fails the test unless it came and wraps want. what
// says what should have unblocked the call.
func awaitErr(t *testing.T, done <-chan error, want error, what string) {
	t.Helper()
	select {
	case err := <-done:
		if !errors.Is(err, want) {
			t.Fatalf("%s: the call returned %v, want an error wrapping %v", what, err, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: the call is still blocked after 5 s", what)
	}
}
