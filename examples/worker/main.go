// Command worker shows a parent that accepts TCP connections and hands each
// one to a worker process over an fdsend.Conn; the worker answers on it.
//
//	go run ./examples/worker
//
// The parent listens on 127.0.0.1 (a free port), starts a copy of itself as
// the worker, connects three clients to itself and prints their answers.
package main

import (
	"bufio"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"syscall"

	"github.com/fdsend/fdsend"
)

func main() {
	log.SetFlags(0)
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		worker()
		return
	}
	parent()
}

func parent() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()

	// A stream pair: one end is our Conn to the worker, the other its fd 3.
	mine, theirs, err := fdsend.Socketpair(syscall.SOCK_STREAM)
	if err != nil {
		log.Fatal(err)
	}
	toWorker := fdsend.NewConn(mine)
	defer toWorker.Close()
	theirsFile, err := theirs.File()
	if err != nil {
		log.Fatal(err)
	}
	theirs.Close()
	exe, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	cmd := exec.Command(exe, "worker")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{theirsFile}
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	theirsFile.Close()

	// Serve: every accepted connection goes to the worker, whole, with a
	// message saying where it came from. Our copy is closed once sent.
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			err = toWorker.WriteMsg([]byte(c.RemoteAddr().String()), c)
			c.Close()
			if err != nil {
				log.Print(err)
				return
			}
		}
	}()

	for i := range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			log.Fatal(err)
		}
		fmt.Fprintf(c, "client %d\n", i)
		answer, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("client %d got: %s", i, answer)
	}
	toWorker.Close() // the worker sees io.EOF and exits
	if err := cmd.Wait(); err != nil {
		log.Fatal(err)
	}
}

func worker() {
	f3 := os.NewFile(3, "parent")
	sock, err := net.FileConn(f3) // a duplicate registered with the poller
	f3.Close()
	if err != nil {
		log.Fatal(err)
	}
	fromParent := fdsend.NewConn(sock.(*net.UnixConn))
	defer fromParent.Close()
	for {
		from, files, err := fromParent.ReadMsg()
		if err != nil {
			return // io.EOF: the parent is done
		}
		for _, f := range files {
			c, err := net.FileConn(f) // a pollable net.Conn of our own
			f.Close()
			if err != nil {
				log.Print(err)
				continue
			}
			go answer(c, string(from))
		}
	}
}

func answer(c net.Conn, from string) {
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return
	}
	fmt.Fprintf(c, "worker pid %d answered %q from %s\n", os.Getpid(), line[:len(line)-1], from)
}
