package notify

const (
	supported    = true
	haveAbstract = false
	maxPathLen   = 108 // sizeof(sun_path)
)
