// A server written with github.com/coreos/go-systemd, for the launcher's
// tests (cmd/fdsend: TestActivateReloadGoChildren): it takes its listener
// with activation.Listeners, says READY=1 with daemon.SdNotify, answers
// each connection with one line (its pid and FDSEND_GENERATION), and on
// SIGTERM stops accepting and finishes the connections it has.
package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
)

func main() {
	ls, err := activation.Listeners()
	if err != nil || len(ls) != 1 {
		fmt.Fprintln(os.Stderr, "go-systemd child: listeners:", len(ls), err)
		os.Exit(1)
	}
	l := ls[0]
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go func() { <-term; l.Close() }()
	if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		fmt.Fprintln(os.Stderr, "go-systemd child: notify:", err)
	}
	var wg sync.WaitGroup
	for {
		c, err := l.Accept()
		if err != nil {
			break
		}
		wg.Add(1)
		go func(c net.Conn) {
			defer wg.Done()
			fmt.Fprintf(c, "%d %s\n", os.Getpid(), os.Getenv("FDSEND_GENERATION"))
			c.Close()
		}(c)
	}
	wg.Wait()
}
