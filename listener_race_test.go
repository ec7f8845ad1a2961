//go:build linux

package fdsend_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdtest"
	"golang.org/x/sys/unix"
)

// sysFchmodat2 is fchmodat2(2)'s number; Linux gives new system calls the
// same number on every architecture.
const sysFchmodat2 = 452

// auditArch is the seccomp architecture of this build, 0 where these tests
// do not know it.
func auditArch() uint32 {
	switch runtime.GOARCH {
	case "amd64":
		return unix.AUDIT_ARCH_X86_64
	case "arm64":
		return unix.AUDIT_ARCH_AARCH64
	}
	return 0
}

// maskSyscalls makes each system call in errnos fail with its errno, in every
// thread of this process (SECCOMP_FILTER_FLAG_TSYNC) and every later one.
// It is for re-executed children only: it cannot be undone.
func maskSyscalls(errnos map[uintptr]syscall.Errno) error {
	arch := auditArch()
	if arch == 0 {
		return fmt.Errorf("no seccomp architecture for %s", runtime.GOARCH)
	}
	const (
		ldAbsW = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeqK   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		retK   = unix.BPF_RET | unix.BPF_K
	)
	// struct seccomp_data: int nr at 0, __u32 arch at 4.
	var prog []unix.SockFilter
	prog = append(prog,
		unix.SockFilter{Code: ldAbsW, K: 4},
		unix.SockFilter{Code: jeqK, Jt: 1, Jf: 0, K: arch},
		unix.SockFilter{Code: retK, K: unix.SECCOMP_RET_ALLOW},
		unix.SockFilter{Code: ldAbsW, K: 0},
	)
	for nr, errno := range errnos {
		prog = append(prog,
			unix.SockFilter{Code: jeqK, Jt: 0, Jf: 1, K: uint32(nr)},
			unix.SockFilter{Code: retK, K: unix.SECCOMP_RET_ERRNO | uint32(errno)},
		)
	}
	prog = append(prog, unix.SockFilter{Code: retK, K: unix.SECCOMP_RET_ALLOW})
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("PR_SET_NO_NEW_PRIVS: %w", err)
	}
	r, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if e != 0 {
		return fmt.Errorf("seccomp: %w", e)
	}
	if r != 0 {
		return fmt.Errorf("seccomp: thread %d could not be synchronised", r)
	}
	return nil
}

// fchmodat2 calls fchmodat2(2) directly, not following a final symlink.
func fchmodat2(path string, mode uint32) error {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return err
	}
	dirfd := unix.AT_FDCWD
	_, _, e := unix.Syscall6(sysFchmodat2, uintptr(dirfd), uintptr(unsafe.Pointer(p)), uintptr(mode), unix.AT_SYMLINK_NOFOLLOW, 0, 0)
	runtime.KeepAlive(p)
	if e != 0 {
		return e
	}
	return nil
}

// needMaskable skips a test whose child needs a seccomp filter this build
// cannot write, and one that is not run as root (fdtest.NeedRoot).
func needMaskable(t *testing.T) {
	t.Helper()
	if auditArch() == 0 {
		t.Skipf("no seccomp architecture known for %s", runtime.GOARCH)
	}
	fdtest.NeedRoot(t, "it runs an attacker as nobody")
}

