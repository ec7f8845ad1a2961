//go:build linux

package fdsend_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdtest"
)

func TestListenerMode(t *testing.T) {
	fdtest.Check(t)
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	for _, tc := range []struct {
		mode os.FileMode
		want os.FileMode
	}{{0, 0o600}, {0o660, 0o660}, {0o666, 0o666}} {
		for _, umask := range []int{0, 0o077} {
			syscall.Umask(umask)
			path := filepath.Join(dir, fmt.Sprintf("s-%o-%o", tc.mode, umask))
			l, err := fdsend.ListenConfig{Mode: tc.mode}.Listen(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := syscall.Umask(umask); got != umask {
				t.Errorf("Listen left the process umask %o, was %o", got, umask)
			}
			st, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != tc.want || st.Mode().Type() != os.ModeSocket {
				t.Errorf("mode %o, umask %o: socket file is %v, want %o", tc.mode, umask, st.Mode(), tc.want)
			}
			l.Close()
			if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Close left the socket file: %v", err)
			}
		}
	}
}

func TestListenerPaths(t *testing.T) {
	fdtest.Check(t)
	dir := t.TempDir()

	// A stale socket (nothing listening) is replaced.
	stale := filepath.Join(dir, "stale")
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false)
	ul.Close()
	l, err := fdsend.Listen(stale)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}

	// One in use is refused.
	if _, err := fdsend.Listen(stale); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("socket in use: %v", err)
	}

	// A successor that took the path over keeps it when we close.
	if err := os.Remove(stale); err != nil {
		t.Fatal(err)
	}
	l2, err := fdsend.Listen(stale)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	c, err := fdsend.Dial(stale)
	if err != nil {
		t.Fatalf("the successor's socket is gone: %v", err)
	}
	c.Close()
	l2.Close()

	// Anything but a socket is refused and left alone.
	regular := filepath.Join(dir, "regular")
	os.WriteFile(regular, []byte("keep me"), 0o644)
	if _, err := fdsend.Listen(regular); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("regular file: %v", err)
	}
	if data, _ := os.ReadFile(regular); string(data) != "keep me" {
		t.Errorf("regular file changed: %q", data)
	}
	os.Mkdir(filepath.Join(dir, "d"), 0o755)
	if _, err := fdsend.Listen(filepath.Join(dir, "d")); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("directory: %v", err)
	}
	if _, err := fdsend.Listen(""); err == nil {
		t.Error("empty path accepted")
	}
}

func TestListenerAbstractAndAccept(t *testing.T) {
	fdtest.Check(t)
	name := fmt.Sprintf("@fdsend-test-%d", os.Getpid())
	l, err := fdsend.Listen(name)
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan *fdsend.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	c, err := fdsend.Dial(name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := <-accepted
	defer s.Close()
	if err := c.WriteMsg([]byte("over abstract"), devNulls(t, 2)...); err != nil {
		t.Fatal(err)
	}
	data, files, err := s.ReadMsg()
	if err != nil || string(data) != "over abstract" || len(files) != 2 {
		t.Fatalf("%q %d %v", data, len(files), err)
	}
	closeAll(files)

	// Close unblocks Accept.
	done := make(chan error, 1)
	go func() { _, err := l.Accept(); done <- err }()
	time.Sleep(50 * time.Millisecond)
	l.Close()
	awaitErr(t, done, net.ErrClosed, "Close did not unblock Accept")
}

func init() {
	children["dial-and-read"] = func() error {
		c, err := fdsend.Dial(os.Getenv("FDSEND_TEST_PATH"))
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		data, files, err := c.ReadMsg()
		for _, f := range files {
			f.Close()
		}
		if err != nil {
			fmt.Printf("error: %v", err)
			return nil
		}
		fmt.Printf("got %q with %d files", data, len(files))
		return nil
	}
}

// runAsNobody runs the test binary as user nobody in the given role.
func runAsNobody(t *testing.T, bin, role string, env ...string) string {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+role), env...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: fdtest.Nobody, Gid: fdtest.Nobody}}
	if err := cmd.Run(); err != nil {
		t.Fatalf("child as nobody: %v: %s", err, out.String())
	}
	return out.String()
}

// The allow-list, proven with a peer running as nobody on a socket every
// user may reach: a refusal comes from the list, not from permissions.
func TestListenerAllowList(t *testing.T) {
	fdtest.Check(t)
	fdtest.NeedRoot(t, "it runs a child as nobody")
	bin := fdtest.WorldBinary(t)
	dir := fdtest.WorldDir(t)
	for _, tc := range []struct {
		name  string
		cfg   fdsend.ListenConfig
		allow bool
	}{
		{"uid listed", fdsend.ListenConfig{Mode: 0o666, AllowUIDs: []int{0, fdtest.Nobody}}, true},
		{"gid listed", fdsend.ListenConfig{Mode: 0o666, AllowGIDs: []int{fdtest.Nobody}}, true},
		{"root only", fdsend.ListenConfig{Mode: 0o666, AllowUIDs: []int{0}, AllowGIDs: []int{0}}, false},
		{"no list", fdsend.ListenConfig{Mode: 0o666}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fdtest.Check(t)
			path := filepath.Join(dir, "s"+strconv.Itoa(len(tc.name)))
			l, err := tc.cfg.Listen(path)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			refused := make(chan fdsend.Cred, 4)
			l.SetRefusedHook(func(c fdsend.Cred, err error) { refused <- c })
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					cred, _ := c.PeerCred()
					c.WriteMsg([]byte("uid "+strconv.Itoa(cred.UID)), devNulls(t, 1)...)
					c.Close()
				}
			}()
			out := runAsNobody(t, bin, "dial-and-read", "FDSEND_TEST_PATH="+path)
			if tc.allow {
				if out != `got "uid 65534" with 1 files` {
					t.Errorf("allowed peer got %q", out)
				}
				return
			}
			if !strings.HasPrefix(out, "error:") || !strings.Contains(out, "EOF") {
				t.Errorf("refused peer got %q", out)
			}
			select {
			case c := <-refused:
				if c.UID != fdtest.Nobody {
					t.Errorf("refused %+v", c)
				}
			case <-time.After(5 * time.Second):
				t.Error("the listener did not report the refusal")
			}
		})
	}
}

// TestListenerCloseTwice: a second Close removes nothing. The first one
// unlinked our file, so its inode number is free, and the next socket at
// the path often gets it: comparing device and inode again would take the
// successor's live socket for ours.
func TestListenerCloseTwice(t *testing.T) {
	fdtest.Check(t)
	// ext4 and tmpfs hand a freed inode number to the next file at once.
	for _, base := range []string{t.TempDir(), "/var/tmp"} {
		dir, err := os.MkdirTemp(base, "fdsend-close-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "s.sock")
		for round := range 50 {
			first, err := fdsend.Listen(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := first.Close(); err != nil {
				t.Fatal(err)
			}
			next, err := fdsend.Listen(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := first.Close(); !errors.Is(err, net.ErrClosed) {
				t.Errorf("second Close: %v, want net.ErrClosed", err)
			}
			_, serr := os.Lstat(path)
			next.Close()
			if serr != nil {
				t.Fatalf("%s round %d: a second Close of the first listener removed the next one's socket: %v", base, round, serr)
			}
		}
	}
}
