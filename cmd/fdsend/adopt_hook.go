//go:build fdsendtest && linux

package main

import (
	"os"
	"syscall"

	"github.com/fdsend/fdsend/procfd"
)

// In a binary built with -tags fdsendtest, FDSEND_TEST_ADOPT_KILL=STAGE
// makes fdsend adopt kill the process it adopts from at that stage of
// adoptHook ("listed", "took") and wait until it has exited, so that a
// test can end the process at an exact point of an adopt.
func init() {
	stage := os.Getenv("FDSEND_TEST_ADOPT_KILL")
	if stage == "" {
		return
	}
	adoptHook = func(at string, p *procfd.Process) {
		if at != stage {
			return
		}
		p.Signal(syscall.SIGKILL)
		p.Wait(10000)
	}
}
