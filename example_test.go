//go:build linux

package fdsend_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"syscall"

	"github.com/fdsend/fdsend"
)

// The original fdsend's example: twelve files and a message in one call.
func Example() {
	a, b, err := fdsend.Socketpair(syscall.SOCK_STREAM)
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	defer b.Close()

	var files []any
	for range 12 {
		f, err := os.Open(os.DevNull)
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close() // the sender keeps its own descriptors
		files = append(files, f)
	}
	if _, err := fdsend.Send(a, []byte("here you go!"), files...); err != nil {
		log.Fatal(err)
	}

	buf := make([]byte, 128)
	n, got, err := fdsend.Recv(b, buf, 32)
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range got {
		defer f.Close() // the receiver owns what it received
	}
	fmt.Printf("%q with %d files\n", buf[:n], len(got))
	// Output: "here you go!" with 12 files
}

// RecvMsg reports truncation in its flags instead of an error, and never
// leaves a descriptor open that did not fit.
func ExampleRecvMsg() {
	a, b, err := fdsend.Socketpair(syscall.SOCK_SEQPACKET)
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		log.Fatal(err)
	}
	defer null.Close()
	if _, err := fdsend.Send(a, []byte("three"), null, null, null); err != nil {
		log.Fatal(err)
	}

	buf := make([]byte, 16)
	fds := make([]int, 2) // room for two: the third is closed for us
	n, nfds, flags, err := fdsend.RecvMsg(b, buf, fds, 0)
	if err != nil {
		log.Fatal(err)
	}
	for _, fd := range fds[:nfds] {
		syscall.Close(fd)
	}
	fmt.Println(string(buf[:n]), nfds, flags&syscall.MSG_CTRUNC != 0)
	// Output: three 2 true
}

// Errors keep the kernel's errno.
func ExampleSend_errno() {
	null, err := os.Open(os.DevNull)
	if err != nil {
		log.Fatal(err)
	}
	defer null.Close()
	_, err = fdsend.Send(null, []byte("x"), null)
	fmt.Println(err)
	// Output: sendmsg: socket operation on non-socket
}

// A Conn carries whole messages with any number of files: here 300, more
// than one sendmsg can carry.
func ExampleConn() {
	a, b, err := fdsend.Socketpair(syscall.SOCK_STREAM)
	if err != nil {
		log.Fatal(err)
	}
	w, r := fdsend.NewConn(a), fdsend.NewConn(b)
	defer w.Close()
	defer r.Close()

	null, err := os.Open(os.DevNull)
	if err != nil {
		log.Fatal(err)
	}
	defer null.Close()
	files := make([]any, 300)
	for i := range files {
		files[i] = null
	}
	go func() {
		if err := w.WriteMsg([]byte("three hundred"), files...); err != nil {
			log.Print(err)
		}
	}()

	data, got, err := r.ReadMsg()
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range got {
		f.Close() // the reader owns what it received
	}
	fmt.Printf("%s: %d files\n", data, len(got))
	// Output: three hundred: 300 files
}

// A Listener on a socket file only its owner can reach (0600 by default),
// accepting only peers of the listed UIDs.
func ExampleListenConfig() {
	dir, err := os.MkdirTemp("", "fdsend-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "helper.sock")

	lc := fdsend.ListenConfig{AllowUIDs: []int{os.Getuid()}}
	l, err := lc.Listen(path)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close() // removes the socket file
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		f, err := os.Open(os.DevNull)
		if err != nil {
			log.Print(err)
			return
		}
		defer f.Close()
		c.WriteMsg([]byte("an open file for you"), f)
	}()

	c, err := fdsend.Dial(path)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	data, files, err := c.ReadMsg()
	if err != nil {
		log.Fatal(err)
	}
	defer files[0].Close()
	st, _ := os.Stat(path)
	fmt.Printf("%s (%d file); socket mode %v\n", data, len(files), st.Mode().Perm())
	// Output: an open file for you (1 file); socket mode -rw-------
}

// PeerCred tells who is at the other end of a Unix socket.
func ExamplePeerCred() {
	a, b, err := fdsend.Socketpair(syscall.SOCK_STREAM)
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	cred, err := fdsend.PeerCred(b)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cred.PID == os.Getpid(), cred.UID == os.Getuid())
	// Output: true true
}

// Descriptors received as numbers are closed with one call: close_range(2)
// for each run of consecutive numbers, where the kernel has it.
func ExampleCloseFDs() {
	a, b, err := fdsend.Socketpair(syscall.SOCK_SEQPACKET)
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		log.Fatal(err)
	}
	defer null.Close()
	files := []any{null, null, null, null, null, null, null, null}
	if _, err := fdsend.Send(a, []byte("eight"), files...); err != nil {
		log.Fatal(err)
	}

	buf := make([]byte, 16)
	fds := make([]int, 16)
	_, nfds, _, err := fdsend.RecvMsg(b, buf, fds, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("received", nfds)
	fmt.Println(fdsend.CloseFDs(fds[:nfds]))
	// Output:
	// received 8
	// <nil>
}
