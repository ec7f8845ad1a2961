package watch

import (
	"context"
	"sort"
)

// Loop builds now and again after each change w reports, until ctx is done
// or w stops, and passes each build that ran to its end to done, with the
// changes that led to it (none for the first build). done runs on Loop's
// goroutine: changes seen meanwhile wait in w, and the next build starts
// after done returns, so done may take its time (reload and wait for
// readiness).
//
// A change during a build stops that build (its process group is killed,
// see Build.Run) and starts a new one: the one running was building
// sources already out of date, and its result would be replaced at once.
// A stopped build is not passed to done.
//
// A build that writes into the watched paths (a binary, generated code)
// reports its own change and builds again for ever: put its output
// elsewhere or among Options.Ignore.
//
// Loop returns ctx's error when ctx is done, or w.Err() when w stopped
// (nil after w.Close).
func Loop(ctx context.Context, w *Watcher, b *Build, done func(Result, Event)) error {
	var why Event
	for {
		bctx, cancel := context.WithCancel(ctx)
		results := make(chan Result, 1)
		go func() { results <- b.Run(bctx) }()
		select {
		case res := <-results:
			cancel()
			done(res, why)
			why = Event{}
			select {
			case ev, ok := <-w.Events():
				if !ok {
					return w.Err()
				}
				why = ev
			case <-ctx.Done():
				return ctx.Err()
			}
		case ev, ok := <-w.Events():
			cancel()
			<-results
			if !ok {
				return w.Err()
			}
			why = merge(why, ev)
		case <-ctx.Done():
			cancel()
			<-results
			return ctx.Err()
		}
	}
}

// merge joins two Events into one, for a build that follows both.
func merge(a, b Event) Event {
	seen := make(map[string]bool)
	var paths []string
	for _, p := range append(a.Paths, b.Paths...) {
		if !seen[p] {
			seen[p] = true
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	m := Event{Paths: paths, More: a.More + b.More, Rescan: a.Rescan || b.Rescan}
	if len(m.Paths) > maxPaths {
		m.More += len(m.Paths) - maxPaths
		m.Paths = m.Paths[:maxPaths]
	}
	m.Errs = append(append([]error(nil), a.Errs...), b.Errs...)
	return m
}
