//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package holder

import "github.com/fdsend/fdsend"

// hungUp cannot tell on this system.
func hungUp(c *fdsend.Conn) bool { return false }

// openLimit is unknown on this system.
func openLimit() int { return 0 }
