//go:build darwin || dragonfly || freebsd || illumos || netbsd || openbsd

package spawn

import "os"

// cloexecFrom makes every descriptor numbered low or above close-on-exec.
func cloexecFrom(low int) error { return cloexecScan(low, "/dev/fd") }

// selfExe returns the path of this process's executable.
func selfExe() (string, error) { return os.Executable() }
