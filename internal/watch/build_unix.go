//go:build unix

package watch

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Run runs the build and returns how it ended; it never returns before
// the build's process group is gone. When ctx is done (a newer change
// made this build pointless, say) or Timeout runs out, the whole process
// group gets SIGTERM, then SIGKILL after KillDelay, and Result.Err is the
// context's cause.
func (b *Build) Run(ctx context.Context) Result {
	started := time.Now()
	limit := b.OutputLimit
	if limit <= 0 {
		limit = DefaultOutputLimit
	}
	killDelay := b.KillDelay
	if killDelay <= 0 {
		killDelay = DefaultKillDelay
	}
	out := &tail{limit: limit, stream: b.Stream}
	res := func(err error, code int) Result {
		o, d := out.result()
		return Result{Err: err, ExitCode: code, Output: o, Dropped: d, Duration: time.Since(started)}
	}

	r, w, err := os.Pipe()
	if err != nil {
		return res(fmt.Errorf("build: %w", err), -1)
	}
	cmd := exec.Command("/bin/sh", "-c", b.Command)
	cmd.Dir = b.Dir
	cmd.Env = b.Env
	cmd.Stdout = w
	cmd.Stderr = w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return res(err, -1)
	}
	pid := cmd.Process.Pid
	copied := make(chan struct{})
	go func() {
		io.Copy(out, r)
		close(copied)
	}()

	if b.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, b.Timeout,
			fmt.Errorf("%w after %v", ErrTimeout, b.Timeout))
		defer cancel()
	}
	exited, reap := waitExit(cmd)
	var stopped error
	select {
	case <-exited:
	case <-ctx.Done():
		stopped = context.Cause(ctx)
		killGroup(pid, syscall.SIGTERM)
		t := time.NewTimer(killDelay)
		select {
		case <-exited:
		case <-t.C:
			killGroup(pid, syscall.SIGKILL)
			<-exited
		}
		t.Stop()
	}
	// Whatever the shell left in its group goes with it. On Linux the
	// shell is not reaped yet, so the group's id cannot have been reused.
	killGroup(pid, syscall.SIGKILL)
	waitErr := reap()

	t := time.NewTimer(drainDelay)
	select {
	case <-copied:
	case <-t.C:
	}
	t.Stop()
	r.Close()
	<-copied

	code := cmd.ProcessState.ExitCode()
	if stopped != nil {
		return res(stopped, code)
	}
	return res(waitErr, code) // nil, or an *exec.ExitError
}

// killGroup sends sig to the process group led by pid, if any is left.
func killGroup(pid int, sig syscall.Signal) {
	syscall.Kill(-pid, sig) // ESRCH: the group is gone already
}
