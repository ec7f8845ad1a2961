package spawn_test

import (
	"log"
	"net"
	"os"

	"github.com/fdsend/fdsend/activation"
	"github.com/fdsend/fdsend/activation/spawn"
)

// Start a child with a listening socket as descriptor 3, named "http", the
// way systemd would: the child may be in any language.
func ExampleCommand() {
	l, err := net.Listen("tcp", ":8080")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	cmd, err := spawn.Command([]spawn.NamedFile{{Name: "http", File: l}},
		"python3", "-c", "import socket; s = socket.socket(fileno=3); c, _ = s.accept(); c.sendall(b'hi')")
	if err != nil {
		log.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	err = cmd.Start()
	// The child has its own descriptors now: close the Cmd's duplicates.
	for _, f := range cmd.ExtraFiles {
		f.Close()
	}
	if err != nil {
		log.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		log.Fatal(err)
	}
}

// Replace this process with another program that takes over its listening
// socket, keeping the PID (so a supervisor tracking it sees no change).
func ExampleExec() {
	l, err := activation.ListenOrInherit("http", "tcp", ":8080")
	if err != nil {
		log.Fatal(err)
	}
	err = spawn.Exec([]spawn.NamedFile{{Name: "http", File: l}},
		"/usr/local/bin/server-v2", []string{"server-v2", "--serve"}, nil)
	log.Fatal(err) // Exec returns only on error
}
