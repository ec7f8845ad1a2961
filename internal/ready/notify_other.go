//go:build !linux

package ready

import (
	"errors"
	"fmt"
)

const notifySupported = false

// Start fails: only Linux tells the receiver of a datagram who sent it.
func (p *Notify) Start(gen int) (Check, error) {
	return nil, fmt.Errorf("ready: notify: %w", errors.ErrUnsupported)
}
