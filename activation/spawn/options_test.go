//go:build linux

package spawn

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/activation/internal/acttest"
	"github.com/fdsend/fdsend/internal/fdtest"
)

// TestOptionsNonblocking: with Nonblocking every descriptor reaches the
// program in non-blocking mode, whatever mode the caller's copy was in (a
// Go listener is non-blocking, a socket pair made blocking is not).
func TestOptionsNonblocking(t *testing.T) {
	fdtest.Check(t)
	tcp := acttest.ListenTCP(t)
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0) // blocking
	if err != nil {
		t.Fatal(err)
	}
	syscall.Close(fds[1])
	a := os.NewFile(uintptr(fds[0]), "pair")
	defer a.Close()
	cmd, err := Options{Nonblocking: true}.Command([]NamedFile{{"web", tcp}, {"pair", a}}, acttest.Exe(t), "-test.run=^$")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = acttest.Env("report")
	r := runReport(t, cmd)
	if len(r.Inherited) != 2 {
		t.Fatalf("inherited %+v, want 2 descriptors", r.Inherited)
	}
	for _, s := range r.Inherited {
		if !s.Nonblock {
			t.Errorf("descriptor %d (%s) is blocking, want O_NONBLOCK", s.FD, s.Target)
		}
	}
	if got := r.Env[envFDNames]; got != "web:pair" {
		t.Errorf("LISTEN_FDNAMES %q", got)
	}

	// Without the option the same sockets arrive blocking again.
	r = runReport(t, roleCommand(t, []NamedFile{{"web", tcp}, {"pair", a}}, acttest.Exe(t), "report"))
	checkReport(t, r, []string{"web", "pair"})
}

// TestOptionsUser runs the program as nobody with two supplementary groups:
// the program sees exactly those IDs and groups, can use the listener the
// caller (root) made, and cannot become root again. The trampoline is this
// test binary in its private build directory, which nobody may not enter:
// only the program itself has to be executable by the user.
func TestOptionsUser(t *testing.T) {
	fdtest.Check(t)
	fdtest.NeedRoot(t, "it runs a child as nobody")
	tcp := acttest.ListenTCP(t)
	u := &Credential{UID: fdtest.Nobody, GID: fdtest.Nobody, Groups: []uint32{fdtest.Nobody, 100}}
	cmd, err := Options{User: u}.Command([]NamedFile{{"web", tcp}}, fdtest.WorldBinary(t), "-test.run=^$")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = acttest.Env("report", "ACTIVATION_TEST_SERVE=0")
	done := make(chan []byte, 1)
	go func() {
		c, err := net.DialTimeout("tcp", tcp.Addr().String(), 20*time.Second)
		if err != nil {
			done <- []byte(err.Error())
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		b := make([]byte, 64)
		n, _ := c.Read(b)
		done <- b[:n]
	}()
	out := acttest.RunChild(t, cmd)
	r := acttest.Decode[report](t, out)
	checkReport(t, r, []string{"web"})
	if r.UID != fdtest.Nobody || r.EUID != fdtest.Nobody || r.GID != fdtest.Nobody || r.EGID != fdtest.Nobody {
		t.Errorf("child runs as uid %d/%d gid %d/%d, want %d", r.UID, r.EUID, r.GID, r.EGID, fdtest.Nobody)
	}
	slices.Sort(r.Groups)
	if want := []int{100, fdtest.Nobody}; !reflect.DeepEqual(r.Groups, want) {
		t.Errorf("child's groups %v, want %v", r.Groups, want)
	}
	if got := string(<-done); got != fmt.Sprintf("hello %d\n", r.PID) {
		t.Errorf("the child as nobody answered %q on the root-made listener", got)
	}
}

// TestOptionsUserRefusedWithoutPrivilege: a caller that may not change its
// user (here the trampoline itself runs as nobody) gets status 127 and the
// reason; the program never runs.
func TestOptionsUserRefusedWithoutPrivilege(t *testing.T) {
	fdtest.Check(t)
	fdtest.NeedRoot(t, "it runs the trampoline as nobody")
	world := fdtest.WorldBinary(t)
	cmd, err := Options{User: &Credential{UID: 1, GID: 1}}.Command(nil, "/bin/sh", "-c", "echo ran")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Path = world // the same trampoline, where nobody can execute it
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: fdtest.Nobody, Gid: fdtest.Nobody}}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	err = fdtest.Wait(cmd, acttest.ChildTimeout)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != trampolineExit {
		t.Fatalf("exit %v, want status %d", err, trampolineExit)
	}
	if stdout.Len() != 0 {
		t.Errorf("the program ran: %q", stdout.String())
	}
	if !strings.Contains(stderr.String(), "setgroups: operation not permitted") {
		t.Errorf("stderr %q does not give the reason", stderr.String())
	}
}

func TestOptionsErrors(t *testing.T) {
	fdtest.Check(t)
	for _, tc := range []struct {
		u   *Credential
		arg string
	}{
		{&Credential{UID: noID, GID: 1}, "Options.User.UID"},
		{&Credential{UID: 1, GID: noID}, "Options.User.GID"},
		{&Credential{UID: 1, GID: 1, Groups: []uint32{2, noID}}, "Options.User.Groups[1]"},
	} {
		_, err := Options{User: tc.u}.Command(nil, "/bin/true")
		var ae *fdsend.ArgError
		if !errors.As(err, &ae) || ae.Arg != tc.arg || !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%+v: %v, want an ArgError naming %s wrapping EINVAL", tc.u, err, tc.arg)
		}
		if err := (Options{User: tc.u}).Exec(nil, "/bin/true", nil, nil); !errors.As(err, &ae) || ae.Arg != tc.arg {
			t.Errorf("Exec %+v: %v, want an ArgError naming %s", tc.u, err, tc.arg)
		}
	}
}

func TestDecodeOptions(t *testing.T) {
	for _, o := range []Options{
		{},
		{Nonblocking: true},
		{User: &Credential{UID: 0, GID: 0, Groups: []uint32{}}},
		{Nonblocking: true, User: &Credential{UID: 65534, GID: 65533, Groups: []uint32{1, 2, 4294967294}}},
	} {
		got, err := decodeOptions(o.encode())
		if o.User != nil && len(o.User.Groups) == 0 {
			o.User.Groups = nil
		}
		if err != nil || !reflect.DeepEqual(got, o) {
			t.Errorf("%+v encoded as %q decodes to %+v, %v", o, o.encode(), got, err)
		}
	}
	for _, s := range []string{"x", "nonblock,", "uid=1", "uid=1,gid=2", "uid=1,gid=2,groups=a", "uid=-1,gid=2,groups=", "uid=4294967295,gid=2,groups=", "uid=1,gid=2,groups=3::4"} {
		if o, err := decodeOptions(s); err == nil {
			t.Errorf("%q decodes to %+v", s, o)
		}
	}
}
