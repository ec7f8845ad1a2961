// Command counter is a line-protocol server whose clients keep their
// connections, and their state, across restarts. Each line a client sends
// is answered with "N PID LINE": N counts the lines of that connection (1
// for the first), PID is the process that answered, LINE is the line. Start it, connect, then
// start it again with the same flags: the new process takes the listening
// socket and every open connection, with its counter, from the old one,
// which exits. The clients see the PID change and the counter go on.
//
//	export RUN="${XDG_RUNTIME_DIR:-$HOME/.run}"; mkdir -p -m 0700 "$RUN"
//	go build -o /tmp/counter ./examples/counter
//	/tmp/counter -listen 127.0.0.1:7070 -handoff "$RUN"/counter.sock &
//	nc 127.0.0.1 7070                  # type lines: "1 PID a", "2 PID b", ...
//	/tmp/counter -listen 127.0.0.1:7070 -handoff "$RUN"/counter.sock &
//	                                   # nc goes on: "3 NEWPID c", ...
//
// How: the new instance opens the hand-off point with
// handoff.Config.TakeConns. Once Draining has closed, the old one stops
// each connection at a message boundary — a read deadline in the past
// releases a goroutine waiting in Read without taking a byte — and passes
// it with PassConn, its state being the counter and the bytes its reader
// had buffered past the last whole line. The new instance receives them
// from Conns and goes on reading the buffered bytes first. A connection
// that cannot be passed (the new instance does not take connections, or is
// gone) is closed at that boundary, as a draining server would;
// -pass-conns=false makes the new instance refuse them, for comparison.
//
// It prints "ready pid=PID inherited=BOOL addr=ADDR" on standard output when
// it serves, and "drained pid=PID passed=N closed=M" before it exits;
// errors go to standard error. SIGTERM or SIGINT closes every connection
// and exits.
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fdsend/fdsend/handoff"
)

// connName is the name connections are passed under.
const connName = "counter"

// maxLine is the longest line a client may send.
const maxLine = 64 << 10

// server holds the connections this instance serves.
type server struct {
	upg  *handoff.Upgrader
	pid  []byte      // " PID "
	stop atomic.Bool // set once: stop each connection at its next boundary

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
	passed atomic.Int64
	closed atomic.Int64
}

func main() {
	listen := flag.String("listen", "127.0.0.1:7070", "TCP `address` to serve on")
	point := flag.String("handoff", "", "hand-off point: the Unix socket `path` instances meet at (required)")
	passConns := flag.Bool("pass-conns", true, "take the old instance's connections; without it the old instance closes them and their clients reconnect")
	drainTimeout := flag.Duration("drain-timeout", 30*time.Second, "how long a draining server waits for its connections to be passed")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix(fmt.Sprintf("counter[%d]: ", os.Getpid()))
	if *point == "" {
		log.Print("-handoff is required")
		flag.Usage()
		os.Exit(2)
	}

	upg, err := handoff.Open(handoff.Config{Path: *point, TakeConns: *passConns})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := upg.Listen(connName, "tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	if err := upg.Ready(); err != nil {
		if !errors.Is(err, handoff.ErrUnconfirmed) {
			log.Fatal(err)
		}
		log.Print(err)
	}
	s := &server{upg: upg, pid: []byte(" " + strconv.Itoa(os.Getpid()) + " "), conns: map[net.Conn]struct{}{}}

	// The old instance's connections, as it passes them.
	received := make(chan struct{})
	go func() {
		defer close(received)
		for pc := range upg.Conns() {
			n, rest, ok := decodeState(pc.State)
			if pc.Name != connName || !ok {
				log.Printf("dropping a connection passed as %q with %d bytes of state", pc.Name, len(pc.State))
				pc.Conn.Close()
				continue
			}
			s.start(pc.Conn, n, rest)
		}
	}()
	accepted := make(chan error, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				accepted <- err
				return
			}
			s.start(c, 0, nil)
		}
	}()
	fmt.Printf("ready pid=%d inherited=%v addr=%s\n", os.Getpid(), upg.Inherited(connName), ln.Addr())

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	handOver := false
	select {
	case <-upg.Draining():
		handOver = true
	case sig := <-sigs:
		log.Printf("%v: closing", sig)
	case err := <-accepted:
		log.Fatalf("accepting: %v", err)
	}
	ln.Close() // the newer instance (if any) has its own copy
	if handOver {
		// Connections may still be arriving from the instance before us.
		select {
		case <-received:
		case <-time.After(*drainTimeout):
		}
	}
	s.stopAll()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(*drainTimeout):
		log.Printf("connections not done after %v: closing them", *drainTimeout)
		s.closeAll()
		<-done
	}
	if err := upg.Close(); err != nil {
		log.Print(err)
	}
	fmt.Printf("drained pid=%d passed=%d closed=%d\n", os.Getpid(), s.passed.Load(), s.closed.Load())
}

// start serves c, whose counter is at n, reading the bytes of rest first.
func (s *server) start(c net.Conn, n uint64, rest []byte) {
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go s.serve(c, n, rest)
}

// stopAll makes every connection stop at its next message boundary: those
// registered later see the flag before their first read.
func (s *server) stopAll() {
	s.stop.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.SetReadDeadline(time.Now())
	}
}

func (s *server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// serve answers the lines of c until the client leaves or the instance
// stops; then it passes c on, or closes it.
func (s *server) serve(c net.Conn, n uint64, rest []byte) {
	defer s.wg.Done()
	r := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(rest), c), 4096)
	var partial []byte
	for !s.stop.Load() {
		line, err := r.ReadSlice('\n')
		if err == nil {
			n++
			answer := strconv.AppendUint(nil, n, 10)
			answer = append(answer, s.pid...)
			answer = append(append(answer, partial...), line...)
			partial = partial[:0]
			if _, err := c.Write(answer); err != nil {
				s.forget(c, true)
				return
			}
			continue
		}
		if errors.Is(err, bufio.ErrBufferFull) && len(partial)+len(line) < maxLine {
			partial = append(partial, line...)
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && s.stop.Load() {
			// Nothing was read past line: it is the start of the next
			// message, which the next instance reads first.
			partial = append(partial, line...)
			break
		}
		s.forget(c, true) // the client left, or sent a line too long
		return
	}
	// A message boundary: every whole line read has been answered, and
	// partial and what r still holds are the start of the next ones.
	buffered, _ := r.Peek(r.Buffered())
	state := encodeState(n, append(partial, buffered...))
	if err := s.upg.PassConn(connName, c, state); err != nil {
		if !errors.Is(err, handoff.ErrNoTaker) {
			log.Print(err)
		}
		s.forget(c, true)
		return
	}
	s.passed.Add(1)
	s.forget(c, false) // PassConn has closed our copy
}

// forget removes c from the set, closing it if asked.
func (s *server) forget(c net.Conn, close bool) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	if close {
		c.Close()
		s.closed.Add(1)
	}
}

// encodeState is the counter (8 bytes, big-endian) and the bytes received
// but not yet answered.
func encodeState(n uint64, rest []byte) []byte {
	return append(binary.BigEndian.AppendUint64(nil, n), rest...)
}

func decodeState(b []byte) (n uint64, rest []byte, ok bool) {
	if len(b) < 8 || len(b)-8 > maxLine {
		return 0, nil, false
	}
	return binary.BigEndian.Uint64(b), b[8:], true
}
