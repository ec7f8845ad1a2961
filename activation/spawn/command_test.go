//go:build linux

package spawn

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend/activation/internal/acttest"
	"github.com/fdsend/fdsend/internal/fdtest"
	"golang.org/x/sys/unix"
)

// checkReport checks what every child of Command or Exec must see: LISTEN_PID
// its own PID, LISTEN_FDS and LISTEN_FDNAMES as sent, LISTEN_PIDFDID its own
// pidfd inode, exactly the descriptors 3.. inherited, each blocking, and
// Files giving the names.
func checkReport(t *testing.T, r report, names []string) {
	t.Helper()
	if got, want := r.Env[envPID], strconv.Itoa(r.PID); got != want {
		t.Errorf("LISTEN_PID = %q, child's PID is %s", got, want)
	}
	if got, want := r.Env[envFDs], strconv.Itoa(len(names)); got != want {
		t.Errorf("LISTEN_FDS = %q, want %q", got, want)
	}
	if got, want := r.Env[envFDNames], strings.Join(names, ":"); got != want {
		t.Errorf("LISTEN_FDNAMES = %q, want %q", got, want)
	}
	if r.PidfdID == "" {
		t.Errorf("the child found no pidfs on this kernel")
	} else if got := r.Env[envPIDFDID]; got != r.PidfdID {
		t.Errorf("LISTEN_PIDFDID = %q, child's pidfd inode is %s", got, r.PidfdID)
	}
	if len(r.Inherited) != len(names) {
		t.Errorf("child inherited %d descriptors above stdio, want %d: %+v", len(r.Inherited), len(names), r.Inherited)
	}
	for i, s := range r.Inherited {
		if s.FD != listenStart+i {
			t.Errorf("inherited descriptor %d: number %d, want %d (%+v)", i, s.FD, listenStart+i, r.Inherited)
		}
		if s.Nonblock {
			t.Errorf("inherited descriptor %d (%s) is O_NONBLOCK", s.FD, s.Target)
		}
	}
	if r.FilesErr != "" {
		t.Errorf("Files in the child: %s", r.FilesErr)
	}
	if len(r.Files) != len(names) {
		t.Fatalf("Files gave %d entries, want %d: %+v", len(r.Files), len(names), r.Files)
	}
	for i, f := range r.Files {
		if f.Name != names[i] {
			t.Errorf("Files[%d].Name = %q, want %q", i, f.Name, names[i])
		}
	}
	if len(r.EnvAfter) != 0 {
		t.Errorf("LISTEN_* still set after Files: %v", r.EnvAfter)
	}
}

// TestCommandReport hands a child every kind of descriptor and checks what
// the child sees. The listeners are Go sockets, so O_NONBLOCK is set on
// their open file descriptions: the child must see them blocking.
func TestCommandReport(t *testing.T) {
	fdtest.Check(t)
	tcp := acttest.ListenTCP(t)
	udp := acttest.ListenUDP(t)
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	a, _ := acttest.StreamPair(t)
	pr, _ := acttest.Pipe(t)
	reg := tempFile(t)
	// A raw integer descriptor, too.
	rawFD, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rawFD)
	// A stray descriptor without close-on-exec must not reach the child.
	stray, err := syscall.Dup(1)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(stray)

	files := []NamedFile{
		{"web", tcp}, {"dns", udp}, {"ctl", ul}, {"conn", a}, {"log", pr}, {"state", reg}, {"null", rawFD},
	}
	names := namesOf(files)
	cmd := roleCommand(t, files, acttest.Exe(t), "report", "LISTEN_FDS=42", "LISTEN_FDNAMES=bogus") // replaced
	r := runReport(t, cmd)
	if r.PID != cmd.Process.Pid {
		t.Errorf("the program ran as PID %d, the Cmd's process is %d: the trampoline did not exec in place", r.PID, cmd.Process.Pid)
	}
	checkReport(t, r, names)
	wantDesc := []string{"a listening IPv4 stream socket", "an IPv4 datagram socket", "a listening Unix stream socket",
		"a connected Unix stream socket", "a pipe or FIFO", "a regular file", "a character device"}
	for i, d := range wantDesc {
		if i < len(r.Files) && r.Files[i].Desc != d {
			t.Errorf("Files[%d] (%s) is %q, want %q", i, names[i], r.Files[i].Desc, d)
		}
	}
	if r.Files[0].Addr != tcp.Addr().String() {
		t.Errorf("child's web socket is at %s, ours at %s", r.Files[0].Addr, tcp.Addr())
	}
	if r.Files[2].Addr != sock {
		t.Errorf("child's ctl socket is at %q, ours at %q", r.Files[2].Addr, sock)
	}
}

