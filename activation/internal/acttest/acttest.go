// Package acttest holds the test helpers that package activation (the
// receiving side) and package activation/spawn (the launching side) share:
// running the test binary again as a child in a role, the environment such
// a child gets, its open descriptors as it sees them, sockets to hand over,
// and systemd-socket-activate. It is imported only by those packages' tests.
package acttest

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdname"
	"github.com/fdsend/fdsend/internal/fdtest"
)

// ChildEnv selects what the re-executed test binary does: the role named by
// its value.
const ChildEnv = "ACTIVATION_TEST_CHILD"

// ChildTimeout bounds every child process of the tests, and every wait on
// one.
const ChildTimeout = 20 * time.Second

// Main is the body of TestMain: in a child started with ChildEnv set, it runs
// that role (each reports its own failure, by its output or exit status) and
// exits; otherwise it runs the tests.
func Main(m *testing.M, roles map[string]func()) {
	wrapped := make(map[string]func() error, len(roles))
	for name, f := range roles {
		wrapped[name] = func() error { f(); return nil }
	}
	fdtest.RunChild(ChildEnv, wrapped)
	os.Exit(m.Run())
}

// Env returns this process's environment without ChildEnv and without any
// variable of the protocol, with the child role mode and then extra added.
func Env(mode string, extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name != ChildEnv && !slices.Contains(fdname.ListenVars[:], name) {
			out = append(out, kv)
		}
	}
	return append(append(out, ChildEnv+"="+mode), extra...)
}

// ListenEnv returns the variables of the protocol that are set in this
// process, with their values.
func ListenEnv() map[string]string {
	m := map[string]string{}
	for _, v := range fdname.ListenVars {
		if val, ok := os.LookupEnv(v); ok {
			m[v] = val
		}
	}
	return m
}

// Exe returns the path of the running test binary.
func Exe(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// Command returns a Cmd that runs this test binary, running no tests, in
// role, with extra in its environment.
func Command(t testing.TB, role string, extra ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(Exe(t), "-test.run=^$")
	cmd.Env = Env(role, extra...)
	return cmd
}

// RunChild starts cmd, closes this process's copies of cmd.ExtraFiles, waits
// at most ChildTimeout and returns the child's standard output (collected
// unless cmd.Stdout is set); a failure to start or a non-zero exit fails the
// test with standard error shown.
func RunChild(t testing.TB, cmd *exec.Cmd) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if cmd.Stdout == nil {
		cmd.Stdout = &stdout
	}
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	CloseExtra(cmd)
	if err := fdtest.Wait(cmd, ChildTimeout); err != nil {
		t.Fatalf("child %v: %v\nstdout: %s\nstderr: %s", cmd.Args, err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes()
}

// Start starts cmd, which is to run until killed, and closes this process's
// copies of cmd.ExtraFiles; when the test ends the child is killed and
// waited for.
func Start(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	CloseExtra(cmd)
	t.Cleanup(func() {
		cmd.Process.Kill()
		fdtest.Wait(cmd, ChildTimeout)
	})
}

// CloseExtra closes this process's copies of cmd.ExtraFiles (for a Cmd of
// spawn.Command, the duplicates it made), once the child has them or will
// not be started.
func CloseExtra(cmd *exec.Cmd) {
	for _, f := range cmd.ExtraFiles {
		if f != nil {
			f.Close()
		}
	}
}

// Decode decodes the first JSON value of a child's output out as a T; a
// malformed one fails the test.
func Decode[T any](t testing.TB, out []byte) T {
	t.Helper()
	var v T
	if err := json.NewDecoder(bytes.NewReader(out)).Decode(&v); err != nil {
		t.Fatalf("decoding %q: %v", out, err)
	}
	return v
}

// ListenTCP returns a TCP listener on a free loopback port, closed when the
// test ends.
func ListenTCP(t testing.TB) *net.TCPListener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.(*net.TCPListener)
}

// ListenUDP returns a UDP socket on a free loopback port, closed when the
// test ends.
func ListenUDP(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.UDPConn)
}

// Pipe returns the two ends of a pipe, closed when the test ends.
func Pipe(t testing.TB) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// StreamPair returns a connected pair of Unix stream sockets, closed when the
// test ends.
func StreamPair(t testing.TB) (a, b *net.UnixConn) {
	t.Helper()
	a, b, err := fdsend.Socketpair(syscall.SOCK_STREAM)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// SocketActivate returns the path of systemd-socket-activate; its absence
// fails the test.
func SocketActivate(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/systemd-socket-activate", "/bin/systemd-socket-activate"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Fatalf("systemd-socket-activate is required: %v", err)
	}
	return p
}

// DialRetry dials until the address accepts connections, for at most
// ChildTimeout.
func DialRetry(t testing.TB, network, addr string) net.Conn {
	t.Helper()
	deadline := time.Now().Add(ChildTimeout)
	for {
		c, err := net.DialTimeout(network, addr, time.Second)
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("dial %s %s: %v", network, addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