func init() {
	// fchmodat2-masked: with fchmodat2 masked, every thread, including
	// those that existed before the filter, gets ENOSYS from it.
	children["fchmodat2-masked"] = func() error {
		path := os.Getenv("FDSEND_TEST_PATH")
		const threads = 4
		var ready sync.WaitGroup
		start := make(chan struct{})
		results := make(chan error, threads)
		ready.Add(threads)
		for range threads {
			go func() {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				ready.Done()
				<-start
				results <- fchmodat2(path, 0o644)
			}()
		}
		ready.Wait()
		if err := maskSyscalls(map[uintptr]syscall.Errno{sysFchmodat2: unix.ENOSYS}); err != nil {
			return err
		}
		close(start)
		for range threads {
			fmt.Printf("thread: %v\n", errName(<-results))
		}
		fmt.Printf("main: %v\n", errName(fchmodat2(path, 0o644)))
		fmt.Printf("x/sys Fchmodat: %v\n", errName(unix.Fchmodat(unix.AT_FDCWD, path, 0o644, unix.AT_SYMLINK_NOFOLLOW)))
		return nil
	}

	// listen-race: with fchmodat2 masked, as on kernels before 6.6, Listen
	// with mode 0666 runs over and over at FDSEND_TEST_PATH while an
	// attacker swaps symlinks to FDSEND_TEST_TARGET in; it stops early if
	// the target's mode changes.
	children["listen-race"] = func() error {
		if err := maskSyscalls(map[uintptr]syscall.Errno{sysFchmodat2: unix.ENOSYS}); err != nil {
			return err
		}
		if err := fchmodat2("/", 0o755); err != unix.ENOSYS {
			return fmt.Errorf("fchmodat2 not masked: %v", err)
		}
		path, target := os.Getenv("FDSEND_TEST_PATH"), os.Getenv("FDSEND_TEST_TARGET")
		rounds, listened := 0, 0
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); rounds++ {
			os.Remove(path)
			if l, err := (fdsend.ListenConfig{Mode: 0o666}).Listen(path); err == nil {
				listened++
				l.Close()
			}
			st, err := os.Stat(target)
			if err != nil {
				return err
			}
			if st.Mode().Perm() != 0o600 {
				break
			}
		}
		fmt.Printf("rounds=%d listened=%d\n", rounds, listened)
		return nil
	}

	// swap-symlink, run as nobody: until stdin closes, swap what is at
	// FDSEND_TEST_PATH with a symlink to FDSEND_TEST_TARGET as fast as it
	// can (renameat2 RENAME_EXCHANGE, so a socket Listen made there keeps
	// coming and going), and keep that symlink one.
	children["swap-symlink"] = func() error {
		path, target := os.Getenv("FDSEND_TEST_PATH"), os.Getenv("FDSEND_TEST_TARGET")
		link := path + ".link"
		stopped := make(chan struct{})
		go func() { io.Copy(io.Discard, os.Stdin); close(stopped) }()
		relink := func() error {
			var st unix.Stat_t
			if unix.Lstat(link, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
				return nil
			}
			os.Remove(link)
			return os.Symlink(target, link)
		}
		if err := relink(); err != nil {
			return err
		}
		fmt.Println("ready")
		swaps := 0
		for i, deadline := 0, time.Now().Add(30*time.Second); time.Now().Before(deadline); i++ {
			if i%64 == 0 {
				select {
				case <-stopped:
					fmt.Printf("swaps=%d\n", swaps)
					return nil
				default:
				}
			}
			err := unix.Renameat2(unix.AT_FDCWD, link, unix.AT_FDCWD, path, unix.RENAME_EXCHANGE)
			if err == nil {
				swaps++
			}
			// After an odd number of swaps the link holds what was at
			// path; once nothing is at path, or both hold sockets, start
			// again from a fresh symlink.
			if err != nil || (swaps%2 == 0 && i%16 == 0) {
				if err := relink(); err != nil {
					return err
				}
			}
		}
		return errors.New("not stopped within 30 s")
	}
}

func init() {
	// listen-no-unshare: where a thread cannot get a umask of its own
	// (unshare masked with EPERM, fchmodat2 with ENOSYS), Listen gives the
	// mode when the umask leaves it whole and otherwise refuses, leaving
	// nothing at the path.
	children["listen-no-unshare"] = func() error {
		if err := maskSyscalls(map[uintptr]syscall.Errno{unix.SYS_UNSHARE: unix.EPERM, sysFchmodat2: unix.ENOSYS}); err != nil {
			return err
		}
		dir := os.Getenv("FDSEND_TEST_PATH")
		for _, tc := range []struct {
			umask int
			mode  os.FileMode
		}{{0, 0o666}, {0o022, 0o600}, {0o022, 0o666}} {
			path := filepath.Join(dir, fmt.Sprintf("s-%o-%o", tc.umask, tc.mode))
			syscall.Umask(tc.umask)
			l, err := fdsend.ListenConfig{Mode: tc.mode}.Listen(path)
			fmt.Printf("umask %#o mode %#o: ", tc.umask, tc.mode)
			if err != nil {
				_, serr := os.Lstat(path)
				fmt.Printf("refused, EPERM %v, path exists %v\n", errors.Is(err, unix.EPERM), serr == nil)
				continue
			}
			st, err := os.Lstat(path)
			if err != nil {
				return err
			}
			fmt.Printf("%v\n", st.Mode())
			l.Close()
		}
		return nil
	}
}