// TestCommandNonblockingStdin starts the child with a non-blocking socket
// as standard input: the Go runtime of the trampoline then opens its poller
// as it starts, and must not end up on the descriptors being handed over.
func TestCommandNonblockingStdin(t *testing.T) {
	fdtest.Check(t)
	stdin := nonblockingSocket(t)
	tcp := acttest.ListenTCP(t)
	cmd := roleCommand(t, []NamedFile{{"a", tcp}, {"b", tcp}}, acttest.Exe(t), "report")
	cmd.Stdin = stdin
	r := runReport(t, cmd)
	checkReport(t, r, []string{"a", "b"})
	if r.PID != cmd.Process.Pid {
		t.Errorf("PID %d, want %d", r.PID, cmd.Process.Pid)
	}
}

// nonblockingSocket returns one end of a socket pair in non-blocking mode,
// as an *os.File that os/exec passes as it is; it is closed when the test
// ends.
func nonblockingSocket(t *testing.T) *os.File {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fds[1])
	f := os.NewFile(uintptr(fds[0]), "nonblocking")
	t.Cleanup(func() { f.Close() })
	return f
}

// roleCommand returns Command(files) for prog, this test binary or a copy of
// it, to run in role with extra in its environment.
func roleCommand(t *testing.T, files []NamedFile, prog, role string, extra ...string) *exec.Cmd {
	t.Helper()
	cmd, err := Command(files, prog, "-test.run=^$")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = acttest.Env(role, extra...)
	return cmd
}

// runReport runs cmd, which runs this test binary in the "report" role, and
// returns what the child reported.
func runReport(t *testing.T, cmd *exec.Cmd) report {
	t.Helper()
	return acttest.Decode[report](t, acttest.RunChild(t, cmd))
}

// TestTrampolineSecondHop runs the trampoline directly with the files at
// high numbers and the slots 3 and 4 free, and a non-blocking standard
// input: the trampoline's runtime takes the free slots for its poller as it
// starts, so the trampoline must hand the slots on and exec itself again.
func TestTrampolineSecondHop(t *testing.T) {
	fdtest.Check(t)
	stdin := nonblockingSocket(t)
	tcp := acttest.ListenTCP(t)
	f, err := tcp.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	exe := acttest.Exe(t)
	// Descriptors 3..9 closed in the child, the files at 10 and 11.
	extra := make([]*os.File, 9)
	extra[7], extra[8] = f, f
	cmd := &exec.Cmd{
		Path:       exe,
		Args:       trampolineArgs(0, []int{10, 11}, []string{"x", "y"}, "", exe, []string{exe, "-test.run=^$"}),
		Env:        acttest.Env("report"),
		Stdin:      stdin,
		ExtraFiles: extra,
	}
	r := runReport(t, cmd)
	checkReport(t, r, []string{"x", "y"})
}

