package launch

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Listener is a listening socket an Acceptor accepts connections on.
type Listener struct {
	// File is the listening socket. The caller keeps ownership; the
	// Acceptor works on a duplicate of it and closes that when Run returns.
	File *os.File
	// Name is passed to NewCmd with each connection from this socket.
	Name string
}

// Acceptor accepts connections on its listeners and starts one child per
// connection, as inetd does (systemd's Accept=yes).
type Acceptor struct {
	Listeners []Listener
	// NewCmd builds the command for one connection. conn is the accepted
	// socket, close-on-exec; the Acceptor closes it right after Start, and
	// calls release (if not nil) then too, whether or not Start succeeded.
	// name is the Name of the listener it came from.
	NewCmd func(conn *os.File, name string) (cmd *exec.Cmd, release func(), err error)
	// Logf, if not nil, receives one line per connection and exit.
	Logf func(format string, args ...any)
}

func (a *Acceptor) logf(format string, args ...any) {
	if a.Logf != nil {
		a.Logf(format, args...)
	}
}

type accepted struct {
	conn *os.File
	name string
	peer string
}

type exited struct {
	cmd    *exec.Cmd
	status int
}

// Run accepts connections until a stop signal (IsStop) arrives. Every
// signal is forwarded to every running child. After a stop signal Run stops
// accepting, waits for the running children, and returns the status of the
// last one to exit, or 128+N if none was running. Connections accepted
// meanwhile are closed.
//
// A listener that is not a stream or seqpacket socket (net.FileListener
// refuses it) is an error before anything is accepted. A listener whose
// accept fails for good (a socket that is not listening, say) is logged and
// dropped; when none is left Run stops as after a stop signal, with status 1
// if no child is running then.
func (a *Acceptor) Run(signals <-chan os.Signal) (int, error) {
	if a.NewCmd == nil {
		return 0, errors.New("launch: Acceptor.NewCmd is nil")
	}
	lns := make([]net.Listener, 0, len(a.Listeners))
	closeAll := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	for i, l := range a.Listeners {
		ln, err := net.FileListener(l.File)
		if err != nil {
			closeAll()
			return 0, fmt.Errorf("listener %d (%s): cannot accept on it: %w", i, l.Name, err)
		}
		lns = append(lns, ln)
	}

	conns := make(chan accepted)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	var liveMu sync.Mutex
	live := len(lns)
	listenersGone := make(chan struct{})
	for i, ln := range lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.acceptLoop(ln, a.Listeners[i].Name, conns, quit)
			liveMu.Lock()
			live--
			if live == 0 {
				close(listenersGone)
			}
			liveMu.Unlock()
		}()
	}
	stopAccepting := func() {
		select {
		case <-quit:
			return
		default:
		}
		close(quit)
		closeAll()
		wg.Wait()
	}
	defer stopAccepting()

	children := map[*exec.Cmd]struct{}{}
	exits := make(chan exited)
	status, stopping := -1, false
	var stopSig os.Signal
	for {
		if stopping && len(children) == 0 {
			if status < 0 {
				if stopSig != nil {
					status = signalStatus(stopSig)
				} else {
					status = 1
				}
			}
			return status, nil
		}
		select {
		case c := <-conns:
			cmd, release, err := a.NewCmd(c.conn, c.name)
			if err == nil {
				err = cmd.Start()
			}
			if release != nil {
				release()
			}
			c.conn.Close()
			if err != nil {
				a.logf("connection from %s on %s: starting child: %v", c.peer, c.name, err)
				continue
			}
			a.logf("connection from %s on %s: pid %d", c.peer, c.name, cmd.Process.Pid)
			children[cmd] = struct{}{}
			go func() {
				cmd.Wait()
				exits <- exited{cmd, ExitStatus(cmd.ProcessState)}
			}()
		case e := <-exits:
			delete(children, e.cmd)
			status = e.status
			a.logf("pid %d exited with status %d", e.cmd.Process.Pid, e.status)
		case sig := <-signals:
			for cmd := range children {
				if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
					a.logf("forwarding %v to pid %d: %v", sig, cmd.Process.Pid, err)
				}
			}
			if IsStop(sig) && !stopping {
				stopping, stopSig, status = true, sig, -1
				stopAccepting()
			}
		case <-listenersGone:
			listenersGone = nil
			if !stopping {
				a.logf("no listener left; waiting for %d children", len(children))
				stopping, status = true, -1
				stopAccepting()
			}
		}
	}
}

// acceptLoop accepts on ln and hands each connection to the main loop
// until quit is closed or accept fails for good.
func (a *Acceptor) acceptLoop(ln net.Listener, name string, conns chan<- accepted, quit <-chan struct{}) {
	for {
		c, err := ln.Accept()
		if err != nil {
			select {
			case <-quit:
				return
			default:
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) || errors.Is(err, syscall.ECONNABORTED) {
				a.logf("accept on %s: %v; retrying", name, err)
				time.Sleep(100 * time.Millisecond)
				continue
			}
			a.logf("accept on %s: %v; no longer accepting there", name, err)
			return
		}
		peer := "?"
		if ra := c.RemoteAddr(); ra != nil && ra.String() != "" {
			peer = ra.String()
		}
		fc, ok := c.(interface{ File() (*os.File, error) })
		if !ok {
			a.logf("accept on %s: %T has no descriptor; closed", name, c)
			c.Close()
			continue
		}
		f, err := fc.File()
		c.Close()
		if err != nil {
			a.logf("accept on %s: %v; connection closed", name, err)
			continue
		}
		select {
		case conns <- accepted{conn: f, name: name, peer: peer}:
		case <-quit:
			f.Close()
			return
		}
	}
}
