package spawn_test

import (
	"log"

	"github.com/fdsend/fdsend/activation"
	"github.com/fdsend/fdsend/activation/spawn"
)

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