// TestTrampolineRuntimeFDsAtStart checks the premise of TestTrampolineSecondHop:
// a Go program started with free low slots (here with a non-blocking standard
// input too) has close-on-exec descriptors of its own at 3 before main: the
// runtime's poller, or the cgroup files Go reads for GOMAXPROCS.
func TestTrampolineRuntimeFDsAtStart(t *testing.T) {
	fdtest.Check(t)
	stdin := nonblockingSocket(t)
	cmd := exec.Command("/bin/sh", "-c", `exec "$0" -test.run='^TestHelperListFDs$' -test.v`, acttest.Exe(t))
	cmd.Env = acttest.Env("", "ACTIVATION_TEST_LISTFDS=1")
	cmd.Stdin = stdin
	out := acttest.RunChild(t, cmd)
	if !bytes.Contains(out, []byte("fd 3 cloexec")) {
		t.Errorf("a Go program with non-blocking stdin has no close-on-exec descriptor 3 of its own at start:\n%s", out)
	}
}

// TestHelperListFDs is run by TestTrampolineRuntimeFDsAtStart in a child.
func TestHelperListFDs(t *testing.T) {
	if os.Getenv("ACTIVATION_TEST_LISTFDS") == "" {
		t.Skip("helper for TestTrampolineRuntimeFDsAtStart")
	}
	for _, s := range acttest.OpenFDs() {
		if s.Cloexec {
			fmt.Printf("fd %d cloexec %s\n", s.FD, s.Target)
		}
	}
}

// TestExec runs a child that opens sockets and a stray descriptor, then
// replaces itself with Exec: the program must keep the PID, receive the two
// sockets at 3 and 4 in blocking mode, and nothing else.
func TestExec(t *testing.T) {
	fdtest.Check(t)
	for _, nb := range []bool{false, true} {
		t.Run(fmt.Sprintf("nonblocking-stdin=%v", nb), func(t *testing.T) {
			fdtest.Check(t)
			cmd := acttest.Command(t, "exec")
			if nb {
				cmd.Stdin = nonblockingSocket(t)
			}
			out := acttest.RunChild(t, cmd)
			first, rest, _ := bytes.Cut(out, []byte("\n"))
			var tcpAddr, udpAddr string
			var stray int
			if _, err := fmt.Sscanf(string(first), "addrs %s %s stray %d", &tcpAddr, &udpAddr, &stray); err != nil {
				t.Fatalf("first line %q: %v", first, err)
			}
			r := acttest.Decode[report](t, rest)
			if r.PID != cmd.Process.Pid {
				t.Errorf("program ran as PID %d, the exec'ing child was %d", r.PID, cmd.Process.Pid)
			}
			checkReport(t, r, []string{"web", "dns"})
			if len(r.Files) == 2 {
				if r.Files[0].Addr != tcpAddr || r.Files[1].Addr != udpAddr {
					t.Errorf("got sockets at %s, %s; want %s, %s", r.Files[0].Addr, r.Files[1].Addr, tcpAddr, udpAddr)
				}
				if r.Files[0].Desc != "a listening IPv4 stream socket" || r.Files[1].Desc != "an IPv4 datagram socket" {
					t.Errorf("kinds: %q, %q", r.Files[0].Desc, r.Files[1].Desc)
				}
			}
		})
	}
}

// TestExecErrors checks that Exec returns errors found before the exec
// and leaves everything as it was.
func TestExecErrors(t *testing.T) {
	fdtest.Check(t)
	tcp := acttest.ListenTCP(t)
	before := acttest.OpenFDs()
	cases := []struct {
		name  string
		files []NamedFile
		path  string
		want  string
	}{
		{"bad name", []NamedFile{{"a:b", tcp}}, "/bin/true", "files[0].Name"},
		{"empty name", []NamedFile{{"", tcp}}, "/bin/true", "empty descriptor name"},
		{"closed file", []NamedFile{{"ok", tcp}, {"x", closed(tempFile(t))}}, "/bin/true", "files[1].File"},
		{"negative fd", []NamedFile{{"x", -1}}, "/bin/true", "files[0].File"},
		{"not open fd", []NamedFile{{"x", 999999}}, "/bin/true", "bad file descriptor"},
		{"nil", []NamedFile{{"x", nil}}, "/bin/true", "nil"},
		{"not a descriptor", []NamedFile{{"x", "hello"}}, "/bin/true", "not a descriptor"},
		{"missing program", []NamedFile{{"ok", tcp}}, "/nonexistent/program", "no such file"},
		{"not in PATH", nil, "no-such-program-fdsend", "executable file not found"},
	}
	for _, c := range cases {
		err := Exec(c.files, c.path, nil, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Exec error %v, want one containing %q", c.name, err, c.want)
		}
	}
	// A failure of the exec itself (an argument longer than the kernel
	// takes) after the slots have been prepared: all of it undone.
	huge := []string{"X=" + strings.Repeat("x", 256<<10)}
	if err := Exec([]NamedFile{{"a", tcp}, {"b", tcp}, {"c", tcp}, {"d", tcp}}, "/bin/true", nil, huge); !errors.Is(err, syscall.E2BIG) {
		t.Errorf("Exec with a huge environment: %v, want E2BIG", err)
	}
	after := acttest.OpenFDs()
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("descriptors changed:\nbefore %+v\nafter  %+v", before, after)
	}
}

