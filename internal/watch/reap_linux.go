package watch

import (
	"os/exec"

	"golang.org/x/sys/unix"
)

// waitExit returns a channel closed when cmd's process has exited, and a
// function that reaps it then and returns what cmd.Wait says. Until then
// the process is left a zombie (waitid with WNOWAIT), so the id of its
// process group cannot be reused under a signal sent to it.
func waitExit(cmd *exec.Cmd) (<-chan struct{}, func() error) {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if err != unix.EINTR {
				return // on another error reap will say
			}
		}
	}()
	return ch, func() error { <-ch; return cmd.Wait() }
}
