//go:build linux

package spawn

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"

	"github.com/fdsend/fdsend/activation"
	"github.com/fdsend/fdsend/activation/internal/acttest"
	"github.com/fdsend/fdsend/activation/internal/pidfd"
	"github.com/fdsend/fdsend/internal/fdkind"
)

func TestMain(m *testing.M) {
	acttest.Main(m, map[string]func(){
		"report": childReport,
		"exec":   childExec,
		"api":    childAPI,
	})
}

// inheritedFDs returns the descriptors above standard error that came
// through exec: those without close-on-exec (exec closes every other one,
// so anything close-on-exec was opened by this process).
func inheritedFDs() []acttest.FD {
	var out []acttest.FD
	for _, s := range acttest.OpenFDs() {
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
	Inherited []acttest.FD      // non-close-on-exec descriptors above 2 at start
	Files     []fileReport
	FilesErr  string
	EnvAfter  []string // LISTEN_* still set after Files
	PidfdID   string   // this process's pidfd inode, if the kernel has pidfs
	UID, EUID int
	GID, EGID int
	Groups    []int
}

func childReport() {
	r := report{PID: os.Getpid(), Env: acttest.ListenEnv(), Inherited: inheritedFDs(),
		UID: os.Getuid(), EUID: os.Geteuid(), GID: os.Getgid(), EGID: os.Getegid()}
	r.Groups, _ = os.Getgroups()
	if id, ok := pidfd.OwnID(); ok {
		r.PidfdID = strconv.FormatUint(id, 10)
	}
	fs, err := activation.Files()
	if err != nil {
		r.FilesErr = err.Error()
	}
	for _, f := range fs {
		d, err := fdkind.Inspect(f.File)
		info, ierr := d.Info()
		if err == nil {
			err = ierr
		}
		if err != nil {
			info.Desc = "error: " + err.Error()
		}
		r.Files = append(r.Files, fileReport{Name: f.Name, Desc: info.Desc, Addr: d.Local})
	}
	for k := range acttest.ListenEnv() {
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
	env := acttest.Env("report", "LISTEN_FDS=99", "LISTEN_PID=1") // replaced by Exec
	err = Exec([]NamedFile{{Name: "web", File: l}, {Name: "dns", File: pc}}, exe, []string{exe, "-test.run=^$"}, env)
	fmt.Fprintln(os.Stderr, "Exec returned:", err)
	os.Exit(5)
}
