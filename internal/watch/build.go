package watch

import (
	"errors"
	"io"
	"sync"
	"time"
)

// DefaultOutputLimit is how much of a build's output a Result keeps (the
// end of it) when Build.OutputLimit is zero.
const DefaultOutputLimit = 64 << 10

// DefaultKillDelay is how long a cancelled build's process group has
// between SIGTERM and SIGKILL when Build.KillDelay is zero.
const DefaultKillDelay = 2 * time.Second

// drainDelay bounds the wait for the end of a build's output once its
// process group is gone: a process that left the group (setsid) may hold
// the pipe open for ever.
const drainDelay = time.Second

// ErrTimeout is the cause of a Result whose build ran out of Build.Timeout.
var ErrTimeout = errors.New("timed out")

// Build is a build command: `/bin/sh -c Command`, run in a process group
// of its own with standard input from /dev/null and standard output and
// error into one pipe, read as it comes.
//
// The build holds no descriptor of the caller's: the child gets only its
// standard streams (os/exec closes the rest, and everything here is
// close-on-exec). When the shell exits, whatever it left running in its
// process group is killed, so a finished build leaves nothing behind.
type Build struct {
	// Command is run by /bin/sh -c.
	Command string
	// Dir is the working directory; empty means the caller's.
	Dir string
	// Env is the environment; nil means the caller's.
	Env []string
	// Timeout, if positive, stops a build that runs longer, as a
	// cancellation does.
	Timeout time.Duration
	// KillDelay is how long a stopped build's process group has between
	// SIGTERM and SIGKILL. Zero means DefaultKillDelay.
	KillDelay time.Duration
	// OutputLimit is how many bytes of output a Result keeps: the last
	// ones. Zero means DefaultOutputLimit.
	OutputLimit int
	// Stream, if not nil, also gets the output as it comes (the
	// launcher's standard error, say). A write error there is ignored.
	Stream io.Writer
}

// Result is how a build ended.
type Result struct {
	// Err is nil when the command exited with status 0. Otherwise it is
	// an *exec.ExitError (it exited non-zero or was killed by a signal),
	// the error that kept it from starting, the context's cause if the
	// context was done (context.Canceled, say), or an error wrapping
	// ErrTimeout if Build.Timeout ran out.
	Err error
	// ExitCode is the command's exit status, or -1 if it did not exit on
	// its own (killed, stopped, never started).
	ExitCode int
	// Output holds the end of the command's standard output and error,
	// interleaved as written; Dropped counts the bytes before it that
	// were not kept.
	Output  []byte
	Dropped int64
	// Duration is how long the build ran.
	Duration time.Duration
}

// OK reports whether the build succeeded.
func (r *Result) OK() bool { return r.Err == nil }

// tail keeps the last limit bytes written to it, and copies them to
// stream as they come.
type tail struct {
	mu      sync.Mutex
	limit   int
	buf     []byte
	dropped int64
	stream  io.Writer
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stream != nil {
		t.stream.Write(p) // the output is kept whether or not this works
	}
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.limit; over > 0 && len(t.buf) >= 2*t.limit {
		t.dropped += int64(over)
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) result() ([]byte, int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b, d := t.buf, t.dropped
	if over := len(b) - t.limit; over > 0 {
		b, d = b[over:], d+int64(over)
	}
	return append([]byte(nil), b...), d
}
