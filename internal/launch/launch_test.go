//go:build linux

package launch

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend/internal/addr"
	"github.com/fdsend/fdsend/internal/fdtest"
)

func TestParseRestart(t *testing.T) {
	for _, s := range []string{"no", "on-failure", "always"} {
		r, err := ParseRestart(s)
		if err != nil || r.String() != s {
			t.Errorf("ParseRestart(%q) = %v, %v", s, r, err)
		}
	}
	for _, s := range []string{"", "yes", "on-abnormal", "Always"} {
		if _, err := ParseRestart(s); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("ParseRestart(%q): %v, want EINVAL", s, err)
		}
	}
}

func TestBackoff(t *testing.T) {
	var b Backoff
	ms := time.Millisecond
	want := []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 5000 * ms, 5000 * ms}
	for i, w := range want {
		if d := b.Delay(10*ms, true); d != w {
			t.Fatalf("quick failure %d: delay %v, want %v", i+1, d, w)
		}
	}
	if d := b.Delay(10*ms, false); d != 90*ms {
		t.Fatalf("clean exit: delay %v, want 90ms (paced, not backed off)", d)
	}
	if d := b.Delay(10*ms, true); d != 100*ms {
		t.Fatalf("after a clean exit the delay is back to %v, want 100ms", d)
	}
	b.Delay(10*ms, true)
	if d := b.Delay(2*time.Second, true); d != 0 {
		t.Fatalf("failure after a long run: delay %v, want 0", d)
	}
	if d := b.Delay(10*ms, true); d != 100*ms {
		t.Fatalf("after a long run the delay is back to %v, want 100ms", d)
	}
}

// TestBackoffCleanExitsPaced: quick clean exits in a row, however many, are
// only paced (the next start no sooner than 100 ms after the last one),
// never backed off; failures still back off, and a clean exit resets that.
func TestBackoffCleanExitsPaced(t *testing.T) {
	ms := time.Millisecond
	var b Backoff
	for i := range 300 {
		if d := b.Delay(10*ms, false); d > 90*ms {
			t.Fatalf("quick clean exit %d after 10ms: delay %v, want at most 90ms (100ms from start to start)", i+1, d)
		}
	}
	for _, lived := range []time.Duration{0, 50 * ms, 99 * ms, 100 * ms, 2 * time.Second} {
		want := max(100*ms-lived, 0)
		if d := b.Delay(lived, false); d != want {
			t.Fatalf("clean exit after %v: delay %v, want %v", lived, d, want)
		}
	}
	for i, w := range []time.Duration{100 * ms, 200 * ms, 400 * ms} {
		if d := b.Delay(10*ms, true); d != w {
			t.Fatalf("quick failure %d: delay %v, want %v", i+1, d, w)
		}
	}
	if d := b.Delay(10*ms, false); d != 90*ms {
		t.Fatalf("clean exit after failures: delay %v, want 90ms", d)
	}
	if d := b.Delay(10*ms, true); d != 100*ms {
		t.Fatalf("quick failure after a clean exit: delay %v, want 100ms (reset)", d)
	}
	c := Backoff{Pace: 250 * ms}
	if d := c.Delay(0, false); d != 250*ms {
		t.Fatalf("Pace 250ms, clean exit at once: delay %v, want 250ms", d)
	}
}

func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		script string
		want   int
	}{
		{"exit 0", 0},
		{"exit 3", 3},
		{"kill -KILL $$", 128 + 9},
		{"kill -TERM $$", 128 + 15},
	} {
		cmd := exec.Command("/bin/sh", "-c", tc.script)
		cmd.Run()
		if got := ExitStatus(cmd.ProcessState); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.script, got, tc.want)
		}
	}
	if ExitStatus(nil) != 1 {
		t.Error("nil state")
	}
}

