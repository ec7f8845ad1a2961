//go:build linux

package fdsend

// SetRefusedHook lets tests see the peers a Listener refuses.
func (l *Listener) SetRefusedHook(f func(Cred, error)) { l.refused = f }
