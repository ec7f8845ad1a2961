//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package launch

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// Init is what a launcher does when it is a container's first process,
// PID 1, as tini and dumb-init do: it starts the launcher proper as its only
// child, reaps every process that ends up its child (orphans are
// re-parented to PID 1), passes the signals it gets on to the launcher, and
// returns the launcher's status when the launcher exits.
//
// Init does all the waiting in its own process: every child it has is
// either the launcher or an orphan, so it waits for any of them with
// wait4(-1) and can steal no one's status. The launcher proper, PID 2, keeps
// its own os/exec Wait calls for the children it starts, untouched; reaping
// in the same process as those would have to know, at every instant, which
// PIDs os/exec is about to wait for. (PR_SET_CHILD_SUBREAPER would make a
// launcher that is not PID 1 collect orphans too, with the same problem; it
// is not used: outside a PID namespace the system's init or the service
// manager reaps them.)
type Init struct {
	// NewCmd builds the command of the launcher proper. Every descriptor it
	// is to receive must stay open until release (which may be nil) is
	// called, right after Start. Init waits for it with wait4, never with
	// cmd.Wait: the Cmd must not need Wait to copy its output (Stdin,
	// Stdout and Stderr nil or *os.File).
	NewCmd func() (cmd *exec.Cmd, release func(), err error)
	// Logf, if not nil, receives a line when the launcher starts.
	Logf func(format string, args ...any)
}

// initForwarded are the signals Init passes on: every signal a process may
// be sent to ask something of it. Not SIGCHLD (Init's own business), nor
// the ones the Go runtime uses or that only a fault raises.
var initForwarded = []os.Signal{
	syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGABRT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGALRM, syscall.SIGTERM,
	syscall.SIGCONT, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU,
	syscall.SIGWINCH, syscall.SIGXCPU, syscall.SIGXFSZ, syscall.SIGVTALRM,
}

// Run starts the launcher and returns its exit status (128+N if signal N
// killed it) once it has exited. An error is returned, and nothing left
// running, only if it cannot be started.
func (in *Init) Run() (int, error) {
	if in.NewCmd == nil {
		return 0, errors.New("launch: Init.NewCmd is nil")
	}
	// Both are set up before the start, so that nothing is missed: a
	// SIGCHLD still pending in chld stands for every exit since the last
	// reaping loop, as that loop reaps until none is left.
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	defer signal.Stop(chld)
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, initForwarded...)
	defer signal.Stop(sigs)

	cmd, release, err := in.NewCmd()
	if err == nil {
		err = cmd.Start()
	}
	if release != nil {
		release()
	}
	if err != nil {
		return 0, fmt.Errorf("starting the launcher as PID 1's child: %w", err)
	}
	pid := cmd.Process.Pid
	if in.Logf != nil {
		in.Logf("running as PID 1: the launcher is pid %d; orphans are reaped here and signals passed on to it", pid)
	}
	for {
		select {
		case sig := <-sigs:
			// Through the process's pidfd where there is one: never a
			// reused PID once the launcher is reaped.
			if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) && in.Logf != nil {
				in.Logf("passing %v to pid %d: %v", sig, pid, err)
			}
		case <-chld:
			if status, done := reapAll(pid); done {
				return status, nil
			}
		}
	}
}

// reapAll reaps every child that has exited, and reports main's status if
// main was among them.
func reapAll(main int) (status int, done bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return status, done // ECHILD: none left; 0: none exited
		}
		if pid == main {
			status, done = waitStatus(ws), true
		}
	}
}

// waitStatus is a shell's view of ws: the exit code, or 128+N.
func waitStatus(ws syscall.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return 1
}