// Where unshare(CLONE_FS) is refused (a sandbox), Listen cannot clear the
// umask for its bind alone: it still gives the mode when the umask leaves it
// whole, and otherwise refuses and removes its socket; it never falls back
// to a chmod by path.
func TestListenerModeNoUnshare(t *testing.T) {
	needMaskable(t)
	dir := t.TempDir()
	out := runChild(t, "listen-no-unshare", func(c *exec.Cmd) { c.Env = append(c.Env, "FDSEND_TEST_PATH="+dir) })
	want := "umask 0 mode 0666: Srw-rw-rw-\n" +
		"umask 022 mode 0600: Srw-------\n" +
		"umask 022 mode 0666: refused, EPERM true, path exists false\n"
	if out != want {
		t.Errorf("child reports\n%swant\n%s", out, want)
	}
}

// errName renders an error as its errno's name where it has one.
func errName(err error) string {
	var e syscall.Errno
	if errors.As(err, &e) {
		return unix.ErrnoName(e)
	}
	return fmt.Sprint(err)
}

// The seccomp filter the race test relies on really turns fchmodat2 into
// ENOSYS in every thread of the child, as on kernels before 6.6 (Debian 12,
// Ubuntu 22.04, RHEL 9), so that test covers Listen's path there.
func TestSeccompMasksFchmodat2(t *testing.T) {
	needMaskable(t)
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := fchmodat2(file, 0o600); err != nil {
		t.Logf("fchmodat2 unmasked: %v (this kernel lacks it)", err)
	}
	out := runChild(t, "fchmodat2-masked", func(c *exec.Cmd) { c.Env = append(c.Env, "FDSEND_TEST_PATH="+file) })
	want := strings.Repeat("thread: ENOSYS\n", 4) + "main: ENOSYS\nx/sys Fchmodat: " + unix.ErrnoName(unix.EOPNOTSUPP) + "\n"
	if out != want {
		t.Errorf("child reports\n%swant\n%s", out, want)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the masked calls changed the file: %v %v", st.Mode(), err)
	}
}

// No path race makes Listen change the mode of anything but the socket it
// made. Where fchmodat2 is missing (masked here), Listen used to check that
// the path was a socket and then chmod it, following a symlink that a user
// who can write the directory swapped in between: here nobody swaps symlinks
// to a root-owned 0600 file in, over and over, while Listen(Mode 0666) runs
// in a loop; the file must keep its mode.
func TestListenerModeRace(t *testing.T) {
	needMaskable(t)
	fdtest.Check(t)
	bin := fdtest.WorldBinary(t)
	dir := fdtest.WorldDir(t)
	target := filepath.Join(t.TempDir(), "root-only")
	if err := os.WriteFile(target, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "sock")
	env := []string{"FDSEND_TEST_PATH=" + path, "FDSEND_TEST_TARGET=" + target}

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	attacker := exec.CommandContext(ctx, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin, "-test.run=^$")
	attacker.Env = append(append(os.Environ(), childEnv+"=swap-symlink"), env...)
	attacker.Dir = "/"
	attacker.Stderr = os.Stderr
	stdin, err := attacker.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := attacker.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := attacker.Start(); err != nil {
		t.Fatal(err)
	}
	defer attacker.Wait()
	defer stdin.Close()
	r := bufio.NewReader(stdout)
	if line, err := fdtest.ReadLine(r, 10*time.Second); line != "ready\n" {
		t.Fatalf("attacker: %q %v", line, err)
	}

	out := runChild(t, "listen-race", func(c *exec.Cmd) { c.Env = append(c.Env, env...) })

	stdin.Close()
	swaps, err := fdtest.ReadLine(r, 10*time.Second)
	if err != nil {
		t.Fatalf("attacker did not stop: %v", err)
	}
	if err := attacker.Wait(); err != nil {
		t.Fatalf("attacker: %v", err)
	}
	t.Logf("listener: %s; attacker: %s", strings.TrimSpace(out), strings.TrimSpace(swaps))
	st, err := os.Stat(target)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("Listen changed the mode of a root-owned file a symlink pointed at: %v, was 0600 (%s)", st.Mode().Perm(), strings.TrimSpace(out))
	}
	var rounds, listened int
	if _, err := fmt.Sscanf(out, "rounds=%d listened=%d", &rounds, &listened); err != nil || listened == 0 {
		t.Fatalf("the race never let a Listen through, so it proves nothing: %q %v", out, err)
	}
}
