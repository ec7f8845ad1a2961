//go:build linux

package handoff

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend/internal/fdtest"
	"golang.org/x/sys/unix"
)

// victimUID is the unprivileged user (neither root nor nobody) that opens
// the hand-off point in TestPlantedLockFile: a user that cannot write what
// nobody planted, so that it falls back to opening it read-only.
const victimUID = 65533

// childPlant, run as the attacker, puts a file of kind PLANT_KIND at
// PLANT_PATH (PLANT_TARGET is what a link points to).
func childPlant() error {
	path, target := os.Getenv("PLANT_PATH"), os.Getenv("PLANT_TARGET")
	switch kind := os.Getenv("PLANT_KIND"); kind {
	case "fifo":
		return syscall.Mkfifo(path, 0o644)
	case "dir":
		return os.Mkdir(path, 0o755)
	case "symlink":
		return os.Symlink(target, path)
	case "hardlink":
		return os.Link(target, path)
	case "file":
		return os.WriteFile(path, []byte("1\n"), 0o644)
	case "socket":
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			return err
		}
		l.SetUnlinkOnClose(false)
		return l.Close()
	case "leased":
		// A file of ours with a read lease on it, held until stdin closes:
		// opening it for writing waits for the lease to break (the
		// kernel's lease-break-time, 45 s by default) unless O_NONBLOCK.
		if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		signal.Ignore(syscall.SIGIO) // sent when someone wants the lease broken
		if _, err := unix.FcntlInt(f.Fd(), unix.F_SETLEASE, unix.F_RDLCK); err != nil {
			return fmt.Errorf("F_SETLEASE: %w", err)
		}
		fmt.Println("leased")
		io.Copy(io.Discard, os.Stdin)
		return nil
	default:
		return fmt.Errorf("unknown kind %q", kind)
	}
}

// lockReport is what the "openLock" child found.
type lockReport struct {
	Err  string        `json:"err"`
	Took time.Duration `json:"took"`
}

