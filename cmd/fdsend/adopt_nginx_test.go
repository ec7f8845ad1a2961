//go:build linux

package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
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
	addr := freePort(t)
	ng := start(t, nil, nginx, "-p", dir, "-e", "stderr", "-c", nginxConf(t, dir, addr, "old"))
	waitHTTP(t, addr, "old", ng)

	clients := startHTTPClients(addr)
	defer clients.end()
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
	clients.end()
	if s := sockets(t, a.cmd.Process.Pid); len(s) != 0 {
		t.Errorf("fdsend adopt still holds sockets: %v", s)
	}
	a.signal(syscall.SIGTERM)
	if st := a.wait(); st != 0 {
		t.Errorf("fdsend adopt exited with status %d, want 0", st)
	}
	clients.mu.Lock()
	defer clients.mu.Unlock()
	if len(clients.failures) != 0 {
		t.Errorf("%d requests failed across the switch: %v", len(clients.failures), clients.failures)
	}
	if clients.answers["http old"] == 0 || clients.answers["http new"] == 0 {
		t.Errorf("answers %v: want some from nginx before and the Go server after", clients.answers)
	}
	t.Logf("answers: %v", clients.answers)
}

// startHTTPClients asks the HTTP server at addr without pause (askHTTP).
func startHTTPClients(addr string) *clientLoop {
	return startLoop(loopTarget{"http", func() (string, error) { return askHTTP(addr) }})
}

// waitHTTP waits, up to 20 s, until the HTTP server at addr answers who;
// srv's log goes with the failure.
func waitHTTP(t *testing.T, addr, who string, srv *launcher) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if got, err := askHTTP(addr); err == nil && got == who {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("no answer from %s on %s: %q, %v; log:\n%s", who, addr, got, err, srv.logText())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