// shCmd returns a NewCmd that runs scripts[i] for the i-th start (the last
// one again once they run out) and counts the starts.
func shCmd(starts *atomic.Int32, stdout io.Writer, scripts ...string) func() (*exec.Cmd, func(), error) {
	return func() (*exec.Cmd, func(), error) {
		i := int(starts.Add(1)) - 1
		cmd := exec.Command("/bin/sh", "-c", scripts[min(i, len(scripts)-1)])
		cmd.Stdout = stdout
		cmd.Stderr = os.Stderr
		return cmd, nil, nil
	}
}

type runResult struct {
	status int
	err    error
}

func runAsync(s interface {
	Run(<-chan os.Signal) (int, error)
}, sig <-chan os.Signal) <-chan runResult {
	ch := make(chan runResult, 1)
	go func() {
		st, err := s.Run(sig)
		ch <- runResult{st, err}
	}()
	return ch
}

func await(t *testing.T, ch <-chan runResult) runResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
	return runResult{}
}

func TestSupervisorNoRestart(t *testing.T) {
	fdtest.Check(t)
	var starts atomic.Int32
	s := &Supervisor{Restart: RestartNo, NewCmd: shCmd(&starts, nil, "exit 7"), Logf: t.Logf}
	r := await(t, runAsync(s, nil))
	if r.err != nil || r.status != 7 || starts.Load() != 1 {
		t.Fatalf("status %d err %v starts %d; want 7, nil, 1", r.status, r.err, starts.Load())
	}
	s = &Supervisor{Restart: RestartOnFailure, NewCmd: shCmd(&starts, nil, "exit 0"), Logf: t.Logf}
	starts.Store(0)
	if r := await(t, runAsync(s, nil)); r.status != 0 || starts.Load() != 1 {
		t.Fatalf("on-failure, clean exit: status %d, %d starts", r.status, starts.Load())
	}
}

