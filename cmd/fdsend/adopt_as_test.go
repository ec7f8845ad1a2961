//go:build linux

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/fdsend/fdsend/internal/fdtest"
)

// pyFormReport prints, as JSON, the NGINX and EINHORN_* variables and LISTEN_FDS
// it got, and for each descriptor EINHORN_FD_i names, where it listens.
const pyFormReport = `
import json, os, socket
env = {k: v for k, v in os.environ.items() if k == "NGINX" or k.startswith("EINHORN_") or k == "LISTEN_FDS"}
addrs = []
for i in range(int(os.environ.get("EINHORN_FD_COUNT", "0"))):
    fd = int(os.environ["EINHORN_FD_%d" % i])
    s = socket.socket(fileno=os.dup(fd))
    a = s.getsockname()
    addrs.append("%s:%d" % a if isinstance(a, tuple) else a)
    s.close()
print(json.dumps({"env": env, "addrs": addrs}))
`

// TestAdoptAsEinhorn: --as einhorn hands the sockets over as einhorn does
// (EINHORN_FD_COUNT, EINHORN_FD_0..., their families, EINHORN_FDS), on top
// of LISTEN_FDS, and variables of that form in fdsend's own environment are
// replaced.
func TestAdoptAsEinhorn(t *testing.T) {
	fdtest.Check(t)
	old, tcp, path := startOldPython(t, t.TempDir())
	defer func() {
		old.signal(syscall.SIGTERM)
		old.wait()
	}()
	cmd := []string{"adopt", strconv.Itoa(old.cmd.Process.Pid), "--listen", tcp, "--listen", path, "--as", "einhorn", "--", python3(t), "-c", pyFormReport}
	st, out := runFdsend(t, []string{"EINHORN_FD_7=99", "EINHORN_FD_COUNT=8"}, cmd...)
	if st != 0 {
		t.Fatalf("status %d: %s", st, out)
	}
	var rep struct {
		Env   map[string]string
		Addrs []string
	}
	if err := json.Unmarshal([]byte(out[strings.LastIndexByte(strings.TrimSuffix(out, "\n"), '\n')+1:]), &rep); err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	want := map[string]string{
		"LISTEN_FDS":          "2",
		"EINHORN_FD_COUNT":    "2",
		"EINHORN_FD_0":        "3",
		"EINHORN_FD_1":        "4",
		"EINHORN_FD_FAMILY_0": "AF_INET",
		"EINHORN_FD_FAMILY_1": "AF_UNIX",
		"EINHORN_FDS":         "3 4",
	}
	if len(rep.Env) != len(want) {
		t.Errorf("variables %v, want %v", rep.Env, want)
	}
	for k, v := range want {
		if rep.Env[k] != v {
			t.Errorf("%s=%q, want %q (all: %v)", k, rep.Env[k], v, rep.Env)
		}
	}
	if len(rep.Addrs) != 2 || rep.Addrs[0] != tcp || rep.Addrs[1] != path {
		t.Errorf("EINHORN_FD_0 and _1 listen at %v, want %s and %s", rep.Addrs, tcp, path)
	}
	st, out = runFdsend(t, nil, "adopt", strconv.Itoa(old.cmd.Process.Pid), "--listen", tcp, "--as", "inetd", "--", "/bin/true")
	if st != 2 || !strings.Contains(out, `--as "inetd": want systemd, nginx or einhorn`) {
		t.Errorf("--as inetd: status %d, %q", st, out)
	}
}

// nginxConf writes a configuration for an nginx that answers body on addr,
// with everything it writes under dir.
func nginxConf(t *testing.T, dir, addr, body string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nginx.conf")
	err := os.WriteFile(conf, []byte(`daemon off;
master_process on;
worker_processes 1;
user nobody nogroup;
pid `+filepath.Join(dir, "nginx.pid")+`;
error_log stderr notice;
events { worker_connections 256; }
http {
	access_log off;
	client_body_temp_path `+dir+`/body;
	proxy_temp_path `+dir+`/proxy;
	fastcgi_temp_path `+dir+`/fastcgi;
	uwsgi_temp_path `+dir+`/uwsgi;
	scgi_temp_path `+dir+`/scgi;
	server {
		listen `+addr+`;
		location / { return 200 "`+body+`\n"; }
	}
}
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return conf
}

// TestAdoptAsNginx: a fresh nginx master, started by fdsend adopt --as
// nginx, takes the listener of another nginx through NGINX= and serves it;
// once it answers, the old one gets SIGQUIT; no request of a client looping
// across the switch fails.
func TestAdoptAsNginx(t *testing.T) {
	nginx := fdtest.NeedCommand(t, "nginx")
	fdtest.NeedRoot(t, "nginx's master runs as root to start its worker as nobody")
	fdtest.Check(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	oldDir, newDir := filepath.Join(dir, "old"), filepath.Join(dir, "new")
	ng := start(t, nil, nginx, "-p", oldDir, "-e", "stderr", "-c", nginxConf(t, oldDir, addr, "old"))
	waitHTTP(t, addr, "old", ng)

	clients := startHTTPClients(addr)
	defer clients.end()
	a := start(t, nil, fdsendBin, "adopt", strconv.Itoa(ng.cmd.Process.Pid), "--listen", addr, "--as", "nginx",
		"--", nginx, "-p", newDir, "-e", "stderr", "-c", nginxConf(t, newDir, addr, "new"))
	a.waitLog(regexp.MustCompile(`using inherited sockets from "3;"`))
	// Both accept from the same queue until the old one stops: once the
	// new one has answered, stop the old one.
	waitHTTP(t, addr, "new", ng)
	ng.signal(syscall.SIGQUIT)
	if st := ng.wait(); st != 0 {
		t.Errorf("the old nginx exited with status %d after SIGQUIT, want 0", st)
	}
	for i := 0; i < 20; i++ {
		if who, err := askHTTP(addr); err != nil || who != "new" {
			t.Fatalf("after the old nginx's exit: %q, %v", who, err)
		}
	}
	clients.end()
	if s := sockets(t, a.cmd.Process.Pid); len(s) != 0 {
		t.Errorf("fdsend adopt still holds sockets: %v", s)
	}
	a.signal(syscall.SIGQUIT)
	if st := a.wait(); st != 0 {
		t.Errorf("fdsend adopt exited with status %d after SIGQUIT, want nginx's 0; log:\n%s", st, a.logText())
	}
	clients.mu.Lock()
	defer clients.mu.Unlock()
	if len(clients.failures) != 0 {
		t.Errorf("%d requests failed across the switch: %v", len(clients.failures), clients.failures)
	}
	t.Logf("answers: %v", clients.answers)
}
