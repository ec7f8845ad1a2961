//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fdsend/fdsend/holder"
	"github.com/fdsend/fdsend/internal/fdtest"
	"github.com/fdsend/fdsend/internal/holdertest"
)

func init() {
	children["squatter"] = holdertest.Squat
}

// runSquatter runs holdertest.Squat as nobody (setpriv) on sock; the returned
// function ends it and returns its report.
func runSquatter(t *testing.T, sock string) (pid int, report func() holdertest.Report) {
	t.Helper()
	c := fdtest.StartChild(t, childRoleEnv, "squatter", true, holdertest.SockEnv+"="+sock)
	if line, err := c.ReadLine(cliTimeout); line != "ready\n" {
		t.Fatalf("squatter: %q, %v", line, err)
	}
	return c.Cmd.Process.Pid, func() holdertest.Report {
		t.Helper()
		c.In.Close()
		line, err := c.ReadLine(cliTimeout)
		var r holdertest.Report
		if err != nil || json.Unmarshal([]byte(line), &r) != nil {
			t.Fatalf("squatter report: %q, %v", line, err)
		}
		return r
	}
}

// TestHolderCLIRefusesSquatter: user nobody binds the holder's address
// first — an abstract name, or a path in a directory anyone may write in —
// and answers like a holder. Root's store, fetch, ls, rm and transfer
// refuse it, saying who answered, before sending or accepting a
// descriptor; --holder-uid nobody trusts it on purpose.
func TestHolderCLIRefusesSquatter(t *testing.T) {
	fdtest.NeedRoot(t, "it runs a child as nobody")
	for _, tc := range []struct{ name, sock string }{
		{"abstract", fmt.Sprintf("@fdsend-cli-squat-%d", os.Getpid())},
		{"path", filepath.Join(fdtest.WorldDir(t), "holder.sock")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fdtest.Check(t)
			pid, report := runSquatter(t, tc.sock)
			other := filepath.Join(t.TempDir(), "other.sock")
			startHold(t, other)
			mustRun(t, "store", other, "kept", "--file", "/etc/hostname")
			marker := filepath.Join(t.TempDir(), "ran")
			for _, args := range [][]string{
				{"store", tc.sock, "web", "--file", "/etc/hostname"},
				{"store", tc.sock, "web", "--listen", "127.0.0.1:0"},
				{"fetch", tc.sock, "web", "--", "/bin/sh", "-c", "echo ran > " + marker},
				{"ls", tc.sock},
				{"rm", tc.sock, "web"},
				{"transfer", other, tc.sock},
				{"transfer", tc.sock, other},
			} {
				r := fdsendRun(t, args...)
				who := fmt.Sprintf("pid %d uid 65534", pid)
				if r.status != 1 || !strings.Contains(r.stderr, "fdsend "+args[0]+": refusing the holder at "+tc.sock) || !strings.Contains(r.stderr, who) || r.stdout != "" {
					t.Errorf("fdsend %q: status %d, stdout %q, stderr %q; want 1 and a refusal naming %s", args, r.status, r.stdout, r.stderr, who)
				}
			}
			if _, err := os.Stat(marker); err == nil {
				t.Errorf("fetch ran its command with what the squatter gave")
			}
			// Trusted on purpose.
			r := fdsendRun(t, "ls", tc.sock, "--holder-uid", "nobody")
			if r.status != 0 || !strings.HasPrefix(r.stdout, "bait\tpipe\t") {
				t.Errorf("ls --holder-uid nobody: %d %q %q", r.status, r.stdout, r.stderr)
			}
			if got := report(); got.Requests != 1 || got.FDs != 0 {
				t.Errorf("squatter got %d requests and %d descriptors; want only the trusted ls, no descriptor", got.Requests, got.FDs)
			}
		})
	}
}

// TestHolderCLIAbstractNoMode: fdsend hold on an abstract name does not
// claim a file mode it cannot have.
func TestHolderCLIAbstractNoMode(t *testing.T) {
	sock := fmt.Sprintf("@fdsend-cli-abstract-%d", os.Getpid())
	h := startHold(t, sock)
	if !h.waitLog("holding at most") {
		t.Fatalf("no start-up line: %s", h.log())
	}
	if st := h.stop(); st != 0 {
		t.Errorf("status %d", st)
	}
	if log := h.log(); strings.Contains(log, "mode 0") || !strings.Contains(log, sock+" (abstract: no file mode") {
		t.Errorf("hold %s says: %s", sock, log)
	}
}