// lineReader returns a pipe whose lines arrive on a channel.
func lineReader(t *testing.T) (*os.File, <-chan string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	lines := make(chan string, 100)
	go func() {
		defer r.Close()
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return w, lines
}

func expectLine(t *testing.T, lines <-chan string, want string) {
	t.Helper()
	select {
	case l := <-lines:
		if l != want {
			t.Fatalf("child said %q, want %q", l, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no %q from the child", want)
	}
}

func TestSupervisorAlwaysRestartsCleanExitAtOnce(t *testing.T) {
	fdtest.Check(t)
	w, lines := lineReader(t)
	var starts atomic.Int32
	sig := make(chan os.Signal, 1)
	s := &Supervisor{Restart: RestartAlways, Logf: t.Logf, NewCmd: shCmd(&starts, w,
		"echo 1", "echo 2", "echo 3", "echo 4", "echo 5",
		`trap 'echo term; exit 9' TERM; echo up; while :; do sleep 0.02; done`)}
	begin := time.Now()
	done := runAsync(s, sig)
	for i := 1; i <= 5; i++ {
		expectLine(t, lines, fmt.Sprint(i))
	}
	expectLine(t, lines, "up")
	if el := time.Since(begin); el > 2*time.Second {
		t.Errorf("5 clean restarts took %v: clean exits must restart at once", el)
	}
	sig <- syscall.SIGTERM
	expectLine(t, lines, "term")
	r := await(t, done)
	if r.err != nil || r.status != 9 {
		t.Fatalf("after SIGTERM: status %d err %v, want the child's 9", r.status, r.err)
	}
	if starts.Load() != 6 {
		t.Fatalf("%d starts after SIGTERM, want 6 (no restart after a stop signal)", starts.Load())
	}
}

func TestSupervisorBackoff(t *testing.T) {
	fdtest.Check(t)
	w, lines := lineReader(t)
	var starts atomic.Int32
	s := &Supervisor{Restart: RestartOnFailure, Logf: t.Logf, NewCmd: shCmd(&starts, w,
		"echo a; exit 1", "echo b; exit 1", "echo c; exit 1", "echo d; exit 0")}
	done := runAsync(s, nil)
	var at []time.Time
	for _, l := range []string{"a", "b", "c", "d"} {
		expectLine(t, lines, l)
		at = append(at, time.Now())
	}
	r := await(t, done)
	if r.status != 0 || starts.Load() != 4 {
		t.Fatalf("status %d, %d starts; want 0, 4", r.status, starts.Load())
	}
	for i, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
		gap := at[i+1].Sub(at[i])
		if gap < want || gap > want+700*time.Millisecond {
			t.Errorf("gap before start %d: %v, want about %v", i+2, gap, want)
		}
	}
}

func TestSupervisorStopDuringPause(t *testing.T) {
	fdtest.Check(t)
	w, lines := lineReader(t)
	var starts atomic.Int32
	sig := make(chan os.Signal, 4)
	s := &Supervisor{Restart: RestartAlways, Backoff: Backoff{Min: 5 * time.Second}, Logf: t.Logf,
		NewCmd: shCmd(&starts, w, "echo x; exit 1")}
	done := runAsync(s, sig)
	expectLine(t, lines, "x")
	time.Sleep(100 * time.Millisecond) // now in the 5 s pause
	sig <- syscall.SIGHUP              // dropped: no child
	sig <- syscall.SIGINT
	r := await(t, done)
	if r.status != 128+int(syscall.SIGINT) || starts.Load() != 1 {
		t.Fatalf("status %d, %d starts; want %d, 1", r.status, starts.Load(), 128+int(syscall.SIGINT))
	}
}

func TestSupervisorForwardsSignals(t *testing.T) {
	fdtest.Check(t)
	w, lines := lineReader(t)
	var starts atomic.Int32
	sig := make(chan os.Signal, 4)
	s := &Supervisor{Restart: RestartAlways, Logf: t.Logf, NewCmd: shCmd(&starts, w,
		`for s in HUP USR1 USR2; do trap "echo $s" $s; done; trap 'exit 0' INT; echo up; while :; do sleep 0.02; done`)}
	done := runAsync(s, sig)
	expectLine(t, lines, "up")
	for _, s := range []struct {
		sig  syscall.Signal
		name string
	}{{syscall.SIGHUP, "HUP"}, {syscall.SIGUSR1, "USR1"}, {syscall.SIGUSR2, "USR2"}} {
		sig <- s.sig
		expectLine(t, lines, s.name)
	}
	sig <- syscall.SIGINT
	r := await(t, done)
	if r.status != 0 || starts.Load() != 1 {
		t.Fatalf("status %d, %d starts; want 0 (the child's), 1", r.status, starts.Load())
	}
}

func TestSupervisorStartFailure(t *testing.T) {
	fdtest.Check(t)
	s := &Supervisor{Restart: RestartAlways, Logf: t.Logf, NewCmd: func() (*exec.Cmd, func(), error) {
		return exec.Command("/nonexistent/program"), nil, nil
	}}
	if _, err := s.Run(nil); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("first start of a missing program: %v, want ErrNotExist", err)
	}
	// A later failure is retried after the backoff, and release is called
	// for every attempt.
	var starts atomic.Int32
	var released atomic.Int32
	s = &Supervisor{Restart: RestartOnFailure, Logf: t.Logf, NewCmd: func() (*exec.Cmd, func(), error) {
		n := starts.Add(1)
		release := func() { released.Add(1) }
		switch n {
		case 1:
			return exec.Command("/bin/sh", "-c", "exit 1"), release, nil
		case 2:
			return exec.Command("/nonexistent/program"), release, nil
		case 3:
			return nil, release, errors.New("cannot build it now")
		}
		return exec.Command("/bin/sh", "-c", "exit 0"), release, nil
	}}
	begin := time.Now()
	r := await(t, runAsync(s, nil))
	if r.err != nil || r.status != 0 || starts.Load() != 4 || released.Load() != 4 {
		t.Fatalf("status %d err %v, %d starts, %d releases; want 0, nil, 4, 4", r.status, r.err, starts.Load(), released.Load())
	}
	if el := time.Since(begin); el < 700*time.Millisecond {
		t.Errorf("three quick failures took %v, want at least 100+200+400 ms", el)
	}
}

// TestAcceptor serves each connection with its own child, inetd style, and
// stops on SIGTERM with the status of the last child.
func TestAcceptor(t *testing.T) {
	fdtest.Check(t)
	a, _ := addr.Parse("127.0.0.1:0")
	l, err := addr.Listen(a, syscall.SOCK_STREAM)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sig := make(chan os.Signal, 1)
	acc := &Acceptor{
		Listeners: []Listener{{File: l.File, Name: "web"}},
		Logf:      t.Logf,
		NewCmd: func(conn *os.File, name string) (*exec.Cmd, func(), error) {
			cmd := exec.Command("/bin/sh", "-c", `echo "hello $1 $$"; read line; echo "bye $line"; trap 'exit 5' TERM; while :; do sleep 0.02; done`, "sh", name)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = conn, conn, os.Stderr
			return cmd, nil, nil
		},
	}
	done := runAsync(acc, sig)
	var pids []string
	var conns []net.Conn
	for i := 0; i < 3; i++ {
		c, err := net.DialTimeout("tcp", l.Bound, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "hello web ") {
			t.Fatalf("connection %d: %q %v", i, line, err)
		}
		pids = append(pids, strings.TrimSpace(strings.TrimPrefix(line, "hello web ")))
		fmt.Fprintf(c, "c%d\n", i)
		if line, err = br.ReadString('\n'); line != fmt.Sprintf("bye c%d\n", i) {
			t.Fatalf("connection %d: %q %v", i, line, err)
		}
	}
	if pids[0] == pids[1] || pids[1] == pids[2] {
		t.Fatalf("one child served two connections: pids %v", pids)
	}
	sig <- syscall.SIGTERM
	r := await(t, done)
	if r.err != nil || r.status != 5 {
		t.Fatalf("status %d err %v, want 5 (every child got SIGTERM)", r.status, r.err)
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("connection %d after stop: %d bytes, %v; want EOF", i, n, err)
		}
		c.Close()
	}
	// Not accepting any more.
	if c, err := net.DialTimeout("tcp", l.Bound, time.Second); err == nil {
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Error("a child answered after the Acceptor stopped")
		}
		c.Close()
	}
}

