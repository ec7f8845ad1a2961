//go:build !linux

package holder

import (
	"errors"
	"syscall"
	"time"

	"github.com/fdsend/fdsend"
)

// connectQueued connects to path, retrying while the backlog is full: these
// systems do not queue a blocking connector on a Unix socket.
func connectQueued(path string, wait time.Duration) (*fdsend.Conn, error) {
	return connectRetry(path, wait)
}

// connectRetry is connectQueued where the kernel cannot queue a connector:
// it dials again after short, growing pauses while the backlog is full.
func connectRetry(path string, wait time.Duration) (*fdsend.Conn, error) {
	deadline := time.Now().Add(wait)
	pause := 2 * time.Millisecond
	for {
		conn, err := fdsend.Dial(path)
		if err == nil || !errors.Is(err, syscall.EAGAIN) {
			return conn, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, err
		}
		time.Sleep(min(pause, left))
		pause = min(2*pause, 100*time.Millisecond)
	}
}
