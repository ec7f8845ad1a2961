// Package holdertest holds what the tests of package holder and of the
// fdsend command share: a squatter that answers like a descriptor holder on
// an address it took first, to show that clients refuse to talk to it.
package holdertest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/jsonmsg"
)

// SockEnv names the environment variable with the address Squat takes.
const SockEnv = "SQUAT_SOCK"

// Report is what a squatter got: connections, whole requests, and the
// descriptors that came with them.
type Report struct {
	Conns, Requests, FDs int
}

// Squat is a child role for a test binary: it binds the Unix socket named
// by SQUAT_SOCK before the holder can (an abstract name, or a path in a
// directory anyone may write in), prints "ready", and answers every
// request like a holder would — a list shows an entry "bait", a fetch
// hands out the read end of a pipe for each name, anything else is OK —
// until its standard input closes. Then it prints its Report as JSON.
func Squat() error {
	l, err := net.Listen("unix", os.Getenv(SockEnv))
	if err != nil {
		return err
	}
	fmt.Println("ready")
	var mu sync.Mutex
	var rep Report
	var wg sync.WaitGroup
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			rep.Conns++
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				conn := fdsend.NewConn(c.(*net.UnixConn))
				defer conn.Close()
				for answer(conn, &mu, &rep) {
				}
			}()
		}
	}()
	io.Copy(io.Discard, os.Stdin)
	l.Close()
	// No wg.Add after this: the accept loop has ended.
	<-accepting
	// The clients have hung up by now; let their goroutines read to the end.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		return errors.New("connections still open 5s after the test ended")
	}
	mu.Lock()
	defer mu.Unlock()
	return json.NewEncoder(os.Stdout).Encode(rep)
}

// answer reads one request on conn, counts it, and answers it; false when
// the connection is done.
func answer(conn *fdsend.Conn, mu *sync.Mutex, rep *Report) bool {
	data, files, err := conn.ReadMsg()
	if err != nil {
		return false
	}
	mu.Lock()
	rep.Requests++
	rep.FDs += len(files)
	mu.Unlock()
	jsonmsg.CloseAll(files)
	var req struct {
		Op    string   `json:"op"`
		Names []string `json:"names"`
	}
	type entry struct {
		Name string `json:"name"`
		Kind string `json:"kind"`
	}
	resp := struct {
		OK      bool    `json:"ok"`
		Entries []entry `json:"entries,omitempty"`
	}{OK: true}
	json.Unmarshal(data, &req)
	var give []any
	switch req.Op {
	case "list":
		resp.Entries = []entry{{Name: "bait", Kind: "pipe"}}
	case "fetch":
		for _, n := range req.Names {
			pr, pw, err := os.Pipe()
			if err != nil {
				return false
			}
			pw.Close()
			defer pr.Close()
			give = append(give, pr)
			resp.Entries = append(resp.Entries, entry{Name: n, Kind: "pipe"})
		}
	}
	return jsonmsg.Write(conn, resp, give...) == nil
}
