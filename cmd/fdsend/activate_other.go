//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package main

// run reports that socket activation does not exist on this system.
func (cfg *activateConfig) run() int {
	logf("not supported on this system")
	return 1
}
