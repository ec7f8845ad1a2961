//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend/internal/fdtest"
)

// childEnv selects a child role when the test binary is run as the COMMAND
// of `fdsend activate`.
const childRoleEnv = "FDSEND_TEST_CHILD"

// children maps a role to the function the re-executed test binary runs.
var children = map[string]func() error{}

// fdsendBin is the binary under test, built once by TestMain.
var fdsendBin string

func TestMain(m *testing.M) {
	fdtest.RunChild(childRoleEnv, children)
	dir, err := os.MkdirTemp("", "fdsend-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fdsendBin = filepath.Join(dir, "fdsend")
	// Built without the race detector even under -race: every child start
	// runs the binary again as activation's trampoline, and the race
	// runtime's start-up would dominate the tests. The concurrent parts
	// (internal/launch, internal/fdstore, activation) have race-tested
	// tests of their own.
	build := exec.Command(filepath.Join(runtimeGOROOT(), "bin", "go"), "build", "-o", fdsendBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building fdsend: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runtimeGOROOT finds the Go installation that builds the binary: the go
// command on PATH, else /usr/local/go.
func runtimeGOROOT() string {
	if p, err := exec.LookPath("go"); err == nil {
		return filepath.Dir(filepath.Dir(p))
	}
	return "/usr/local/go"
}

// python3 returns the Python 3 interpreter to run children with: the
// system's if there is one (no shim in between), else the one on PATH.
func python3(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	p, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is required: %v", err)
	}
	return p
}

// tool returns the path of a required systemd tool.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is required: %v", name, err)
	}
	return p
}

// launcher is one running `fdsend activate` (or another command) whose
// output the test reads line by line.
type launcher struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdout chan string
	logMu  sync.Mutex
	log    []string
	logCh  chan string
	done   chan struct{}
	status int
	// outDone and errDone are closed when standard output and standard
	// error reach EOF.
	outDone, errDone chan struct{}
}

var listeningRE = regexp.MustCompile(`listening on (\S+) as fd (\d+)`)

// start runs the command in a process group of its own (so that cleanup can
// kill whatever it started) with env added to the test's environment.
func start(t *testing.T, env []string, name string, args ...string) *launcher {
	t.Helper()
	l := &launcher{t: t, stdout: make(chan string, 4096), logCh: make(chan string, 4096), done: make(chan struct{}), outDone: make(chan struct{}), errDone: make(chan struct{})}
	l.cmd = exec.Command(name, args...)
	l.cmd.Env = append(os.Environ(), env...)
	l.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	l.cmd.Stdout, l.cmd.Stderr = outW, errW
	err = l.cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		t.Fatal(err)
	}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		defer close(l.outDone)
		defer outR.Close()
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			l.stdout <- sc.Text()
		}
	}()
	go func() {
		defer readers.Done()
		defer close(l.errDone)
		defer errR.Close()
		sc := bufio.NewScanner(errR)
		for sc.Scan() {
			line := sc.Text()
			l.logMu.Lock()
			l.log = append(l.log, line)
			l.logMu.Unlock()
			select {
			case l.logCh <- line:
			default:
			}
		}
	}()
	go func() {
		l.cmd.Wait()
		l.status = exitStatus(l.cmd.ProcessState)
		close(l.done)
	}()
	t.Cleanup(func() {
		select {
		case <-l.done:
		default:
			t.Errorf("%s still running at the end of the test; killing its process group", name)
		}
		syscall.Kill(-l.cmd.Process.Pid, syscall.SIGKILL)
		<-l.done
		readers.Wait()
		t.Logf("stderr of %s %q:\n%s", filepath.Base(name), args, l.logText())
	})
	return l
}

// activate starts the binary under test with `activate` and args.
func activate(t *testing.T, env []string, args ...string) *launcher {
	t.Helper()
	return start(t, env, fdsendBin, append([]string{"activate"}, args...)...)
}

func exitStatus(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

func (l *launcher) logText() string {
	l.logMu.Lock()
	defer l.logMu.Unlock()
	return strings.Join(l.log, "\n")
}

// waitLog waits for a log line (stderr) matching re and returns its
// submatches.
func (l *launcher) waitLog(re *regexp.Regexp) []string {
	l.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case line := <-l.logCh:
			if m := re.FindStringSubmatch(line); m != nil {
				return m
			}
		case <-deadline:
			l.t.Fatalf("no log line matching %q; log so far:\n%s", re, l.logText())
		}
	}
}

// addr waits for the launcher to report its next listening socket and
// returns the address.
func (l *launcher) addr() string {
	l.t.Helper()
	return l.waitLog(listeningRE)[1]
}

// line returns the next line of standard output.
func (l *launcher) line() string {
	l.t.Helper()
	select {
	case s := <-l.stdout:
		return s
	case <-time.After(20 * time.Second):
		l.t.Fatalf("no line on stdout; log:\n%s", l.logText())
	}
	return ""
}

// expect reads stdout lines until one equals want; lines before it fail
// the test unless skip says they may come.
func (l *launcher) expect(want string) {
	l.t.Helper()
	if got := l.line(); got != want {
		l.t.Fatalf("stdout: %q, want %q", got, want)
	}
}

// allStdout waits for the end of standard output and returns the lines
// not read yet.
func (l *launcher) allStdout() []string {
	l.t.Helper()
	select {
	case <-l.outDone:
	case <-time.After(20 * time.Second):
		l.t.Fatalf("standard output still open; log:\n%s", l.logText())
	}
	var out []string
	for {
		select {
		case s := <-l.stdout:
			out = append(out, s)
		default:
			return out
		}
	}
}

// wait waits for the process to exit and returns its status, once its
// log has been read to the end (or a few seconds have passed, if something
// it started still holds standard error open).
func (l *launcher) wait() int {
	l.t.Helper()
	select {
	case <-l.done:
		select {
		case <-l.errDone:
		case <-time.After(5 * time.Second):
		}
		return l.status
	case <-time.After(30 * time.Second):
		l.t.Fatalf("%s did not exit; log:\n%s", l.cmd.Path, l.logText())
	}
	return -1
}

// signal sends sig to the launcher process itself (not its group).
func (l *launcher) signal(sig syscall.Signal) {
	l.t.Helper()
	if err := l.cmd.Process.Signal(sig); err != nil {
		l.t.Fatalf("signal %v: %v", sig, err)
	}
}

// readAll reads what a reader has until EOF or the timeout.
func readLine(t *testing.T, r io.Reader) string {
	t.Helper()
	br := bufio.NewReader(r)
	s, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("reading a line: %q, %v", s, err)
	}
	return strings.TrimSuffix(s, "\n")
}
