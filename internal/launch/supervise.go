package launch

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Supervisor runs one child at a time and starts it again as its Restart
// policy says.
type Supervisor struct {
	// Restart says whether a child that has exited is started again.
	Restart Restart
	// Backoff paces restarts: after a clean exit at most one start per
	// Backoff.Pace, after quick failures an exponential backoff.
	Backoff Backoff
	// NewCmd builds the command for each start. Every descriptor the command
	// is to receive must stay open until release is called, which the
	// Supervisor does right after Start (whether or not it succeeded);
	// release may close the caller's copies then. release may be nil.
	NewCmd func() (cmd *exec.Cmd, release func(), err error)
	// Name names the child in log lines (cmd.Path if empty).
	Name string
	// Logf, if not nil, receives one line for each start, exit and restart.
	Logf func(format string, args ...any)
}

func (s *Supervisor) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// Run starts the child and supervises it until it is over: the child exits
// and the policy does not restart it, or a stop signal (IsStop) arrives. It
// returns the status to exit with: the last child's ExitStatus, or 128+N
// when stop signal N arrives while no child is running (waiting to
// restart).
//
// The pause before a restart comes from Backoff, but is at least 100 ms
// when the child died of SIGINT or SIGTERM: a Ctrl-C reaches the whole
// process group, and the launcher's own copy may arrive just after the
// child's death; it then stops Run instead of killing a fresh child.
//
// Every signal received on signals is forwarded to the running child; one
// that arrives while none runs is dropped (and logged), except that a stop
// signal then ends Run. An error is returned only when the very first start
// fails: later start failures count as quick failures and are retried
// after the backoff delay, so a binary that is being rebuilt can be missing
// for a moment.
func (s *Supervisor) Run(signals <-chan os.Signal) (int, error) {
	if s.NewCmd == nil {
		return 0, errors.New("launch: Supervisor.NewCmd is nil")
	}
	for first := true; ; first = false {
		cmd, err := s.start()
		if err != nil {
			if first {
				return 0, err
			}
			s.logf("start failed: %v", err)
			if status, stop := s.pause(s.Backoff.Delay(0, true), signals); stop {
				return status, nil
			}
			continue
		}
		started := time.Now()
		name := s.Name
		if name == "" {
			name = cmd.Path
		}
		s.logf("started %s as pid %d", name, cmd.Process.Pid)
		status, stopped := s.wait(cmd, signals)
		lived := time.Since(started)
		if stopped {
			s.logf("pid %d exited with status %d; stopping", cmd.Process.Pid, status)
			return status, nil
		}
		if !s.Restart.restarts(status) {
			s.logf("pid %d exited with status %d after %v", cmd.Process.Pid, status, lived.Round(time.Millisecond))
			return status, nil
		}
		d := s.Backoff.Delay(lived, status != 0)
		if diedOfStop(status) && d < stopGrace {
			// Ctrl-C reaches the whole process group at once: give our
			// own SIGINT the time to arrive before starting a new child.
			d = stopGrace
		}
		s.logf("pid %d exited with status %d after %v; restarting in %v", cmd.Process.Pid, status, lived.Round(time.Millisecond), d.Round(time.Millisecond))
		if status, stop := s.pause(d, signals); stop {
			return status, nil
		}
	}
}

// stopGrace is the least pause before restarting a child that died of
// SIGINT or SIGTERM, which may have been sent to the launcher too.
const stopGrace = 100 * time.Millisecond

// diedOfStop reports whether status says a stop signal killed the child.
func diedOfStop(status int) bool {
	return status == 128+int(syscall.SIGINT) || status == 128+int(syscall.SIGTERM)
}

// start builds and starts one child.
func (s *Supervisor) start() (*exec.Cmd, error) {
	cmd, release, err := s.NewCmd()
	if err != nil {
		if release != nil {
			release()
		}
		return nil, err
	}
	err = cmd.Start()
	if release != nil {
		release()
	}
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	return cmd, nil
}

// wait waits for cmd to exit, forwarding signals to it. stopped reports
// whether a stop signal was forwarded meanwhile.
func (s *Supervisor) wait(cmd *exec.Cmd, signals <-chan os.Signal) (status int, stopped bool) {
	done := make(chan struct{})
	go func() {
		cmd.Wait() // the status is in cmd.ProcessState
		close(done)
	}()
	for {
		select {
		case sig := <-signals:
			if IsStop(sig) {
				stopped = true
			}
			if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
				s.logf("forwarding %v to pid %d: %v", sig, cmd.Process.Pid, err)
			}
		case <-done:
			return ExitStatus(cmd.ProcessState), stopped
		}
	}
}

// pause waits d while no child runs. A stop signal ends it: stop is true
// and status is 128+N.
func (s *Supervisor) pause(d time.Duration, signals <-chan os.Signal) (status int, stop bool) {
	if d <= 0 {
		// Still honour a stop signal that is already pending.
		select {
		case sig := <-signals:
			if IsStop(sig) {
				return signalStatus(sig), true
			}
			s.logf("%v: no child running; dropped", sig)
		default:
		}
		return 0, false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case sig := <-signals:
			if IsStop(sig) {
				return signalStatus(sig), true
			}
			s.logf("%v: no child running; dropped", sig)
		case <-t.C:
			return 0, false
		}
	}
}
