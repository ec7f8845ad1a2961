//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package notify

import (
	"errors"
	"fmt"
)

const (
	supported    = false
	haveAbstract = false
	maxPathLen   = 0
)

func monotonicUsec() (uint64, error) {
	return 0, fmt.Errorf("notify: CLOCK_MONOTONIC: %w", errors.ErrUnsupported)
}
