//go:build linux

package fdsend

// SetRefusedHook lets tests see the peers a Listener refuses.
func (l *Listener) SetRefusedHook(f func(Cred, error)) { l.refused = f }

// CloseRangeMissing reports whether CloseFDs has found close_range(2)
// unusable and closes one number at a time.
func CloseRangeMissing() bool { return closeRangeMissing.Load() }