// TestHolderCLIStoreListenPathStays: the socket file store --listen /path
// makes is the stored listener's address; it stays when store exits, and
// connections to it reach the listener the holder gives back.
func TestHolderCLIStoreListenPathStays(t *testing.T) {
	fdtest.Check(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "holder.sock")
	startHold(t, sock)
	stream, dgram := filepath.Join(dir, "web.sock"), filepath.Join(dir, "dns.sock")
	if out := strings.TrimSpace(mustRun(t, "store", sock, "web", "--listen", stream)); out != stream {
		t.Errorf("store --listen %s printed %q", stream, out)
	}
	if out := strings.TrimSpace(mustRun(t, "store", sock, "dns", "--listen", dgram, "--datagram")); out != dgram {
		t.Errorf("store --listen %s --datagram printed %q", dgram, out)
	}
	for _, p := range []string{stream, dgram} {
		if st, err := os.Lstat(p); err != nil || st.Mode().Type() != os.ModeSocket {
			t.Fatalf("%s after store exited: %v, %v; want the socket file", p, st, err)
		}
	}
	c, err := holder.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	files, err := c.Fetch([]string{"web", "dns"}, false)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.FileListener(files[0])
	files[0].Close()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	pc, err := net.FilePacketConn(files[1])
	files[1].Close()
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()

	conn, err := net.DialTimeout("unix", stream, time.Second)
	if err != nil {
		t.Fatalf("connect to %s: %v", stream, err)
	}
	defer conn.Close()
	l.(*net.UnixListener).SetDeadline(time.Now().Add(cliTimeout))
	ac, err := l.Accept()
	if err != nil {
		t.Fatalf("the fetched listener did not get the connection to %s: %v", stream, err)
	}
	ac.Close()

	dc, err := net.Dial("unixgram", dgram)
	if err != nil {
		t.Fatalf("send to %s: %v", dgram, err)
	}
	defer dc.Close()
	if _, err := dc.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	pc.SetReadDeadline(time.Now().Add(cliTimeout))
	buf := make([]byte, 16)
	n, _, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Errorf("fetched datagram socket read %q, %v", buf[:n], err)
	}
}

// TestHolderCLIEscapes stores a file whose name holds a carriage return,
// a terminal title escape, a backslash and a t, and bytes that are not
// UTF-8, under a name with a backslash in it: ls, transfer, rm and hold's
// log show them escaped, one entry a line, nothing raw.
func TestHolderCLIEscapes(t *testing.T) {
	fdtest.Check(t)
	dir := t.TempDir()
	sock, sock2 := filepath.Join(dir, "holder.sock"), filepath.Join(dir, "new.sock")
	h := startHold(t, sock)
	startHold(t, sock2)
	evil := filepath.Join(dir, "x\r\x1b]0;owned\x07\\t\xff\xfe.txt")
	if err := os.WriteFile(evil, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "store", sock, `back\tslash`, "--file", evil)
	mustRun(t, "store", sock, "plain", "--file", "/dev/null")

	out := mustRun(t, "ls", sock)
	raw := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if c := s[i]; (c < 0x20 && c != '\t' && c != '\n') || c >= 0x7f {
				return true
			}
		}
		return false
	}
	if raw(out) {
		t.Errorf("ls wrote raw control or non-ASCII bytes: %q", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("ls: %q, want 2 lines", out)
	}
	f := strings.Split(lines[0], "\t")
	// The holder's answer carries the path's bytes as they are (kind_raw),
	// so each invalid byte is shown as itself.
	wantKind := "file " + dir + `/x\r\x1b]0;owned\x07\\t\xff\xfe.txt`
	if len(f) != 4 || f[0] != `back\\tslash` || f[1] != wantKind {
		t.Errorf("ls line %q; want the fields %q and %q", lines[0], `back\\tslash`, wantKind)
	}

	r := fdsendRun(t, "transfer", sock, sock2)
	if r.status != 0 || r.stdout != "copied back\\\\tslash\ncopied plain\n" {
		t.Errorf("transfer: %d %q %q", r.status, r.stdout, r.stderr)
	}
	r = fdsendRun(t, "rm", sock, `no\rpe`)
	if r.status != 1 || raw(r.stderr) || !strings.Contains(r.stderr, `no\\\\rpe`) {
		t.Errorf("rm of a missing name: %d %q", r.status, r.stderr)
	}
	mustRun(t, "rm", sock, `back\tslash`)
	if !h.waitLog(`removed "back\\\\tslash"`) {
		t.Errorf("hold's log: %q", h.log())
	}
	if log := h.log(); raw(log) {
		t.Errorf("hold's log holds raw bytes: %q", log)
	}
}
