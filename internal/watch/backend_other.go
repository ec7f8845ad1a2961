//go:build !linux

package watch

// startBackend polls: systems other than Linux have no inotify, and
// kqueue (the BSDs, macOS) needs a descriptor per watched file, which a
// source tree can exhaust; a walk every PollInterval is enough for a
// development loop.
func startBackend(w *Watcher, roots []root, opts *Options) error {
	return startPoller(w, roots, opts)
}
