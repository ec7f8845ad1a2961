//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package spawn_test

import (
	"bufio"
	"fmt"
	"log"
	"net"
	"os"
	"syscall"

	"github.com/fdsend/fdsend"
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

// Hand a child one end of a connected socket pair as descriptor 3, named
// "ctl", and talk to it over the other end: any descriptor can be handed
// over, not only listening sockets. The child here is a shell that reads a
// line on descriptor 3 and answers on it.
func ExampleCommand() {
	ours, theirs, err := fdsend.Socketpair(syscall.SOCK_STREAM)
	if err != nil {
		log.Fatal(err)
	}
	defer ours.Close()
	cmd, err := spawn.Command([]spawn.NamedFile{{Name: "ctl", File: theirs}},
		"sh", "-c", `read -r line <&3 && echo "$LISTEN_FDNAMES got $line" >&3`)
	theirs.Close() // Command made a duplicate for the child
	if err != nil {
		log.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	// Once the child has started, the duplicates are the child's alone.
	for _, f := range cmd.ExtraFiles {
		f.Close()
	}
	fmt.Fprintln(ours, "ping")
	answer, err := bufio.NewReader(ours).ReadString('\n')
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(answer)
	if err := cmd.Wait(); err != nil {
		log.Fatal(err)
	}
	// Output: ctl got ping
}
