// Package fdtest holds test helpers shared by fdsend's packages: a
// descriptor-leak check and a way to run the test binary as another user.
// It is imported only by tests.
package fdtest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Open returns the descriptors this process has open, each with what
// /proc/self/fd says it points at.
func Open(t testing.TB) map[int]string {
	t.Helper()
	dir, err := os.Open("/proc/self/fd")
	if err != nil {
		t.Fatalf("fdtest: %v", err)
	}
	names, err := dir.Readdirnames(-1)
	dirfd := int(dir.Fd())
	dir.Close()
	if err != nil {
		t.Fatalf("fdtest: reading /proc/self/fd: %v", err)
	}
	open := make(map[int]string, len(names))
	for _, n := range names {
		fd, err := strconv.Atoi(n)
		if err != nil || fd == dirfd {
			continue
		}
		target, err := os.Readlink("/proc/self/fd/" + n)
		if err != nil {
			continue // closed between the listing and now
		}
		open[fd] = target
	}
	return open
}

// Count returns how many descriptors this process has open.
func Count(t testing.TB) int {
	t.Helper()
	return len(Open(t))
}

// Check notes the open descriptors now and, when the test ends, fails it if
// any descriptor is open that was not before (a leak), or if one that was
// open before is gone or now points elsewhere (closed by mistake, perhaps
// twice) — so a leak and a wrong close cannot cancel out. Descriptors closed
// by goroutines still finishing are given a second to go. pidfds, which
// os/exec holds until a process is waited for, may vanish. Tests that call
// Check must not run in parallel with tests that open descriptors.
func Check(t testing.TB) {
	t.Helper()
	before := Open(t)
	t.Cleanup(func() {
		var leaked, lost []string
		deadline := time.Now().Add(time.Second)
		for {
			leaked, lost = diff(before, Open(t))
			if len(leaked)+len(lost) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if len(leaked) > 0 {
			t.Errorf("descriptor leak: %d new: %s", len(leaked), strings.Join(leaked, ", "))
		}
		if len(lost) > 0 {
			t.Errorf("descriptors open before the test were closed or replaced: %s", strings.Join(lost, ", "))
		}
	})
}

// diff lists the descriptors of after that are new, and those of before that
// are gone or changed.
func diff(before, after map[int]string) (leaked, lost []string) {
	for fd, target := range after {
		if old, ok := before[fd]; !ok || old != target {
			leaked = append(leaked, fmt.Sprintf("%d -> %s", fd, target))
		}
	}
	for fd, target := range before {
		if now, ok := after[fd]; !ok || now != target {
			if !ok && target == "anon_inode:[pidfd]" {
				continue
			}
			lost = append(lost, fmt.Sprintf("%d (was %s)", fd, target))
		}
	}
	sort.Strings(leaked)
	sort.Strings(lost)
	return leaked, lost
}

// WorldBinary copies the running test binary into a fresh directory that
// every user can read and search, and returns its path, so that a child run
// as another user (nobody) can execute it: the build directory and
// t.TempDir's parent are 0700. The copy is removed when the test ends.
func WorldBinary(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fdsend-world-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst := filepath.Join(dir, filepath.Base(exe))
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, src); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// WorldDir returns a fresh directory that every user may enter and write in
// (mode 0777, sticky bit off), removed when the test ends: a place for a
// socket that a child running as nobody must reach, so that any refusal it
// meets comes from the code under test, not from file permissions.
func WorldDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fdsend-open-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Nobody is the uid and gid of the unprivileged user children run as.
const Nobody = 65534

// RequireRootEnv names the environment variable under which a test that
// needs root fails instead of skipping: CI sets it, so that it can never go
// green by skipping.
const RequireRootEnv = "FDSEND_REQUIRE_ROOT"

// NeedRoot skips the test, saying why, unless the process runs as root (the
// test runs a child as another user, or changes what only root may). With
// FDSEND_REQUIRE_ROOT=1 in the environment it fails instead.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv(RequireRootEnv) == "1" {
		t.Fatalf("needs root (%s), and %s=1 forbids skipping", why, RequireRootEnv)
	}
	t.Skipf("needs root: %s", why)
}

