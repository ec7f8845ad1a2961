//go:build darwin || freebsd || netbsd || openbsd

package notify

const (
	supported    = true
	haveAbstract = false
	maxPathLen   = 104 // sizeof(sun_path)
)