// closed closes c and returns it, to be handed over where an open one is
// expected.
func closed[C io.Closer](c C) C {
	c.Close()
	return c
}

// tempFile returns a new empty regular file, closed when the test ends.
func tempFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "state")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestCommandErrors checks argument errors: clear, and nothing left open.
func TestCommandErrors(t *testing.T) {
	fdtest.Check(t)
	tcp := acttest.ListenTCP(t)
	cases := []struct {
		name  string
		files []NamedFile
		prog  string
		want  string
		is    error
	}{
		{"colon", []NamedFile{{"ok", tcp}, {"a:b", tcp}}, "true", "files[1].Name", syscall.EINVAL},
		{"control", []NamedFile{{"a\nb", tcp}}, "true", "control character", syscall.EINVAL},
		{"long", []NamedFile{{strings.Repeat("x", 256), tcp}}, "true", "256 bytes", syscall.EINVAL},
		{"closed listener", []NamedFile{{"ok", tcp}, {"l", closed(acttest.ListenTCP(t))}}, "true", "files[1].File", nil},
		{"bad fd", []NamedFile{{"ok", tcp}, {"x", 1 << 30}}, "true", "files[1].File", syscall.EBADF},
		{"typed nil", []NamedFile{{"x", (*os.File)(nil)}}, "true", "nil", nil},
		{"no program", []NamedFile{{"ok", tcp}}, "no-such-program-fdsend", "executable file not found", exec.ErrNotFound},
	}
	for _, c := range cases {
		cmd, err := Command(c.files, c.prog)
		if err == nil {
			acttest.CloseExtra(cmd)
			t.Errorf("%s: no error", c.name)
			continue
		}
		if cmd != nil {
			t.Errorf("%s: non-nil Cmd with error", c.name)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not mention %q", c.name, err, c.want)
		}
		if c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("%s: error %v is not %v", c.name, err, c.is)
		}
	}
	// Unstarted Cmd: closing ExtraFiles releases everything.
	cmd, err := Command([]NamedFile{{"a", tcp}}, "true")
	if err != nil {
		t.Fatal(err)
	}
	acttest.CloseExtra(cmd)
}

// TestCommandExitStatus127 checks that a final exec that fails in the
// trampoline is reported on standard error with status 127.
func TestCommandExitStatus127(t *testing.T) {
	fdtest.Check(t)
	dir := t.TempDir()
	prog := filepath.Join(dir, "notexec")
	if err := os.WriteFile(prog, []byte("\x7fELF garbage"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd, err := Command(nil, prog)
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	err = fdtest.Wait(cmd, acttest.ChildTimeout)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != trampolineExit {
		t.Fatalf("Wait: %v, want exit status %d", err, trampolineExit)
	}
	if !strings.Contains(stderr.String(), "exec "+prog) {
		t.Errorf("stderr %q does not name the program", stderr.String())
	}
}

// TestCommandAsNobody runs the child as another user: the trampoline must
// still find its executable.
func TestCommandAsNobody(t *testing.T) {
	fdtest.Check(t)
	fdtest.NeedRoot(t, "it runs a child as nobody")
	tcp := acttest.ListenTCP(t)
	cmd := roleCommand(t, []NamedFile{{"web", tcp}}, fdtest.WorldBinary(t), "report")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: fdtest.Nobody, Gid: fdtest.Nobody}}
	r := runReport(t, cmd)
	checkReport(t, r, []string{"web"})
}

