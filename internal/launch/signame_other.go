//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package launch

import "os"

// sigName names a signal.
func sigName(sig os.Signal) string { return sig.String() }
