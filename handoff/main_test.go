//go:build linux

package handoff

import (
	"bufio"
	"encoding/json"
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

	"github.com/fdsend/fdsend/internal/fdtest"
)

// childEnv selects a child role when the test binary is re-executed.
const childEnv = "HANDOFF_TEST_CHILD"

// children maps a role to what the re-executed binary runs. A role reports
// on stdout and exits non-zero on failure.
var children = map[string]func() error{
	"take":           childTake,
	"renameAndDie":   childRenameAndDie,
	"benchInstance":  childBenchInstance,
	"takeAndHangOut": childTakeAndHangOut,
	"plant":          childPlant,
	"openLock":       childOpenLock,
}

// gracefulBin and counterBin are examples/graceful and examples/counter,
// built once by TestMain.
var gracefulBin, counterBin string

func TestMain(m *testing.M) {
	fdtest.RunChild(childEnv, children)
	dir, err := os.MkdirTemp("", "handoff-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gracefulBin = filepath.Join(dir, "graceful")
	counterBin = filepath.Join(dir, "counter")
	for bin, pkg := range map[string]string{gracefulBin: "examples/graceful", counterBin: "examples/counter"} {
		build := exec.Command(goTool(), "build", "-o", bin, "github.com/fdsend/fdsend/"+pkg)
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// goTool finds the go command that runs the tests.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if p := "/usr/local/go/bin/go"; fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// shortDir returns a fresh directory with a short path (socket paths are
// limited to about 100 bytes), removed when the test ends.
func shortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ho")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// childCmd builds a command that runs the test binary (or exe) in role.
func childCmd(exe, role string, env ...string) *exec.Cmd {
	if exe == "" {
		exe = os.Args[0]
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{childEnv + "=" + role}, env...)...)
	cmd.Stderr = os.Stderr
	return cmd
}

// takeReport is what the "take" child found.
type takeReport struct {
	Err       string `json:"err"`
	Inherited bool   `json:"inherited"`
	Addr      string `json:"addr"`
}

// childTake opens the hand-off point HANDOFF_POINT, takes the listener
// HANDOFF_NAME at HANDOFF_ADDR (trusting the UIDs in HANDOFF_ALLOW), and
// reports. It never calls Ready.
func childTake() error {
	cfg := Config{Path: os.Getenv("HANDOFF_POINT"), LockTimeout: 5 * time.Second}
	for _, s := range strings.Split(os.Getenv("HANDOFF_ALLOW"), ",") {
		if uid, err := strconv.Atoi(s); err == nil {
			cfg.PeerUIDs = append(cfg.PeerUIDs, uid)
		}
	}
	var r takeReport
	u, err := Open(cfg)
	if err == nil {
		var l net.Listener
		l, err = u.Listen(os.Getenv("HANDOFF_NAME"), "tcp", os.Getenv("HANDOFF_ADDR"))
		if err == nil {
			r.Inherited, r.Addr = u.Inherited(os.Getenv("HANDOFF_NAME")), l.Addr().String()
			l.Close()
		}
		u.Close()
	}
	if err != nil {
		r.Err = err.Error()
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

// childRenameAndDie takes the listener "web" and dies inside Ready, right
// after renaming its socket over the hand-off point.
func childRenameAndDie() error {
	u, err := Open(Config{Path: os.Getenv("HANDOFF_POINT"), LockTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	if _, err := u.Listen("web", "tcp", os.Getenv("HANDOFF_ADDR")); err != nil {
		return err
	}
	testHookRenamed = func() { os.Exit(7) }
	return u.Ready()
}

// childTakeAndHangOut takes the listener "web" and then waits, never
// calling Ready, until its stdin closes.
func childTakeAndHangOut() error {
	u, err := Open(Config{Path: os.Getenv("HANDOFF_POINT"), LockTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	if _, err := u.Listen("web", "tcp", os.Getenv("HANDOFF_ADDR")); err != nil {
		return err
	}
	fmt.Println("taken")
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// readLine reads a line from r within d, without its newline.
func readLine(r *bufio.Reader, d time.Duration) (string, error) {
	s, err := fdtest.ReadLine(r, d)
	return strings.TrimSpace(s), err
}

// startWait starts cmd and waits for it within d.
func startWait(cmd *exec.Cmd, d time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	return fdtest.Wait(cmd, d)
}