// childOpenLock opens the hand-off point HANDOFF_POINT with a LockTimeout
// of one second and reports how it went and how long it took.
func childOpenLock() error {
	begin := time.Now()
	u, err := Open(Config{Path: os.Getenv("HANDOFF_POINT"), LockTimeout: time.Second})
	r := lockReport{Took: time.Since(begin)}
	if err == nil {
		u.Close()
		r.Err = "<nil>"
	} else {
		r.Err = err.Error()
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

// TestPlantedLockFile plants, as user nobody, each kind of file another user
// could put at the lock file's path in a world-writable sticky directory,
// and checks that Open refuses it at once with an error that says what is
// there, both as root and as another unprivileged user, and leaves it
// alone. A FIFO used to hang the unprivileged user's Open for ever: the
// read-only fallback opened it without O_NONBLOCK, waiting for a writer.
func TestPlantedLockFile(t *testing.T) {
	fdtest.Check(t)
	fdtest.NeedRoot(t, "it plants files as user nobody")
	exe := fdtest.WorldBinary(t)
	dir := fdtest.WorldDir(t)
	if err := os.Chmod(dir, 0o1777); err != nil { // like /tmp
		t.Fatal(err)
	}
	const content = "precious\n"
	precious := filepath.Join(dir, "precious")
	if err := os.WriteFile(precious, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	// A root-owned file that nobody may write, so may hard-link under
	// fs.protected_hardlinks.
	shared := filepath.Join(dir, "shared")
	if err := os.WriteFile(shared, []byte(content), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o666); err != nil {
		t.Fatal(err)
	}

	plant := func(t *testing.T, kind, path, target string) {
		t.Helper()
		c := fdtest.StartChild(t, childEnv, "plant", true, "PLANT_KIND="+kind, "PLANT_PATH="+path, "PLANT_TARGET="+target)
		if kind != "leased" {
			if err := c.Wait(10 * time.Second); err != nil {
				t.Fatalf("planting a %s as nobody: %v", kind, err)
			}
			return
		}
		// The lease lasts as long as the process: until the test ends.
		if line, err := c.ReadLine(10 * time.Second); line != "leased\n" {
			t.Fatalf("lease holder said %q, %v", line, err)
		}
	}

	for _, tc := range []struct {
		kind   string
		target string
		want   string // in the error of root and of the unprivileged user
	}{
		{kind: "fifo", want: "not a regular file (a FIFO)"},
		{kind: "dir", want: "is a directory, not a regular file"},
		{kind: "symlink", target: precious, want: "is a symbolic link, not a regular file"},
		{kind: "socket", want: "is a socket or a device without a driver, not a regular file"},
		{kind: "chardev", want: "not a regular file (a character device)"},
		{kind: "file", want: "owned by uid 65534, not by us or root"},
		{kind: "leased", want: "owned by uid 65534, not by us or root"},
		{kind: "hardlink", target: shared, want: "a regular file with 2 links, not 1"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			point := filepath.Join(dir, tc.kind+".sock")
			lock := lockPath(point)
			if tc.kind == "chardev" {
				// Nobody may not make device nodes: root makes one like
				// /dev/null and gives it to nobody, as a device node
				// owned by another user on the same filesystem.
				if err := syscall.Mknod(lock, syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
					t.Fatalf("mknod: %v", err)
				}
				if err := os.Chown(lock, fdtest.Nobody, fdtest.Nobody); err != nil {
					t.Fatal(err)
				}
			} else {
				plant(t, tc.kind, lock, tc.target)
			}
			before, err := os.Lstat(lock)
			if err != nil {
				t.Fatal(err)
			}

			// As root, in this process.
			type result struct {
				err  error
				took time.Duration
			}
			ch := make(chan result, 1)
			go func() {
				begin := time.Now()
				u, err := Open(Config{Path: point, LockTimeout: time.Second})
				if err == nil {
					u.Close()
				}
				ch <- result{err, time.Since(begin)}
			}()
			select {
			case r := <-ch:
				if r.err == nil || !strings.Contains(r.err.Error(), lock) || !strings.Contains(r.err.Error(), tc.want) {
					t.Errorf("root: Open: %v; want an error naming %s and saying %q", r.err, lock, tc.want)
				}
				if r.took > 2*time.Second {
					t.Errorf("root: Open took %v, want at most 2s", r.took)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("root: Open hangs") // the goroutine stays stuck
			}

			// As an unprivileged user other than nobody.
			cmd := childCmd(exe, "openLock", "HANDOFF_POINT="+point)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: victimUID, Gid: victimUID}}
			var out bytes.Buffer
			cmd.Stdout = &out
			if err := startWait(cmd, 10*time.Second); err != nil {
				t.Fatalf("uid %d: Open: %v (hangs)", victimUID, err)
			}
			var r lockReport
			if err := json.Unmarshal(out.Bytes(), &r); err != nil {
				t.Fatalf("child said %q: %v", out.Bytes(), err)
			}
			if !strings.Contains(r.Err, lock) || !strings.Contains(r.Err, tc.want) {
				t.Errorf("uid %d: Open: %s; want an error naming %s and saying %q", victimUID, r.Err, lock, tc.want)
			}
			if r.Took > 2*time.Second {
				t.Errorf("uid %d: Open took %v, want at most 2s", victimUID, r.Took)
			}

			// Left alone: the same file, and what a link points to unchanged.
			after, err := os.Lstat(lock)
			if err != nil || !os.SameFile(before, after) || after.Mode() != before.Mode() {
				t.Errorf("%s changed: %v %v, was %v", lock, after, err, before)
			}
			if tc.target != "" {
				if b, err := os.ReadFile(tc.target); err != nil || string(b) != content {
					t.Errorf("%s now holds %q (%v), want %q", tc.target, b, err, content)
				}
			}
			if _, err := os.Lstat(point); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s: %v, want nothing there", point, err)
			}
		})
	}
}
