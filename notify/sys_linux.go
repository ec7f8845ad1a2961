package notify

const (
	supported    = true
	haveAbstract = true
	maxPathLen   = 108 // sizeof(sun_path)
)
