//go:build linux

package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend/activation"
	"github.com/fdsend/fdsend/internal/fdtest"
	"github.com/fdsend/fdsend/notify"
)

func init() {
	children["adopt-http"] = adoptHTTPChild
}

// adoptHTTPChild is a Go HTTP server built on package activation: it
// serves "new" on every listener named web, sends READY=1 and stops on
// SIGTERM.
func adoptHTTPChild() error {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	ls, err := activation.Listeners("web")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "new")
	})}
	for _, l := range ls {
		go srv.Serve(l)
	}
	if _, err := notify.Ready(); err != nil {
		return err
	}
	<-sigs
	return srv.Close()
}

// askHTTP makes one HTTP/1.0 request (no keep-alive) and returns the body's
// first line, "old" or "new".
func askHTTP(address string) (string, error) {
	conn, err := net.DialTimeout("tcp", address, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("GET / HTTP/1.0\r\nHost: x\r\n\r\n")); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return "", fmt.Errorf("reading the answer: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("reading the body: %w", err)
	}
	return strings.TrimSpace(line), nil
}

// TestAdoptNginx: a Go server built on activation takes the listener of a
// real nginx (master and a worker) with fdsend adopt; nginx gets SIGQUIT,
// its graceful stop, once the Go server is ready; no request of a client
// looping across the switch fails.
func TestAdoptNginx(t *testing.T) {
	nginx := fdtest.NeedCommand(t, "nginx")
	fdtest.NeedRoot(t, "nginx's master runs as root to start its worker as nobody")
	fdtest.Check(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
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
		location / { return 200 "old\n"; }
	}
}
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	ng := start(t, nil, nginx, "-p", dir, "-e", "stderr", "-c", conf)
	// Ready once it answers.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if who, err := askHTTP(addr); err == nil && who == "old" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("nginx does not answer on %s: %q, %v; log:\n%s", addr, who, err, ng.logText())
		}
		time.Sleep(20 * time.Millisecond)
	}

	var answers = map[string]int{}
	var failures []string
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			who, err := askHTTP(addr)
			if err != nil {
				failures = append(failures, err.Error())
			} else {
				answers[who]++
			}
		}
	}()
	ended := false
	end := func() {
		if !ended {
			ended = true
			close(stop)
			<-done
		}
	}
	defer end()

	a := start(t, []string{childRoleEnv + "=adopt-http"}, fdsendBin, "adopt", strconv.Itoa(ng.cmd.Process.Pid),
		"--listen", addr, "--fdname", "web", "--stop", "SIGQUIT", "--", os.Args[0], "-test.run=^$")
	a.waitLog(regexp.MustCompile(`is ready; sent SIGQUIT to process ` + strconv.Itoa(ng.cmd.Process.Pid)))
	if st := ng.wait(); st != 0 {
		t.Errorf("nginx exited with status %d after SIGQUIT, want 0", st)
	}
	// Requests after nginx's exit reach the Go server.
	for i := 0; i < 20; i++ {
		if who, err := askHTTP(addr); err != nil || who != "new" {
			t.Fatalf("after nginx's exit: %q, %v", who, err)
		}
	}
	end()
	if s := sockets(t, a.cmd.Process.Pid); len(s) != 0 {
		t.Errorf("fdsend adopt still holds sockets: %v", s)
	}
	a.signal(syscall.SIGTERM)
	if st := a.wait(); st != 0 {
		t.Errorf("fdsend adopt exited with status %d, want 0", st)
	}
	if len(failures) != 0 {
		t.Errorf("%d requests failed across the switch: %v", len(failures), failures)
	}
	if answers["old"] == 0 || answers["new"] == 0 {
		t.Errorf("answers %v: want some from nginx before and the Go server after", answers)
	}
	t.Logf("answers: %v", answers)
}
