//go:build linux

package handoff

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdtest"
)

func init() { children["idleServe"] = childIdleServe }

// The messages between the test and its idleServe child, one byte each:
// a connection (with its descriptor), the end of a batch, a request to
// give every connection back, and a request for the child's log.
const (
	msgConn  = 'c'
	msgDone  = 'd'
	msgGive  = 'g'
	msgLog   = 'l'
	idleSock = "HANDOFF_IDLE_SOCK"
)

// sendConns passes each connection take yields over uc and closes its own
// copy, then marks the end of the batch; it returns how many it passed.
func sendConns(uc *net.UnixConn, take func(give func(net.Conn)) error) (int, error) {
	n := 0
	var sendErr error
	err := take(func(c net.Conn) {
		defer c.Close()
		if sendErr != nil {
			return
		}
		if _, err := fdsend.Send(uc, []byte{msgConn}, c); err != nil {
			sendErr = err
			return
		}
		n++
	})
	if err == nil {
		err = sendErr
	}
	if err != nil {
		return n, err
	}
	_, err = fdsend.Send(uc, []byte{msgDone})
	return n, err
}

// recvConns serves every connection received over uc on d until the end
// of the batch; it returns how many it received.
func recvConns(uc *net.UnixConn, d *HTTPDrainer) (int, error) {
	n := 0
	for {
		b, err := recvMsg(uc, d)
		if err != nil {
			return n, err
		}
		switch b {
		case msgConn:
			n++
		case msgDone:
			return n, nil
		default:
			return n, fmt.Errorf("unexpected message %q", b)
		}
	}
}

// recvMsg receives one message; a connection that comes with it is served
// on d.
func recvMsg(uc *net.UnixConn, d *HTTPDrainer) (byte, error) {
	buf := make([]byte, 1)
	n, files, err := fdsend.Recv(uc, buf, 1)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, io.EOF
	}
	for _, f := range files {
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			return 0, err
		}
		if err := d.ServeConn(c); err != nil {
			return 0, err
		}
	}
	if buf[0] == msgConn && len(files) != 1 {
		return 0, fmt.Errorf("a connection message with %d descriptors", len(files))
	}
	return buf[0], nil
}

func countFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

// childIdleServe serves as instance 1 the connections the test passes,
// gives them back when asked, and at the end writes its descriptor counts
// and the requests it served.
func childIdleServe() error {
	uc0, err := net.Dial("unix", os.Getenv(idleSock))
	if err != nil {
		return err
	}
	uc := uc0.(*net.UnixConn)
	defer uc.Close()
	var mu sync.Mutex
	var served [][2]int
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cl, _ := strconv.Atoi(r.URL.Query().Get("c"))
		seq, _ := strconv.Atoi(r.URL.Query().Get("s"))
		mu.Lock()
		served = append(served, [2]int{cl, seq})
		mu.Unlock()
		fmt.Fprintf(w, "1 %d %d", cl, seq)
	})}
	defer srv.Close()
	d := NewHTTPDrainer(srv, time.Second)
	before := countFDs()
	for {
		b, err := recvMsg(uc, d)
		if err != nil {
			return err
		}
		switch b {
		case msgConn, msgDone:
		case msgGive:
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, err := sendConns(uc, func(give func(net.Conn)) error { return d.TakeAll(ctx, give) })
			cancel()
			if err != nil {
				return err
			}
		case msgLog:
			w := bufio.NewWriter(uc)
			mu.Lock()
			fmt.Fprintf(w, "%d %d\n", before, countFDs())
			for _, s := range served {
				fmt.Fprintf(w, "%d %d\n", s[0], s[1])
			}
			mu.Unlock()
			return w.Flush()
		default:
			return fmt.Errorf("unexpected message %q", b)
		}
	}
}

// TestTakeIdleAcrossProcesses: the load test's connections move between
// this process and a child, passed as descriptors, in every round.
func TestTakeIdleAcrossProcesses(t *testing.T) {
	fdtest.Check(t)
	clients, rounds := 200, 10
	if testing.Short() {
		clients, rounds = 50, 4
	}
	sock := filepath.Join(shortDir(t), "s")
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	child := fdtest.StartChild(t, childEnv, "idleServe", false, idleSock+"="+sock)
	ul.SetDeadline(time.Now().Add(10 * time.Second))
	uc, err := ul.AcceptUnix()
	ul.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()

	var mu sync.Mutex
	served := make(map[[2]int]int)
	var accepted atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cl, _ := strconv.Atoi(r.URL.Query().Get("c"))
		seq, _ := strconv.Atoi(r.URL.Query().Get("s"))
		mu.Lock()
		served[[2]int{cl, seq}]++
		mu.Unlock()
		fmt.Fprintf(w, "0 %d %d", cl, seq)
	})}
	a := NewHTTPDrainer(srv, time.Second)
	t.Cleanup(func() { srv.Close() })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go a.Serve(countingListener{l, &accepted})

	lc := startLoadClients(t, l.Addr().String(), clients)
	defer lc.stop()
	for r := 0; r < rounds; r++ {
		uc.SetDeadline(time.Now().Add(60 * time.Second))
		var n int
		var err error
		if r%2 == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			n, err = sendConns(uc, func(give func(net.Conn)) error { return a.TakeAll(ctx, give) })
			cancel()
		} else {
			if _, err = fdsend.Send(uc, []byte{msgGive}); err == nil {
				n, err = recvConns(uc, a)
			}
		}
		if err != nil {
			t.Fatalf("round %d: %v after %d connections", r, err, n)
		}
		if n != clients {
			t.Errorf("round %d moved %d connections, want %d", r, n, clients)
		}
	}
	if rounds%2 == 1 { // bring them home before the child ends
		fdsend.Send(uc, []byte{msgGive})
		if _, err := recvConns(uc, a); err != nil {
			t.Fatal(err)
		}
	}
	lc.stop()

	if _, err := fdsend.Send(uc, []byte{msgLog}); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(uc)
	var before, after, childServed int
	if _, err := fmt.Fscanf(br, "%d %d\n", &before, &after); err != nil {
		t.Fatalf("child's report: %v", err)
	}
	if before != after {
		t.Errorf("child: %d descriptors open before the moves, %d after", before, after)
	}
	mu.Lock()
	defer mu.Unlock()
	for {
		var cl, seq int
		if _, err := fmt.Fscanf(br, "%d %d\n", &cl, &seq); err != nil {
			if err != io.EOF {
				t.Errorf("child's log: %v", err)
			}
			break
		}
		served[[2]int{cl, seq}]++
		childServed++
	}
	if err := child.Wait(10 * time.Second); err != nil {
		t.Errorf("child: %v", err)
	}
	total, failed := lc.check(t, served)
	if n := accepted.Load(); n != int32(clients) {
		t.Errorf("the server accepted %d connections for %d clients", n, clients)
	}
	t.Logf("%d requests, %d failed, %d served by the child", total, failed, childServed)
}
