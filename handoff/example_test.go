//go:build linux

package handoff_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fdsend/fdsend/handoff"
)

// A server that restarts without refusing a connection: run the program,
// then run it again with the same hand-off point, and the second process
// takes over from the first. The same code runs in both.
func Example_server() {
	upg, err := handoff.Open(handoff.Config{Path: "/run/myapp/handoff.sock"})
	if err != nil {
		log.Fatal(err)
	}
	// The running instance's socket if it has one named "http" on this
	// address, a new one otherwise.
	ln, err := upg.Listen("http", "tcp", ":8080")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello\n")
	})}
	drainer := handoff.NewHTTPDrainer(srv, 0)

	// Set up everything that can fail before Ready: until then the old
	// instance serves, and it goes on serving if this one dies.
	if err := upg.Ready(); err != nil && !errors.Is(err, handoff.ErrUnconfirmed) {
		log.Fatal(err)
	}
	go drainer.Serve(ln)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-upg.Draining(): // a newer instance took over
	case <-stop:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	drainer.Drain(ctx) // answers every request already on its way
	upg.Close()
}

// An Upgrader hands a listener from one instance to the next. Two instances
// in one process, for show; normally each is a process of its own, and they
// need not be related.
func Example() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	point := filepath.Join(dir, "app.sock")

	// The first instance finds nobody at the hand-off point.
	first, err := handoff.Open(handoff.Config{Path: point})
	if err != nil {
		log.Fatal(err)
	}
	ln1, err := first.Listen("http", "tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	if err := first.Ready(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("first: inherited", first.Inherited("http"))

	// The second one takes the socket by name and address.
	second, err := handoff.Open(handoff.Config{Path: point})
	if err != nil {
		log.Fatal(err)
	}
	ln2, err := second.Listen("http", "tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("second: inherited", second.Inherited("http"), "same socket", ln2.Addr().String() == ln1.Addr().String())
	if err := second.Ready(); err != nil {
		log.Fatal(err)
	}

	<-first.Draining()
	fmt.Println("first: draining")
	ln1.Close() // the second instance's copy stays open
	first.Close()

	c, err := net.Dial("tcp", ln2.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	c.Close()
	ln2.Close()
	second.Close()
	// Output:
	// first: inherited false
	// second: inherited true same socket true
	// first: draining
}

// Any named file can be handed over too, for example a file of state that
// survives restarts: both instances share the open file.
func ExampleUpgrader_File() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	point := filepath.Join(dir, "app.sock")

	first, err := handoff.Open(handoff.Config{Path: point})
	if err != nil {
		log.Fatal(err)
	}
	state, err := first.File("state", func() (*os.File, error) {
		return os.CreateTemp(dir, "state") // only when no older instance has one
	})
	if err != nil {
		log.Fatal(err)
	}
	io.WriteString(state, "counter=41\n")
	first.Ready()

	second, err := handoff.Open(handoff.Config{Path: point})
	if err != nil {
		log.Fatal(err)
	}
	got, err := second.File("state", nil) // nil: fail if not handed over
	if err != nil {
		log.Fatal(err)
	}
	second.Ready()
	<-first.Draining()
	state.Close()
	first.Close()

	got.Seek(0, io.SeekStart)
	b, _ := io.ReadAll(got)
	fmt.Print(string(b))
	got.Close()
	second.Close()
	// Output: counter=41
}

// Drain answers a request on a connection that was accepted just before
// the drain began, where http.Server.Shutdown would close it unanswered.
func ExampleHTTPDrainer() {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "answered\n")
	})}
	drainer := handoff.NewHTTPDrainer(srv, time.Second)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go drainer.Serve(ln)

	// A keep-alive client with a connection open and idle.
	tr := &http.Transport{}
	client := &http.Client{Transport: tr}
	resp, err := client.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		log.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	drained := make(chan error)
	go func() { drained <- drainer.Drain(context.Background()) }()
	for { // wait until the listener is closed
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			break
		}
		c.Close()
		time.Sleep(time.Millisecond)
	}

	// Its next request is answered, and told to go elsewhere afterwards.
	resp, err = client.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("%s", body)
	fmt.Println("Connection: close", resp.Close)
	fmt.Println("drained:", <-drained)
	// Output:
	// answered
	// Connection: close true
	// drained: <nil>
}
