//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package spawn_test

import (
	"log"
	"net"
	"os"

	"github.com/fdsend/fdsend/activation/spawn"
)

// Hand a listening socket to a child as descriptor 3, named "http", the way
// systemd would. The child here is a shell that shows what it was given; a
// server in any language would accept on descriptor 3 instead. $$ is the
// shell's PID: the trampoline execs it in place, so LISTEN_PID names it.
func Example() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	cmd, err := spawn.Command([]spawn.NamedFile{{Name: "http", File: l}},
		"sh", "-c", `echo "LISTEN_FDS=$LISTEN_FDS LISTEN_FDNAMES=$LISTEN_FDNAMES"; [ "$LISTEN_PID" = $$ ] && echo "LISTEN_PID is the shell's own"`)
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
	// Output:
	// LISTEN_FDS=1 LISTEN_FDNAMES=http
	// LISTEN_PID is the shell's own
}
