//go:build linux

package holder_test

import (
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/fdsend/fdsend/holder"
)

// A holder keeps a listening socket while the server that owns it
// restarts: the old instance stores it, the new one fetches it.
func Example() {
	dir, err := os.MkdirTemp("", "holder-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "holder.sock")

	srv, err := holder.Listen(sock, holder.Config{})
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve()
	defer srv.Close()

	// The first instance of a server listens and hands its socket to the
	// holder; its own copy can go (the holder keeps a duplicate).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	c, err := holder.Dial(sock)
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Store("web", l, 0, false); err != nil {
		log.Fatal(err)
	}
	l.Close()
	c.Close()

	// The next instance takes it back.
	c, err = holder.Dial(sock)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	files, err := c.Fetch([]string{"web"}, false)
	if err != nil {
		log.Fatal(err)
	}
	l2, err := net.FileListener(files[0])
	files[0].Close()
	if err != nil {
		log.Fatal(err)
	}
	defer l2.Close()
	fmt.Println("listening again:", l2.Addr().Network())
	// Output: listening again: tcp
}

// List describes what a holder holds.
func ExampleClient_List() {
	dir, err := os.MkdirTemp("", "holder-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	srv, err := holder.Listen(filepath.Join(dir, "holder.sock"), holder.Config{})
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve()
	defer srv.Close()
	c, err := holder.Dial(filepath.Join(dir, "holder.sock"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	null, err := os.Open(os.DevNull)
	if err != nil {
		log.Fatal(err)
	}
	defer null.Close()
	if err := c.Store("null", null, time.Hour, false); err != nil {
		log.Fatal(err)
	}
	entries, err := c.List()
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range entries {
		fmt.Printf("%s: %s, expires in about an hour: %v\n", e.Name, e.Kind, e.ExpiresIn > 59*time.Minute)
	}
	// Output: null: character device /dev/null, expires in about an hour: true
}

// Transfer moves everything a holder holds into a new one, so that the
// holder itself can be restarted.
func ExampleTransfer() {
	dir, err := os.MkdirTemp("", "holder-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	start := func(name string) *holder.Server {
		s, err := holder.Listen(filepath.Join(dir, name), holder.Config{})
		if err != nil {
			log.Fatal(err)
		}
		go s.Serve()
		return s
	}
	old, next := start("old.sock"), start("new.sock")
	defer next.Close()

	from, err := holder.Dial(filepath.Join(dir, "old.sock"))
	if err != nil {
		log.Fatal(err)
	}
	defer from.Close()
	to, err := holder.Dial(filepath.Join(dir, "new.sock"))
	if err != nil {
		log.Fatal(err)
	}
	defer to.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		log.Fatal(err)
	}
	defer null.Close()
	from.Store("null", null, 0, false)

	rep, err := holder.Transfer(from, to)
	if err != nil {
		log.Fatal(err)
	}
	old.Close() // the new holder has everything
	fmt.Println("copied:", rep.Copied, "skipped:", rep.Skipped)
	// Output: copied: [null] skipped: []
}

// Rules let other users reach the holder, each for some operations.
func ExampleParseRule() {
	r, err := holder.ParseRule("gid=1000:fetch,list")
	if err != nil {
		log.Fatal(err)
	}
	cfg := holder.Config{Rules: []holder.Rule{r}}
	fmt.Println(r.GID, r.Ops, cfg.SocketMode())
	// Output: 1000 fetch,list -rw-rw-rw-
}

// A client refuses a holder socket served by a user it does not trust
// (by default anyone but itself and root) before it sends or accepts
// anything; DialConfig names the user a holder is meant to run as.
func ExampleDialConfig() {
	dir, err := os.MkdirTemp("", "holder-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "holder.sock")
	srv, err := holder.Listen(sock, holder.Config{})
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve()
	defer srv.Close()

	// Say that the holder must run as this process's user, and no other.
	cfg := holder.DialConfig{ServerUIDs: []int{os.Geteuid()}}
	c, err := cfg.Dial(sock)
	if errors.Is(err, holder.ErrUntrusted) {
		log.Fatalf("someone else answers on %s: %v", sock, err)
	}
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	entries, err := c.List()
	fmt.Println(len(entries), err)
	// Output: 0 <nil>
}
