package notify_test

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/notify"
)

// A service started with Type=notify (or under `fdsend activate`) says when
// it is ready to serve, and keeps its status line current. Outside a manager
// the calls do nothing and return false.
func ExampleReady() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	if _, err := notify.Ready(); err != nil {
		log.Printf("notify: %v", err)
	}
	notify.Status("serving on " + ln.Addr().String())
	go http.Serve(ln, http.NotFoundHandler())

	// ... and on the way out:
	notify.Stopping()
}

// Before exiting for a restart, a service hands its listener and the
// connections it wants to keep to the manager's descriptor store. The
// manager passes them back at the next start, named, with LISTEN_FDS and
// LISTEN_FDNAMES (package activation reads them). Barrier makes sure the
// manager has them before the process exits.
func ExampleStore() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close() // the manager holds its own duplicate

	if _, err := notify.Store("http", ln); err != nil {
		log.Printf("storing the listener: %v", err)
	}
	if _, err := notify.Barrier(5 * time.Second); err != nil {
		log.Printf("store not confirmed: %v", err)
	}
}

// A Client tells the manager at its socket about the service and hands it
// descriptors to keep. It names its socket explicitly and may bound each
// send. Here the "manager" is a socket of our own, to show what goes over
// the wire.
func Example() {
	dir, err := os.MkdirTemp("", "notify-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	addr := filepath.Join(dir, "notify")
	manager, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		log.Fatal(err)
	}
	defer manager.Close()

	c := notify.Client{Addr: addr, Timeout: time.Second}
	r, w, err := os.Pipe()
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()
	sent, err := c.Store("queue", r)
	r.Close() // the manager has its own copy now
	fmt.Println(sent, err)

	buf := make([]byte, 4096)
	n, files, err := fdsend.Recv(manager, buf, 4)
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range files {
		f.Close()
	}
	fmt.Printf("%q with %d descriptor\n", buf[:n], len(files))
	// Output:
	// true <nil>
	// "FDSTORE=1\nFDNAME=queue" with 1 descriptor
}

// A program that starts other programs can take NOTIFY_SOCKET for itself, so
// that its children do not notify the manager in its name (libsystemd's
// unset_environment).
func ExampleTakeEnv() {
	manager := notify.TakeEnv()
	// ... start children: they do not inherit NOTIFY_SOCKET ...
	if _, err := manager.Ready(); err != nil {
		log.Printf("notify: %v", err)
	}
}
