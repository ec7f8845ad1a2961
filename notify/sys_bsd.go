//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package notify

const (
	supported    = true
	haveAbstract = false
	maxPathLen   = 104 // sizeof(sun_path)
)
