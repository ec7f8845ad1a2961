package spawn

import (
	"math"
	"os"

	"golang.org/x/sys/unix"
)

// closeRangeCloexec is CLOSE_RANGE_CLOEXEC (Linux 5.11): mark the range
// close-on-exec instead of closing it.
const closeRangeCloexec = 1 << 2

// cloexecFrom makes every descriptor numbered low or above close-on-exec.
func cloexecFrom(low int) error {
	if err := unix.CloseRange(uint(low), math.MaxUint32, closeRangeCloexec); err == nil {
		return nil
	}
	return cloexecScan(low, "/proc/self/fd")
}

// selfExe returns a path that execs this process's own executable, even if
// the file has been replaced or removed since it started.
func selfExe() (string, error) {
	const p = "/proc/self/exe"
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return os.Executable()
}
