//go:build unix && !linux

package watch

import "os/exec"

// waitExit returns a channel closed when cmd's process has exited, and a
// function that returns what cmd.Wait said. The process is reaped as it
// exits: between that and a later signal to its group, the group's id
// could in principle be taken by a new group. Linux avoids that with
// waitid's WNOWAIT, which not every system has.
func waitExit(cmd *exec.Cmd) (<-chan struct{}, func() error) {
	ch := make(chan struct{})
	var err error
	go func() {
		err = cmd.Wait()
		close(ch)
	}()
	return ch, func() error { <-ch; return err }
}
