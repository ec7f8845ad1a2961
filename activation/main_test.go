//go:build linux

package activation

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend/internal/fdtest"
	"golang.org/x/sys/unix"
)

// childEnv selects what the re-executed test binary does.
const childEnv = "ACTIVATION_TEST_CHILD"

// childTimeout bounds every child process of the tests.
const childTimeout = 20 * time.Second

func TestMain(m *testing.M) {
	fdtest.RunChild(childEnv, map[string]func() error{
		"report":    noError(childReport),
		"server":    noError(childServer),
		"udpserver": noError(childUDPServer),
		"parse":     noError(childParse),
		"exec":      noError(childExec),
		"api":       noError(childAPI),
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
	if id, ok := ownPidfdID(); ok {
		r.PidfdID = strconv.FormatUint(id, 10)
	}
	fs, err := Files()
	if err != nil {
		r.FilesErr = err.Error()
	}
	for _, f := range fs {
		info, err := classify(f.File)
		if err != nil {
			info.desc = "error: " + err.Error()
		}
		fr := fileReport{Name: f.Name, Desc: info.desc}
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

// childServer serves HTTP on the listener named by ACTIVATION_TEST_NAME
// (through ListenOrInherit when ACTIVATION_TEST_OR_INHERIT is set) and
// echoes on the Unix listener "ctl" if there is one, until killed.
func childServer() {
	name := os.Getenv("ACTIVATION_TEST_NAME")
	var l net.Listener
	var err error
	if os.Getenv("ACTIVATION_TEST_OR_INHERIT") != "" {
		l, err = ListenOrInherit(name, "tcp", "127.0.0.1:0")
	} else {
		l, err = Listener(name)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(4)
	}
	if ctl, err := Listener("ctl"); err == nil {
		go func() {
			for {
				c, err := ctl.Accept()
				if err != nil {
					return
				}
				line, _ := bufio.NewReader(c).ReadString('\n')
				fmt.Fprintf(c, "ctl %d %s", os.Getpid(), line)
				c.Close()
			}
		}()
	}
	fs, _ := Files()
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.Name
	}
	http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "pid=%d names=%s path=%s", os.Getpid(), strings.Join(names, ","), r.URL.Path)
	}))
}

// childUDPServer answers every datagram on the socket named "dns".
func childUDPServer() {
	pc, err := PacketConn("dns")
	if err != nil {
		fmt.Fprintln(os.Stderr, "udpserver:", err)
		os.Exit(4)
	}
	buf := make([]byte, 512)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		pc.WriteTo(append([]byte(fmt.Sprintf("pid=%d got=", os.Getpid())), buf[:n]...), from)
	}
}

// parseCase is one case of TestMalformedEnv, as the "parse" child gets it.
type parseCase struct {
	PID     string            // "self", "other", "unset" or a literal
	PIDFDID string            // "self", "other", "" (unset) or a literal
	Env     map[string]string // LISTEN_FDS and LISTEN_FDNAMES, when set
}

// parseResult is what the "parse" child reports for a case.
type parseResult struct {
	Names       []string
	Err         string
	SecondErr   string
	Same        bool
	NewFDs      []string // descriptors open after Files that were not before
	StillOpen   []int    // inherited descriptors still open after Files
	OpenAfter   []int    // inherited descriptors open after closing the Files
	EnvAfter    []string
	PanicString string
}

// childParse runs every case of ACTIVATION_TEST_CASES on the descriptors 3
// and 4 it inherited: for each, it sets the variables (LISTEN_PID and
// LISTEN_PIDFDID here, since only the child knows its PID), parses them
// twice with a fresh set as Files does, and reports. Between cases it closes
// what was adopted and puts 3 and 4 back from copies made at start.
func childParse() {
	var cases []parseCase
	if err := json.Unmarshal([]byte(os.Getenv("ACTIVATION_TEST_CASES")), &cases); err != nil {
		panic(err)
	}
	var saved [2]int
	for i := range saved {
		fd, err := unix.FcntlInt(uintptr(listenStart+i), unix.F_DUPFD_CLOEXEC, 100)
		if err != nil {
			panic(err)
		}
		saved[i] = fd
	}
	results := make([]parseResult, len(cases))
	for i, c := range cases {
		for j, fd := range saved {
			if err := unix.Dup2(fd, listenStart+j); err != nil {
				panic(err)
			}
		}
		results[i] = parseOne(c)
	}
	json.NewEncoder(os.Stdout).Encode(results)
}

func parseOne(c parseCase) (res parseResult) {
	defer func() {
		if p := recover(); p != nil {
			res.PanicString = fmt.Sprint(p)
		}
	}()
	unsetListenVars()
	switch c.PID {
	case "self":
		os.Setenv(envPID, strconv.Itoa(os.Getpid()))
	case "other":
		os.Setenv(envPID, strconv.Itoa(os.Getppid()))
	case "unset":
	default:
		os.Setenv(envPID, c.PID)
	}
	switch c.PIDFDID {
	case "":
	case "self", "other":
		id, ok := ownPidfdID()
		if !ok {
			res.Err = "test: no pidfs"
			return res
		}
		if c.PIDFDID == "other" {
			id++
		}
		os.Setenv(envPIDFDID, strconv.FormatUint(id, 10))
	default:
		os.Setenv(envPIDFDID, c.PIDFDID)
	}
	for k, v := range c.Env {
		os.Setenv(k, v)
	}
	before := map[int]string{}
	for _, s := range openFDs() {
		before[s.FD] = s.Target
	}
	s := &set{load: loadInherited}
	fs, err := s.list(true)
	fs2, err2 := s.list(true)
	if err != nil {
		res.Err = err.Error()
	}
	if err2 != nil {
		res.SecondErr = err2.Error()
	}
	res.Same = len(fs) == len(fs2) && err == err2
	for i := range fs {
		res.Names = append(res.Names, fs[i].Name)
		if fs[i] != fs2[i] {
			res.Same = false
		}
	}
	for _, s := range openFDs() {
		if t, ok := before[s.FD]; !ok || t != s.Target {
			res.NewFDs = append(res.NewFDs, fmt.Sprintf("%d -> %s", s.FD, s.Target))
		}
		if s.FD >= 3 && s.FD < 5 {
			res.StillOpen = append(res.StillOpen, s.FD)
		}
	}
	for k := range listenEnv() {
		res.EnvAfter = append(res.EnvAfter, k)
	}
	for _, f := range fs {
		f.File.Close()
	}
	for fd := listenStart; fd < listenStart+2; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			res.OpenAfter = append(res.OpenAfter, fd)
		}
	}
	return res
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
