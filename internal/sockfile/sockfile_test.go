//go:build linux

package sockfile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// bound makes a socket of typ bound at path, listening if it may; the test
// closes it at the end unless keep is false, in which case it is closed at
// once, leaving a stale file.
func bound(t *testing.T, path string, typ int, backlog int, keep bool) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if typ != unix.SOCK_DGRAM {
		if err := unix.Listen(fd, backlog); err != nil {
			t.Fatal(err)
		}
	}
	if !keep {
		unix.Close(fd)
		return -1
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func TestClear(t *testing.T) {
	types := map[string]int{"stream": unix.SOCK_STREAM, "seqpacket": unix.SOCK_SEQPACKET, "dgram": unix.SOCK_DGRAM}
	for name, typ := range types {
		t.Run("stale "+name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s")
			bound(t, path, typ, 1, false)
			if err := Clear(path); err != nil {
				t.Fatalf("Clear: %v", err)
			}
			if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("stale socket still there: %v", err)
			}
		})
		t.Run("served "+name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s")
			bound(t, path, typ, 16, true)
			if err := Clear(path); !errors.Is(err, syscall.EADDRINUSE) {
				t.Fatalf("Clear = %v, want EADDRINUSE", err)
			}
			if _, err := os.Lstat(path); err != nil {
				t.Fatalf("served socket removed: %v", err)
			}
		})
	}
	t.Run("nothing", func(t *testing.T) {
		if err := Clear(filepath.Join(t.TempDir(), "none")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("full backlog", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "s")
		bound(t, path, unix.SOCK_STREAM, 0, true)
		// Fill the backlog with non-blocking connects until one is refused
		// for now.
		for i := 0; ; i++ {
			fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { unix.Close(fd) })
			err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
			if err == unix.EAGAIN {
				break
			}
			if err != nil || i > 64 {
				t.Fatalf("filling the backlog: connect %d: %v", i, err)
			}
		}
		start := time.Now()
		err := Clear(path)
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("Clear = %v, want EADDRINUSE", err)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Fatalf("Clear took %v on a full backlog", d)
		}
	})
	t.Run("not a socket", func(t *testing.T) {
		dir := t.TempDir()
		file := filepath.Join(dir, "file")
		if err := os.WriteFile(file, []byte("keep"), 0o600); err != nil {
			t.Fatal(err)
		}
		fifo := filepath.Join(dir, "fifo")
		if err := unix.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(dir, "link")
		if err := os.Symlink(file, link); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{file, fifo, link, dir} {
			if err := Clear(p); !errors.Is(err, syscall.EEXIST) {
				t.Errorf("Clear(%s) = %v, want EEXIST", p, err)
			}
			if _, err := os.Lstat(p); err != nil {
				t.Errorf("%s removed: %v", p, err)
			}
		}
	})
}

func TestRemove(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s")
	bound(t, path, unix.SOCK_STREAM, 1, true)
	made, err := Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// A successor renames its own socket over the path: ours is gone, and
	// Remove must leave the successor's alone.
	other := filepath.Join(dir, "other")
	bound(t, other, unix.SOCK_STREAM, 1, true)
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	if err := Remove(path, made); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Fatal(err)
	}
	now, err := Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := Remove(path, now); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Remove left its own socket: %v", err)
	}
	if err := Remove(path, now); err != nil {
		t.Fatalf("Remove of a file that is gone: %v", err)
	}
}
