//go:build linux

package handoff

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/fdsend/fdsend/internal/fdtest"
)

// benchEndpoints are the n listeners the benchmark hands back and forth.
func benchEndpoints(n int) []Endpoint {
	eps := make([]Endpoint, n)
	for i := range eps {
		eps[i] = Endpoint{Name: "l" + strconv.Itoa(i), Network: "tcp", Address: "127.0.0.1:0"}
	}
	return eps
}

// childBenchInstance is the benchmark's other process: it takes the
// HANDOFF_N listeners at HANDOFF_POINT (opening them the first time), says
// "ready", and each time the benchmark takes them over, takes them back,
// until its stdin closes.
func childBenchInstance() error {
	n, err := strconv.Atoi(os.Getenv("HANDOFF_N"))
	if err != nil {
		return err
	}
	eps := benchEndpoints(n)
	stdinClosed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	for {
		u, err := Open(Config{Path: os.Getenv("HANDOFF_POINT"), LockTimeout: time.Minute})
		if err != nil {
			return err
		}
		ls, err := u.ListenAll(eps)
		if err != nil {
			return err
		}
		if err := u.Ready(); err != nil {
			return err
		}
		fmt.Println("ready")
		var done bool
		select {
		case <-u.Draining():
		case <-stdinClosed:
			done = true
		}
		for _, l := range ls {
			l.Close()
		}
		u.Close()
		if done {
			return nil
		}
	}
}

// BenchmarkHandoff measures a whole hand-off of n listening sockets from
// another process — Open, ListenAll, Ready, the old instance told to
// drain — ("handoff"), beside opening n listeners afresh with net.Listen
// ("fresh"). The other process takes the sockets back between iterations,
// untimed.
func BenchmarkHandoff(b *testing.B) {
	for _, n := range []int{1, 100, 10000} {
		b.Run("listeners="+strconv.Itoa(n), func(b *testing.B) {
			b.Run("handoff", func(b *testing.B) { benchHandoff(b, n) })
			b.Run("fresh", func(b *testing.B) { benchFresh(b, n) })
		})
	}
}

func benchHandoff(b *testing.B, n int) {
	path := filepath.Join(shortDir(b), "h.sock")
	cmd := childCmd("", "benchInstance", "HANDOFF_POINT="+path, "HANDOFF_N="+strconv.Itoa(n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		if err := fdtest.Wait(cmd, 30*time.Second); err != nil {
			b.Errorf("benchmark instance: %v", err)
		}
	}()
	out := bufio.NewReader(stdout)
	waitReady := func() {
		if line, err := readLine(out, time.Minute); line != "ready" {
			b.Fatalf("benchmark instance: %q %v", line, err)
		}
	}
	waitReady()
	eps := benchEndpoints(n)
	var prev *Upgrader
	var prevLs []net.Listener
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if prev != nil {
			// The other process takes everything back: wait until it is
			// ready and has released the lock.
			waitReady()
			if !closedWithin(prev.Draining(), time.Minute) {
				b.Fatal("not told to drain")
			}
			for _, l := range prevLs {
				l.Close()
			}
			prev.Close()
		}
		b.StartTimer()

		u, err := Open(Config{Path: path})
		if err != nil {
			b.Fatal(err)
		}
		ls, err := u.ListenAll(eps)
		if err != nil {
			b.Fatal(err)
		}
		if err := u.Ready(); err != nil {
			b.Fatal(err)
		}

		b.StopTimer()
		if i == 0 {
			for _, ep := range eps {
				if !u.Inherited(ep.Name) {
					b.Fatalf("%s was not handed over", ep.Name)
				}
			}
		}
		prev, prevLs = u, ls
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/listener")
	waitReady()
	for _, l := range prevLs {
		l.Close()
	}
	prev.Close()
}

// benchFresh listens on n addresses given in full, as a server restarting
// on its configured addresses would: one port on n loopback addresses
// (127.1.0.1, 127.1.0.2, ...), so that the kernel's search for a free
// ephemeral port, which grows with the number of ports in use, is not
// what is measured.
func benchFresh(b *testing.B, n int) {
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := probe.Addr().(*net.TCPAddr).Port
	probe.Close()
	addrs := make([]string, n)
	for j := range addrs {
		addrs[j] = fmt.Sprintf("127.%d.%d.%d:%d", 1+j/62500, 1+j/250%250, 1+j%250, port)
	}
	ls := make([]net.Listener, n)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range ls {
			l, err := net.Listen("tcp", addrs[j])
			if err != nil {
				b.Fatal(err)
			}
			ls[j] = l
		}
		b.StopTimer()
		for _, l := range ls {
			l.Close()
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/listener")
}