// TestCommandNoFiles: with no files the child gets no LISTEN_* at all, even
// when the environment given has some.
func TestCommandNoFiles(t *testing.T) {
	fdtest.Check(t)
	cmd := roleCommand(t, nil, acttest.Exe(t), "report", "LISTEN_PID=1", "LISTEN_FDS=2", "LISTEN_FDNAMES=a:b", "LISTEN_PIDFDID=5")
	r := runReport(t, cmd)
	if len(r.Env) != 0 || len(r.Inherited) != 0 || len(r.Files) != 0 || r.FilesErr != "" {
		t.Errorf("child with no files saw %+v", r)
	}
}

// TestCommandSocketActivate runs the real systemd-socket-activate as the
// program of Command: libsystemd's sd_listen_fds must accept our variables
// (LISTEN_PID included), keep our two sockets and pass them on, before its
// own, to its child.
func TestCommandSocketActivate(t *testing.T) {
	fdtest.Check(t)
	sa := acttest.SocketActivate(t)
	l1 := acttest.ListenTCP(t)
	dir := t.TempDir()
	l2, err := net.Listen("unix", filepath.Join(dir, "ours.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	own := filepath.Join(dir, "theirs.sock")
	cmd, err := Command([]NamedFile{{"one", l1}, {"two", l2}}, sa,
		"-l", own, "-E", acttest.ChildEnv+"=report", "-E", "ACTIVATION_TEST_SERVE=2", "--", acttest.Exe(t), "-test.run=^$")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = acttest.Env("")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	acttest.Start(t, cmd)
	// systemd-socket-activate 252 execs its child on the first connection.
	c := acttest.DialRetry(t, "unix", own)
	c.SetDeadline(time.Now().Add(acttest.ChildTimeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if err != nil {
		t.Fatalf("reading greeting: %v\nstderr: %s", err, stderr.String())
	}
	if err := fdtest.Wait(cmd, acttest.ChildTimeout); err != nil {
		t.Fatalf("wait: %v\nstderr: %s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "Received 2 descriptors via the environment") {
		t.Errorf("systemd-socket-activate did not accept our descriptors; its log:\n%s", stderr.String())
	}
	r := acttest.Decode[report](t, stdout.Bytes())
	if want := fmt.Sprintf("hello %d\n", r.PID); line != want {
		t.Errorf("greeting %q, want %q", line, want)
	}
	if r.PID != cmd.Process.Pid {
		t.Errorf("final program PID %d, Command's child %d", r.PID, cmd.Process.Pid)
	}
	if r.Env[envPID] != strconv.Itoa(r.PID) || r.Env[envFDs] != "3" {
		t.Errorf("grandchild's variables: %v (PID %d)", r.Env, r.PID)
	}
	if len(r.Files) != 3 {
		t.Fatalf("grandchild got %d descriptors, want 3: %+v\nstderr: %s", len(r.Files), r.Files, stderr.String())
	}
	if r.Files[0].Addr != l1.Addr().String() || r.Files[1].Addr != l2.Addr().String() || r.Files[2].Addr != own {
		t.Errorf("grandchild's sockets: %+v; want %s, %s, %s", r.Files, l1.Addr(), l2.Addr(), own)
	}
	for _, s := range r.Inherited {
		if s.Nonblock {
			t.Errorf("grandchild's descriptor %d is non-blocking", s.FD)
		}
	}
}

// TestCommandPython serves through Command with a Python 3 child that takes
// descriptor 3 with socket.socket(fileno=3) and accepts on it. It asks for
// the connection only after Python is blocked in accept: had the descriptor
// stayed non-blocking (Go's listener sets O_NONBLOCK on the shared open
// file description), accept would fail at once with BlockingIOError.
func TestCommandPython(t *testing.T) {
	fdtest.Check(t)
	l := acttest.ListenTCP(t)
	const script = `
import os, socket, sys
assert os.environ["LISTEN_PID"] == str(os.getpid()), (os.environ["LISTEN_PID"], os.getpid())
s = socket.socket(fileno=3)
print("ready", os.get_blocking(3), os.environ["LISTEN_FDS"], os.environ["LISTEN_FDNAMES"], flush=True)
c, _ = s.accept()
c.sendall(("hello from python %d\n" % os.getpid()).encode())
c.close()
`
	cmd, err := Command([]NamedFile{{"http", l}}, "python3", "-c", script)
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	acttest.Start(t, cmd)
	br := bufio.NewReader(stdout)
	ready, err := fdtest.ReadLine(br, acttest.ChildTimeout)
	if err != nil {
		t.Fatalf("python: %v; stderr: %s", err, stderr.String())
	}
	if ready != "ready True 1 http\n" {
		t.Fatalf("python says %q", ready)
	}
	time.Sleep(200 * time.Millisecond) // let it block in accept
	c, err := net.DialTimeout("tcp", l.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(acttest.ChildTimeout))
	greet, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("hello from python %d\n", cmd.Process.Pid); string(greet) != want {
		t.Errorf("python said %q, want %q; stderr: %s", greet, want, stderr.String())
	}
	io.Copy(io.Discard, stdout)
	if err := fdtest.Wait(cmd, acttest.ChildTimeout); err != nil {
		t.Errorf("python: %v; stderr: %s", err, stderr.String())
	}
}

// TestPlaceFiles checks the trampoline's slot decisions on real descriptors
// at high numbers: a slot holding a close-on-exec descriptor (one this image
// opened) is not overwritten but handed on, free slots and slots holding
// inherited descriptors receive the files.
func TestPlaceFiles(t *testing.T) {
	fdtest.Check(t)
	const start, srcBase = 500, 600
	ino := func(fd int) uint64 {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			t.Fatalf("fstat %d: %v", fd, err)
		}
		return st.Ino
	}
	open := func(fd int, cloexec bool) {
		tmp, err := unix.Open(t.TempDir(), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		flags := 0
		if cloexec {
			flags = unix.O_CLOEXEC
		}
		if err := unix.Dup3(tmp, fd, flags); err != nil {
			t.Fatal(err)
		}
		unix.Close(tmp)
		t.Cleanup(func() { unix.Close(fd) })
	}
	open(start, true)    // this image's own
	open(start+2, false) // came through exec
	for i := range 3 {
		open(srcBase+i, false)
	}
	own := ino(start)
	again, err := placeFiles(start, []int{srcBase, srcBase + 1, srcBase + 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(start + 1) })
	if !again {
		t.Error("a close-on-exec descriptor in a slot did not ask for another exec")
	}
	if ino(start) != own {
		t.Error("the image's own descriptor was overwritten")
	}
	if fl, _ := unix.FcntlInt(start, unix.F_GETFD, 0); fl&unix.FD_CLOEXEC != 0 {
		t.Error("the own descriptor is still close-on-exec: the next image could reuse the slot")
	}
	for i := 1; i < 3; i++ {
		if ino(start+i) != ino(srcBase+i) {
			t.Errorf("slot %d does not hold file %d", start+i, i)
		}
	}
	// Second round, as in the next image: everything inherited, no again.
	again, err = placeFiles(start, []int{srcBase, srcBase + 1, srcBase + 2})
	if err != nil || again {
		t.Fatalf("second round: again=%v, %v", again, err)
	}
	for i := range 3 {
		if ino(start+i) != ino(srcBase+i) {
			t.Errorf("round 2: slot %d does not hold file %d", start+i, i)
		}
	}
}
