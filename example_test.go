//go:build linux

package fdsend_test

import (
	"fmt"
	"log"
	"os"
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
