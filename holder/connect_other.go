//go:build !linux

package holder

import (
	"time"

	"github.com/fdsend/fdsend"
)

// connectQueued connects to path, retrying while the backlog is full: these
// systems do not queue a blocking connector on a Unix socket.
func connectQueued(path string, wait time.Duration) (*fdsend.Conn, error) {
	return connectRetry(path, wait)
}
