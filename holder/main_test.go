//go:build linux

package holder

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdtest"
	"golang.org/x/sys/unix"
)

// childEnv selects the role of a re-executed test binary.
const childEnv = "HOLDER_TEST_CHILD"

// childTimeout bounds every wait for a child process.
const childTimeout = 20 * time.Second

var childRoles = map[string]func() error{
	"store-listener": childStoreListener,
	"fetch-serve":    childFetchServe,
	"outsider":       childOutsider,
	"die-mid-store":  childDieMidStore,
	"hog":            childHog,
}

func TestMain(m *testing.M) {
	fdtest.RunChild(childEnv, childRoles)
	os.Exit(m.Run())
}

// childStoreListener listens on a TCP port, stores the listener in the
// holder at HOLDER_SOCK as HOLDER_NAME, prints the address and exits: the
// listener lives on in the holder alone.
func childStoreListener() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	c, err := Dial(os.Getenv("HOLDER_SOCK"))
	if err != nil {
		return err
	}
	if err := c.Store(os.Getenv("HOLDER_NAME"), l, 0, false); err != nil {
		return err
	}
	fmt.Println(l.Addr())
	return nil
}

// childFetchServe fetches HOLDER_NAME, serves one connection on it with its
// PID and exits.
func childFetchServe() error {
	c, err := Dial(os.Getenv("HOLDER_SOCK"))
	if err != nil {
		return err
	}
	files, err := c.Fetch([]string{os.Getenv("HOLDER_NAME")}, false)
	if err != nil {
		return err
	}
	l, err := net.FileListener(files[0])
	files[0].Close()
	if err != nil {
		return err
	}
	fmt.Println("ready")
	l.(*net.TCPListener).SetDeadline(time.Now().Add(childTimeout))
	conn, err := l.Accept()
	if err != nil {
		return err
	}
	fmt.Fprintf(conn, "%d\n", os.Getpid())
	return conn.Close()
}

// outsiderResult is what childOutsider reports: the error code of each
// attempt ("" for success), and how many descriptors it had open before and
// after its fetch.
type outsiderResult struct {
	UID, GID                 int
	Store, Fetch, List, Del  string
	Denied                   map[string]bool
	Messages                 map[string]string
	ListNames                []string
	FDsBefore, FDsAfterFetch int
}

// childOutsider runs as another user and tries every operation.
func childOutsider() error {
	c, err := Dial(os.Getenv("HOLDER_SOCK"))
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	r := outsiderResult{UID: os.Getuid(), GID: os.Getgid(), Denied: map[string]bool{}, Messages: map[string]string{}}
	note := func(op string, err error) string {
		if err == nil {
			return ""
		}
		r.Denied[op] = errors.Is(err, ErrDenied) && errors.Is(err, os.ErrPermission)
		r.Messages[op] = err.Error()
		var he *Error
		if errors.As(err, &he) {
			return he.Code
		}
		return "error: " + err.Error()
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	r.Store = note("store", c.Store("intruder", pw, 0, false))
	pw.Close()
	pr.Close()
	r.FDsBefore = countFDs()
	files, err := c.Fetch([]string{"secret"}, false)
	r.Fetch = note("fetch", err)
	r.FDsAfterFetch = countFDs() + len(files)
	for _, f := range files {
		f.Close()
	}
	entries, err := c.List()
	r.List = note("list", err)
	for _, e := range entries {
		r.ListNames = append(r.ListNames, e.Name)
	}
	r.Del = note("delete", c.Remove("secret"))
	return json.NewEncoder(os.Stdout).Encode(r)
}

// childHog opens as many connections to the holder as it can (up to 200),
// reports how many, and holds them until its standard input closes.
func childHog() error {
	var conns []net.Conn
	for range 200 {
		c, err := net.Dial("unix", os.Getenv("HOLDER_SOCK"))
		if err != nil {
			break
		}
		conns = append(conns, c)
	}
	fmt.Println(len(conns))
	io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
	return nil
}

// childDieMidStore starts a store request with the write end of a pipe it
// inherited as descriptor 3, writes only part of the message, says so, and
// waits to be killed.
func childDieMidStore() error {
	c, err := Dial(os.Getenv("HOLDER_SOCK"))
	if err != nil {
		return err
	}
	pw := os.NewFile(3, "pipe")
	req := []byte(`{"op":"store","name":"halfway"}`)
	hdr := frameHeader(1, len(req))
	// The header and a few bytes of data carry the descriptor; the rest
	// never comes.
	uc := c.conn.UnixConn()
	if _, err := fdsend.Send(uc, append(hdr, req[:5]...), pw); err != nil {
		return err
	}
	pw.Close()
	fmt.Println("sent")
	time.Sleep(childTimeout)
	return errors.New("not killed")
}

// frameHeader builds a PROTOCOL.md frame header by hand.
func frameHeader(nfiles, length int) []byte {
	h := []byte{'f', 'd', 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	for i := 0; i < 4; i++ {
		h[7-i] = byte(nfiles >> (8 * i))
	}
	for i := 0; i < 8; i++ {
		h[15-i] = byte(length >> (8 * i))
	}
	return h
}

// countFDs counts this process's open descriptors.
func countFDs() int {
	names, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(names) - 1 // the directory's own
}

// child returns a command running the test binary (exe) in role with env.
func child(exe, role string, env ...string) *exec.Cmd {
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{childEnv + "=" + role}, env...)...)
	cmd.Stderr = os.Stderr
	return cmd
}

// runChild runs cmd to completion within childTimeout and returns its
// standard output.
func runChild(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("child %v: %v; output %q", cmd.Env[len(cmd.Env)-1], err, out.String())
		}
	case <-time.After(childTimeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("child did not finish in %v", childTimeout)
	}
	return out.String()
}

// startServer runs a Server on a socket in a fresh directory (dir if not
// empty) and closes it when the test ends, checking that Serve returned
// ErrServerClosed.
func startServer(t *testing.T, cfg Config, dir string) (*Server, string) {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, "holder.sock")
	s, err := Listen(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case err := <-served:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Serve did not return after Close")
		}
	})
	return s, path
}

// dial connects a client to the holder and closes it when the test ends.
func dial(t *testing.T, path string) *Client {
	t.Helper()
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	c.SetTimeout(10 * time.Second)
	t.Cleanup(func() { c.Close() })
	return c
}

// pipe returns a pipe; both ends are closed when the test ends.
func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// writerClosed reports whether every write end of the pipe whose read end
// is r has been closed (a read sees EOF), waiting up to d.
func writerClosed(t *testing.T, r *os.File, d time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		fds := []unix.PollFd{{Fd: int32(r.Fd()), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 10)
		if err != nil && err != unix.EINTR {
			t.Fatalf("poll: %v", err)
		}
		if n > 0 && fds[0].Revents&unix.POLLHUP != 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// atoi parses a number from a test's output.
func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
