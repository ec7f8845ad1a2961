// Command demo shows fdsend between two real processes: the parent opens a
// file and a pipe, starts a copy of itself, and sends it both descriptors
// with a message over a Unix socket; the child reads through the descriptors
// it received and prints what it got.
//
//	go run ./examples/demo
package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"syscall"

	"github.com/fdsend/fdsend"
)

func main() {
	log.SetFlags(0)
	if len(os.Args) > 1 && os.Args[1] == "child" {
		child()
		return
	}
	parent()
}

func parent() {
	// A connected pair: we keep one end, the child gets the other as fd 3.
	mine, theirs, err := fdsend.Socketpair(syscall.SOCK_STREAM)
	if err != nil {
		log.Fatal(err)
	}
	defer mine.Close()
	theirsFile, err := theirs.File()
	if err != nil {
		log.Fatal(err)
	}
	theirs.Close()

	exe, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	cmd := exec.Command(exe, "child")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{theirsFile}
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	theirsFile.Close()

	// Something to send: a file only the parent opened, and a pipe.
	f, err := os.CreateTemp("", "fdsend-demo-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	fmt.Fprintf(f, "a line written by the parent (pid %d) into %s\n", os.Getpid(), f.Name())
	f.Seek(0, io.SeekStart)
	r, w, err := os.Pipe()
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()

	msg := fmt.Sprintf("hello from pid %d: a file and the read end of a pipe", os.Getpid())
	if _, err := fdsend.Send(mine, []byte(msg), f, r); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("parent (pid %d): sent %q with 2 descriptors\n", os.Getpid(), msg)
	fmt.Fprintf(w, "and this came down the pipe after the send\n")
	w.Close()
	if err := cmd.Wait(); err != nil {
		log.Fatal(err)
	}
}

func child() {
	sock := os.NewFile(3, "socket")
	defer sock.Close()
	buf := make([]byte, 256)
	n, files, err := fdsend.Recv(sock, buf, 8)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("child (pid %d): received %q with %d descriptors\n", os.Getpid(), buf[:n], len(files))
	for i, f := range files {
		data, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("child: descriptor %d reads: %s", i, data)
	}
}
