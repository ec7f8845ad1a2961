//go:build linux

package handoff

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkPassConns hands examples/counter over with 1,000 and 10,000
// connected clients, each sending a line and waiting for the answer, then
// pausing (a tenth of a millisecond per client, so that all together send
// about 10,000 lines a second). "pass": the connections move to the new
// instance; "reconnect": the new instance does not take them
// (-pass-conns=false), the old one closes each at a message boundary and
// its client connects again and sends its line again. Each iteration is
// one hand-off. It reports
//
//   - conns/s: the clients divided by the time from the new instance's
//     "ready" to the old one's "drained" (all passed, or all closed);
//   - served-ms: from "ready" until every client has had an answer from the
//     new instance;
//   - p50-ms, p99-ms: for each client, the time between its last answer
//     from the old instance and its first from the new, less its own pauses
//     in between: what the restart cost it.
//
// Run: go test -run '^$' -bench BenchmarkPassConns -benchtime 3x ./handoff/
func BenchmarkPassConns(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, mode := range []string{"pass", "reconnect"} {
			b.Run(fmt.Sprintf("conns=%d/%s", n, mode), func(b *testing.B) {
				benchPassConns(b, n, mode == "pass")
			})
		}
	}
}

func benchPassConns(b *testing.B, n int, pass bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < uint64(n)+1000 {
		rl.Cur = min(rl.Max, uint64(n)+1000)
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
		if rl.Cur < uint64(n)+1000 {
			b.Skipf("RLIMIT_NOFILE is %d, too low for %d connections", rl.Cur, n)
		}
	}
	addr := freeAddr(b)
	point := filepath.Join(shortDir(b), "c.sock")
	args := []string{"-listen", addr, "-handoff", point, "-drain-timeout", "2m", fmt.Sprintf("-pass-conns=%v", pass)}
	in := startExample(b, counterBin, args)
	in.waitReady(b)
	base := time.Duration(n) * time.Millisecond / 10
	cc := startCounterClients(b, addr, n, !pass, func(cl int) time.Duration {
		return base + base*time.Duration(cl%20)/40 // spread so they do not beat together
	})
	if err := cc.waitAll(in.pid, time.Minute); err != nil {
		b.Fatal(err)
	}
	var drained, served time.Duration
	b.ResetTimer()
	for i := range b.N {
		next := startExample(b, counterBin, args)
		next.waitReady(b)
		t0 := time.Now()
		if err := cc.waitAll(next.pid, 2*time.Minute); err != nil {
			b.Fatalf("hand-off %d: %v", i+1, err)
		}
		served += time.Since(t0)
		line, err := readLine(in.out, 2*time.Minute)
		if err != nil || !strings.HasPrefix(line, fmt.Sprintf("drained pid=%d ", in.pid)) {
			b.Fatalf("hand-off %d: old instance said %q (%v); stderr:\n%s", i+1, line, err, in.stderr)
		}
		drained += time.Since(t0)
		if want := fmt.Sprintf(" passed=%d closed=0", n); pass && !strings.HasSuffix(line, want) {
			b.Errorf("hand-off %d: old instance said %q, want %q", i+1, line, want)
		}
		if err := in.wait(time.Minute); err != nil {
			b.Fatal(err)
		}
		in = next
	}
	b.StopTimer()
	cc.stop()
	in.cmd.Process.Signal(syscall.SIGTERM)
	in.wait(time.Minute)
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for _, f := range cc.failures {
		b.Error(f)
	}
	moved := slices.Clone(cc.moved)
	slices.Sort(moved)
	if len(moved) == 0 {
		b.Fatal("no client moved")
	}
	pct := func(p int) float64 { return float64(moved[(len(moved)-1)*p/100]) / float64(time.Millisecond) }
	b.ReportMetric(float64(n*b.N)/drained.Seconds(), "conns/s")
	b.ReportMetric(float64(served)/float64(b.N)/float64(time.Millisecond), "served-ms")
	b.ReportMetric(pct(50), "p50-ms")
	b.ReportMetric(pct(99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}
