//go:build linux

package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/fdsend/fdsend/internal/fdtest"
)

// TestAdoptHolder takes both listeners of a Python server into a running
// fdsend hold while a client loops, stops the server, and has fdsend fetch
// give them to a new server: no request fails (the holder keeps the queues
// open in between), the old server exits on --stop, and fdsend adopt keeps
// nothing.
func TestAdoptHolder(t *testing.T) {
	fdtest.Check(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "holder.sock")
	startHold(t, sock)
	old, tcp, path := startOldPython(t, dir)
	pid := strconv.Itoa(old.cmd.Process.Pid)
	clients := startClients(tcp, path)
	defer clients.end()
	clients.waitMore(t, "tcp old", 10)
	clients.waitMore(t, "unix old", 10)

	st, out := runFdsend(t, nil, "adopt", pid, "--listen", tcp, "--listen", path, "--fdname", "web:ctl", "--holder", sock, "--stop", "TERM")
	if st != 0 || !strings.Contains(out, "stored; sent SIGTERM to process "+pid) {
		t.Fatalf("adopt --holder: status %d, %q", st, out)
	}
	if st := old.wait(); st != 0 {
		t.Errorf("the old server exited with status %d, want 0", st)
	}
	got := map[string]string{}
	for _, l := range ls(t, sock) {
		got[l.name] = l.kind
	}
	if len(got) != 2 || !strings.Contains(got["web"], tcp) || !strings.Contains(got["ctl"], path) {
		t.Errorf("the holder holds %v, want web at %s and ctl at %s", got, tcp, path)
	}

	n := start(t, []string{childRoleEnv + "=adopt-new"}, fdsendBin, "fetch", sock, "web", "ctl", "--", os.Args[0], "-test.run=^$")
	clients.waitMore(t, "tcp new", 20)
	clients.waitMore(t, "unix new", 20)
	clients.end()
	n.signal(syscall.SIGTERM)
	if st := n.wait(); st != 0 {
		t.Errorf("the new server exited with status %d", st)
	}
	clients.mu.Lock()
	defer clients.mu.Unlock()
	if len(clients.failures) != 0 {
		t.Errorf("%d requests failed across the hand-over: %v", len(clients.failures), clients.failures)
	}
	t.Logf("answers: %v", clients.answers)
}

// TestAdoptHolderRefusals: with --holder, usage errors exit 2 and refusals
// 1; a name already held stores nothing (what was stored is removed again),
// an untrusted holder is refused before anything is taken, and the old
// server is left alone.
func TestAdoptHolderRefusals(t *testing.T) {
	fdtest.Check(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "holder.sock")
	startHold(t, sock)
	old, tcp, path := startOldPython(t, dir)
	pid := strconv.Itoa(old.cmd.Process.Pid)
	mustRun(t, "store", sock, "ctl", "--listen", "127.0.0.1:0")
	for _, tc := range []struct {
		args   []string
		status int
		msg    string
	}{
		{[]string{pid, "--listen", tcp, "--fdname", "web", "--holder", sock, "--", "/bin/true"}, 2, "give no -- COMMAND with it"},
		{[]string{pid, "--listen", tcp, "--holder", sock}, 2, "--holder needs --fdname"},
		{[]string{pid, "--listen", tcp, "--listen", path, "--fdname", "web", "--holder", sock}, 2, `name "web" given twice`},
		{[]string{pid, "--listen", tcp, "--fdname", "web", "--holder", sock, "--ready-timeout", "1s"}, 2, "--ready-timeout goes with a COMMAND"},
		{[]string{pid, "--listen", tcp, "--fdname", "web", "--holder", sock, "--as", "nginx"}, 2, "--as goes with a COMMAND"},
		{[]string{pid, "--listen", tcp, "--fdname", "web", "--holder-uid", "0", "--", "/bin/true"}, 2, "--holder-uid goes with --holder"},
		{[]string{pid, "--listen", tcp, "--fdname", "web", "--holder", sock, "--holder-uid", "12345"}, 1, "refusing the holder at " + sock},
		{[]string{pid, "--listen", tcp, "--listen", path, "--fdname", "web:ctl", "--holder", sock, "--stop", "TERM"}, 1, `--listen ` + path + `: "ctl" is already held in ` + sock + `; nothing was stored`},
	} {
		st, out := runFdsend(t, nil, append([]string{"adopt"}, tc.args...)...)
		if st != tc.status || !strings.Contains(out, tc.msg) {
			t.Errorf("adopt %q: status %d, %q; want %d and %q", tc.args, st, out, tc.status, tc.msg)
		}
		if regexp.MustCompile(`stored as|sent SIG`).MatchString(out) {
			t.Errorf("adopt %q stored or signalled: %q", tc.args, out)
		}
	}
	var names []string
	for _, l := range ls(t, sock) {
		names = append(names, l.name)
	}
	if len(names) != 1 || names[0] != "ctl" {
		t.Errorf("the holder holds %v, want ctl alone", names)
	}
	if who, err := ask("tcp", tcp); err != nil || who != "old" {
		t.Errorf("the old server after the refusals: %q, %v", who, err)
	}
	old.signal(syscall.SIGTERM)
	old.wait()
}
