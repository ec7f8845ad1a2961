//go:build linux

package fdsend

// SetRefusedHook lets tests see the peers a Listener refuses.
func (l *Listener) SetRefusedHook(f func(Cred, error)) { l.refused = f }

// CloseRangeMissing reports whether CloseFDs has found close_range(2)
// unusable and closes one number at a time.
func CloseRangeMissing() bool { return closeRangeMissing.Load() }

// QueueBatches is how many batches of queued messages Conns have sent.
func QueueBatches() int64 { return queueBatches.Load() }

// SetQueueWrites turns Conn's write queue on or off.
func SetQueueWrites(on bool) { queueWrites.Store(on) }