func TestAcceptorStopWithoutChildren(t *testing.T) {
	fdtest.Check(t)
	a, _ := addr.Parse("127.0.0.1:0")
	l, err := addr.Listen(a, syscall.SOCK_STREAM)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sig := make(chan os.Signal, 1)
	acc := &Acceptor{Listeners: []Listener{{File: l.File}}, NewCmd: func(*os.File, string) (*exec.Cmd, func(), error) {
		return nil, nil, errors.New("not reached")
	}}
	done := runAsync(acc, sig)
	sig <- syscall.SIGINT
	if r := await(t, done); r.status != 128+int(syscall.SIGINT) {
		t.Fatalf("status %d, want %d", r.status, 128+int(syscall.SIGINT))
	}
	u, _ := addr.Parse("0")
	ul, err := addr.Listen(u, syscall.SOCK_DGRAM)
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	acc.Listeners = []Listener{{File: ul.File, Name: "udp"}}
	if _, err := acc.Run(sig); err == nil {
		t.Fatal("Acceptor on a datagram socket: no error")
	}
}

// TestSupervisorStopGrace: a child that ran for more than a second and died
// of SIGINT is not restarted at once, so the launcher's own SIGINT (Ctrl-C
// reaches the whole process group) arriving just after still stops it.
func TestSupervisorStopGrace(t *testing.T) {
	fdtest.Check(t)
	var starts atomic.Int32
	sig := make(chan os.Signal, 1)
	s := &Supervisor{Restart: RestartAlways, NewCmd: shCmd(&starts, nil, "sleep 1.1; kill -INT $$")}
	s.Logf = func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		t.Log(line)
		if strings.Contains(line, "exited with status 130") {
			go func() {
				time.Sleep(20 * time.Millisecond)
				sig <- syscall.SIGINT
			}()
		}
	}
	r := await(t, runAsync(s, sig))
	if r.status != 130 || starts.Load() != 1 {
		t.Fatalf("status %d, %d starts; want 130, 1", r.status, starts.Load())
	}
}
