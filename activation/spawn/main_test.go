//go:build linux

package spawn

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend/activation"
	"github.com/fdsend/fdsend/activation/internal/fdkind"
	"github.com/fdsend/fdsend/activation/internal/pidfd"
	"github.com/fdsend/fdsend/internal/fdtest"
	"golang.org/x/sys/unix"
)

// childEnv selects what the re-executed test binary does.
const childEnv = "ACTIVATION_TEST_CHILD"

// childTimeout bounds every child process of the tests.
const childTimeout = 20 * time.Second

func TestMain(m *testing.M) {
	fdtest.RunChild(childEnv, map[string]func() error{
		"report": noError(childReport),
		"exec":   noError(childExec),
		"api":    noError(childAPI),
	})
	os.Exit(m.Run())
}

// noError adapts a child role that reports failure by itself.
func noError(f func()) func() error { return func() error { f(); return nil } }

// fdState is one descriptor as a child found it at start.
type fdState struct {
	FD       int
	Target   string
	Cloexec  bool
	Nonblock bool
}

// openFDs lists this process's descriptors with their flags.
func openFDs() []fdState {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		panic(err)
	}
	var out []fdState
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the directory's own descriptor, gone by now
		}
		fdfl, err1 := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		fl, err2 := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, fdState{FD: fd, Target: target, Cloexec: fdfl&unix.FD_CLOEXEC != 0, Nonblock: fl&unix.O_NONBLOCK != 0})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FD < out[j].FD })
	return out
}

// inheritedFDs returns the descriptors above standard error that came
// through exec: those without close-on-exec (exec closes every other one,
// so anything close-on-exec was opened by this process).
func inheritedFDs() []fdState {
	var out []fdState
	for _, s := range openFDs() {
		if s.FD > 2 && !s.Cloexec {
			out = append(out, s)
		}
	}
	return out
}

// fileReport is one entry of Files as a child saw it.
type fileReport struct {
	Name string
	Desc string
	Addr string
}

// report is what the "report" child prints as JSON.
type report struct {
	PID       int
	Env       map[string]string // LISTEN_* as received
	Inherited []fdState         // non-close-on-exec descriptors above 2 at start
	Files     []fileReport
	FilesErr  string
	EnvAfter  []string // LISTEN_* still set after Files
	PidfdID   string   // this process's pidfd inode, if the kernel has pidfs
}

func listenEnv() map[string]string {
	m := map[string]string{}
	for _, v := range listenVars {
		if val, ok := os.LookupEnv(v); ok {
			m[v] = val
		}
	}
	return m
}

func childReport() {
	r := report{PID: os.Getpid(), Env: listenEnv(), Inherited: inheritedFDs()}
	if id, ok := pidfd.OwnID(); ok {
		r.PidfdID = strconv.FormatUint(id, 10)
	}
	fs, err := activation.Files()
	if err != nil {
		r.FilesErr = err.Error()
	}
	for _, f := range fs {
		info, err := fdkind.Of(f.File)
		if err != nil {
			info.Desc = "error: " + err.Error()
		}
		fr := fileReport{Name: f.Name, Desc: info.Desc}
		if rc, err := f.File.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) {
				if sa, err := unix.Getsockname(int(fd)); err == nil {
					fr.Addr = sockaddrString(sa)
				}
			})
		}
		r.Files = append(r.Files, fr)
	}
	for k := range listenEnv() {
		r.EnvAfter = append(r.EnvAfter, k)
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		os.Exit(3)
	}
	// Serve one connection on the inherited listener of the index asked
	// for: "hello <pid>".
	if v := os.Getenv("ACTIVATION_TEST_SERVE"); v != "" {
		i, _ := strconv.Atoi(v)
		if i < len(fs) {
			if l, err := net.FileListener(fs[i].File); err == nil {
				c, err := l.Accept()
				if err == nil {
					fmt.Fprintf(c, "hello %d\n", os.Getpid())
					c.Close()
				}
				l.Close()
			}
		}
	}
}

func sockaddrString(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return (&net.TCPAddr{IP: a.Addr[:], Port: a.Port}).String()
	case *unix.SockaddrInet6:
		return (&net.TCPAddr{IP: a.Addr[:], Port: a.Port}).String()
	case *unix.SockaddrUnix:
		return a.Name
	}
	return fmt.Sprintf("%T", sa)
}

// childExec opens sockets of its own (so that its runtime holds low
// descriptors), a stray descriptor without close-on-exec, and execs the
// test binary in "report" mode in place with Exec.
func childExec() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	stray, err := syscall.Dup(1) // not close-on-exec: must not reach the program
	if err != nil {
		panic(err)
	}
	fmt.Printf("addrs %s %s stray %d\n", l.Addr(), pc.LocalAddr(), stray)
	exe, _ := os.Executable()
	env := testEnv("report", "LISTEN_FDS=99", "LISTEN_PID=1") // replaced by Exec
	err = Exec([]NamedFile{{Name: "web", File: l}, {Name: "dns", File: pc}}, exe, []string{exe, "-test.run=^$"}, env)
	fmt.Fprintln(os.Stderr, "Exec returned:", err)
	os.Exit(5)
}

// runChild runs cmd with a timeout and returns its standard output; a
// non-zero exit fails the test with standard error shown.
func runChild(t *testing.T, cmd *exec.Cmd) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if cmd.Stdout == nil {
		cmd.Stdout = &stdout
	}
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	closeExtra(cmd)
	if err := fdtest.Wait(cmd, childTimeout); err != nil {
		t.Fatalf("child %v: %v\nstdout: %s\nstderr: %s", cmd.Args, err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes()
}

// closeExtra closes the duplicates Command left in cmd.ExtraFiles.
func closeExtra(cmd *exec.Cmd) {
	for _, f := range cmd.ExtraFiles {
		if f != nil {
			f.Close()
		}
	}
}

// testEnv returns this process's environment with the child mode set and
// nothing of the protocol.
func testEnv(mode string, extra ...string) []string {
	env := replaceListenVars(os.Environ())
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, childEnv+"=") {
			out = append(out, kv)
		}
	}
	return append(append(out, childEnv+"="+mode), extra...)
}

// testExe is the path of the running test binary.
func testExe(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func decodeReport(t *testing.T, out []byte) report {
	t.Helper()
	var r report
	dec := json.NewDecoder(bytes.NewReader(out))
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("decoding report %q: %v", out, err)
	}
	return r
}
