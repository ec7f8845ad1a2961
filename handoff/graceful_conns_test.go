//go:build linux

package handoff

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend/internal/fdtest"
)

// rawClient is a keep-alive HTTP/1.1 client on exactly one TCP connection
// (net/http's Transport may dial a spare connection when its idle one is
// late to come back, which would blur what is measured): any close of that
// connection fails its next request.
type rawClient struct {
	sent, ok int
	failures []string
}

// run sends numbered requests "/?c=CL&s=SEQ" on one connection to addr,
// pausing pace between them, until stop closes; started gets one value
// after the first answer.
func (rc *rawClient) run(addr string, cl int, pace time.Duration, stop <-chan struct{}, started chan<- struct{}) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		rc.failures = append(rc.failures, "dial: "+err.Error())
		started <- struct{}{}
		return
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			return
		default:
		}
		rc.sent++
		c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err := fmt.Fprintf(c, "GET /?c=%d&s=%d HTTP/1.1\r\nHost: test\r\n\r\n", cl, seq)
		var body []byte
		if err == nil {
			var resp *http.Response
			if resp, err = http.ReadResponse(br, nil); err == nil {
				body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil && (resp.StatusCode != 200 || resp.Close) {
					err = fmt.Errorf("status %d, close %v", resp.StatusCode, resp.Close)
				}
			}
		}
		var inst, gotCl, gotSeq int
		if err == nil {
			if _, serr := fmt.Sscanf(string(body), "%d %d %d", &inst, &gotCl, &gotSeq); serr != nil || gotCl != cl || gotSeq != seq {
				err = fmt.Errorf("answer %q", body)
			}
		}
		if seq == 0 {
			started <- struct{}{}
		}
		if err != nil {
			rc.failures = append(rc.failures, fmt.Sprintf("seq %d: %v", seq, err))
			return // the connection is gone or out of step
		}
		rc.ok++
		time.Sleep(pace) // pacing, not synchronisation
	}
}

// TestGracefulKeepsKeepAliveConns is issue 15's test of live hand-off: 500
// keep-alive HTTP clients, each sending a numbered request every 50 to 100
// ms on one TCP connection, across 10 restarts of examples/graceful: no
// request fails (so no client's connection was closed: each has only the
// one), every old instance passes every connection, every request is
// served exactly once (the instances log each), and every instance serves.
func TestGracefulKeepsKeepAliveConns(t *testing.T) {
	fdtest.Check(t)
	clients := 500
	if testing.Short() {
		clients = 100
	}
	addr := freeAddr(t)
	point := filepath.Join(shortDir(t), "g.sock")
	args := []string{"-listen", addr, "-handoff", point, "-log-requests", "-idle-grace", "1s"}

	first := startGraceful(t, args)
	first.waitReady(t)
	stop := make(chan struct{})
	started := make(chan struct{}, clients)
	rcs := make([]rawClient, clients)
	var wg sync.WaitGroup
	for cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rcs[cl].run(addr, cl, time.Duration(50+(cl*37)%51)*time.Millisecond, stop, started)
		}()
	}
	for range clients {
		select {
		case <-started:
		case <-time.After(30 * time.Second):
			close(stop)
			wg.Wait()
			t.Fatal("clients did not all get a first answer")
		}
	}
	instances := []*instance{first}
	passedRE := regexp.MustCompile(`passed (\d+) keep-alive connections`)
	for i := range 10 {
		in := startGraceful(t, args)
		in.waitReady(t)
		old := instances[len(instances)-1]
		instances = append(instances, in)
		if err := old.wait(30 * time.Second); err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("restart %d: old instance %d: %v; stderr:\n%s", i+1, old.pid, err, old.stderr)
		}
		n := -1
		if m := passedRE.FindStringSubmatch(old.stderr.String()); m != nil {
			n, _ = strconv.Atoi(m[1])
		}
		if n != clients {
			t.Errorf("restart %d: old instance %d passed %d connections, want %d", i+1, old.pid, n, clients)
		}
	}
	time.Sleep(300 * time.Millisecond) // the last instance serves a while too (pacing)
	close(stop)
	wg.Wait()
	last := instances[len(instances)-1]
	last.cmd.Process.Signal(syscall.SIGTERM)
	if err := last.wait(30 * time.Second); err != nil {
		t.Errorf("last instance: %v", err)
	}

	served := map[[2]int]int{}
	servedBy := map[int]int{}
	re := regexp.MustCompile(`served c=(\d+) s=(\d+)`)
	for _, in := range instances {
		for _, m := range re.FindAllStringSubmatch(in.stderr.String(), -1) {
			c, _ := strconv.Atoi(m[1])
			s, _ := strconv.Atoi(m[2])
			served[[2]int{c, s}]++
			servedBy[in.pid]++
		}
	}
	total, failed := 0, 0
	for cl, rc := range rcs {
		total += rc.sent
		for _, f := range rc.failures {
			failed++
			if failed <= 10 {
				t.Errorf("client %d: %s", cl, f)
			}
		}
		for seq := 0; seq < rc.ok; seq++ {
			if n := served[[2]int{cl, seq}]; n != 1 {
				t.Errorf("client %d request %d served %d times", cl, seq, n)
			}
		}
	}
	t.Logf("%d clients, %d requests, %d failed; served per instance: %v", clients, total, failed, servedBy)
	for _, in := range instances {
		if servedBy[in.pid] == 0 {
			t.Errorf("instance %d served nothing", in.pid)
		}
	}
}
