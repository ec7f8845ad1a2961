package launch

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

// Restart is a restart policy, as in systemd's Restart=.
type Restart int

const (
	// RestartNo never restarts: the child's exit ends the supervisor.
	RestartNo Restart = iota
	// RestartOnFailure restarts a child that exited with a non-zero status
	// or was killed by a signal.
	RestartOnFailure
	// RestartAlways restarts the child however it exited.
	RestartAlways
)

// ParseRestart reads a policy: "no", "on-failure" or "always".
func ParseRestart(s string) (Restart, error) {
	switch s {
	case "no":
		return RestartNo, nil
	case "on-failure":
		return RestartOnFailure, nil
	case "always":
		return RestartAlways, nil
	}
	return 0, fmt.Errorf("restart policy %q: want no, on-failure or always: %w", s, syscall.EINVAL)
}

func (r Restart) String() string {
	switch r {
	case RestartNo:
		return "no"
	case RestartOnFailure:
		return "on-failure"
	case RestartAlways:
		return "always"
	}
	return fmt.Sprintf("Restart(%d)", int(r))
}

// restarts reports whether a child that exited with status is started
// again.
func (r Restart) restarts(status int) bool {
	switch r {
	case RestartAlways:
		return true
	case RestartOnFailure:
		return status != 0
	}
	return false
}

// Default pacing and backoff: a child that exits cleanly is started again
// at once, but never sooner than Pace after its previous start (systemd's
// default RestartSec), so that one that exits 0 at once does not take a
// whole core; a child that fails within Quick of starting waits Min before
// its next start, then twice as long each time it fails quickly again, up
// to Max.
const (
	DefaultPace     = 100 * time.Millisecond
	DefaultMinDelay = 100 * time.Millisecond
	DefaultMaxDelay = 5 * time.Second
	DefaultQuick    = time.Second
)

// Backoff computes the pause before a restart. The zero value uses the
// defaults.
type Backoff struct {
	Pace     time.Duration // least time from a start to the next after a clean exit
	Min, Max time.Duration // first and largest pause after a quick failure
	Quick    time.Duration // a failure sooner than this after the start is "quick"
	next     time.Duration
}

// Delay returns how long to wait before starting a child again, given how
// long the last one lived and whether it failed. A clean exit restarts at
// once, or after what is left of Pace since the start if it lived less
// than that: clean exits are paced, never backed off, however many come in
// a row. A quick failure waits the current delay and doubles it for next
// time (up to Max); a failure after a longer run restarts at once. Both a
// clean exit and a longer run reset the delay to Min.
func (b *Backoff) Delay(lived time.Duration, failed bool) time.Duration {
	pace, lo, hi, quick := b.Pace, b.Min, b.Max, b.Quick
	if pace <= 0 {
		pace = DefaultPace
	}
	if lo <= 0 {
		lo = DefaultMinDelay
	}
	if hi < lo {
		hi = max(DefaultMaxDelay, lo)
	}
	if quick <= 0 {
		quick = DefaultQuick
	}
	if !failed {
		b.next = lo
		return max(pace-lived, 0)
	}
	if lived >= quick {
		b.next = lo
		return 0
	}
	d := max(b.next, lo)
	b.next = min(2*d, hi)
	return d
}

// ExitStatus returns a shell's view of how a process ended: its exit code,
// or 128+N if signal N killed it. A nil state gives 1.
func ExitStatus(ps *os.ProcessState) int {
	if ps == nil {
		return 1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	if c := ps.ExitCode(); c >= 0 {
		return c
	}
	return 1
}

// signalStatus is the status for a launcher stopped by sig with no child to
// report: 128+N.
func signalStatus(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 1
}

// IsStop reports whether sig ends supervision: SIGTERM or SIGINT. After one
// of these no child is started again.
func IsStop(sig os.Signal) bool {
	return sig == syscall.SIGTERM || sig == os.Interrupt
}