// RequireServersEnv, set to 1 (as CI does, after .ci/servers.sh has
// installed them), makes NeedCommand fail instead of skipping.
const RequireServersEnv = "FDSEND_REQUIRE_SERVERS"

// NeedCommand returns the path of a third-party program a test runs (a
// server such as gunicorn or lighttpd, which .ci/servers.sh installs). If it
// is not installed the test is skipped, saying how to install it; with
// FDSEND_REQUIRE_SERVERS=1 it fails instead.
func NeedCommand(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv(RequireServersEnv) == "1" {
		t.Fatalf("needs %s, and %s=1 forbids skipping: %v", name, RequireServersEnv, err)
	}
	t.Skipf("needs %s (bash .ci/servers.sh installs it as root)", name)
	return ""
}

// RunChild is for TestMain of a package whose tests re-execute the test
// binary as a second process: if the environment variable env names one of
// roles, it runs that role and exits the process (0 on success, 1 with the
// error on stderr, 3 for an unknown role); otherwise it returns and TestMain
// goes on to run the tests.
func RunChild(env string, roles map[string]func() error) {
	role := os.Getenv(env)
	if role == "" {
		return
	}
	run, ok := roles[role]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown child role %q\n", role)
		os.Exit(3)
	}
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "child %s: %v\n", role, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Wait waits for a started cmd for at most d, then kills it and says so:
// no test waits on a stuck child forever.
func Wait(cmd *exec.Cmd, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s: killed after %v without exiting", cmd.Path, d)
	}
}

// Child is the running test binary started again in a role by StartChild.
type Child struct {
	Cmd *exec.Cmd
	// In is the child's standard input: closing it is how a test tells a
	// role that waits on it to finish.
	In io.WriteCloser
	// Out reads the child's standard output. It is a pipe of the test's
	// own, which the child's exit does not close (as exec.Cmd.Wait would
	// close a StdoutPipe), so what it wrote last can still be read.
	Out *bufio.Reader

	done chan struct{}
	err  error
}

// StartChild starts the test binary with -test.run=^$ and env=role (plus
// extra environment), as user nobody through setpriv when asNobody (a
// world-readable copy of the binary; the test is skipped without root, see
// NeedRoot). The child's standard error is the test's. When the test ends
// its standard input is closed, which tells a role that waits on it to
// finish; one that has not exited within ten seconds is killed, and the
// test fails.
func StartChild(t testing.TB, env, role string, asNobody bool, extra ...string) *Child {
	t.Helper()
	var cmd *exec.Cmd
	if asNobody {
		NeedRoot(t, "it runs a child as nobody")
		setpriv, err := exec.LookPath("setpriv")
		if err != nil {
			t.Fatalf("setpriv is required: %v", err)
		}
		cmd = exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", WorldBinary(t), "-test.run=^$")
	} else {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command(exe, "-test.run=^$")
	}
	cmd.Env = append(append(os.Environ(), env+"="+role), extra...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = pw
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		t.Fatal(err)
	}
	c := &Child{Cmd: cmd, In: in, Out: bufio.NewReader(pr), done: make(chan struct{})}
	go func() { c.err = cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		defer pr.Close()
		in.Close()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-c.done
			t.Errorf("child %s did not exit within 10s of the test's end; killed", role)
		}
	})
	return c
}

// ReadLine reads one line of the child's output within d.
func (c *Child) ReadLine(d time.Duration) (string, error) { return ReadLine(c.Out, d) }

// Wait waits for the child to exit within d and returns how it did.
func (c *Child) Wait(d time.Duration) error {
	select {
	case <-c.done:
		return c.err
	case <-time.After(d):
		return fmt.Errorf("%s: did not exit within %v", c.Cmd.Path, d)
	}
}

// ReadLine reads one line (with its newline) from r within d, so that a test
// waiting on a child's output fails instead of hanging. On a timeout the
// reading goroutine is left to finish when r does.
func ReadLine(r *bufio.Reader, d time.Duration) (string, error) {
	type result struct {
		s   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := r.ReadString('\n')
		ch <- result{s, err}
	}()
	select {
	case x := <-ch:
		return x.s, x.err
	case <-time.After(d):
		return "", fmt.Errorf("no line within %v", d)
	}
}
