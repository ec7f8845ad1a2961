package watch

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// DefaultDebounce is the quiet period used when Options.Debounce is zero.
const DefaultDebounce = 200 * time.Millisecond

// DefaultPollInterval is how often the polling Watcher (systems without
// inotify) walks its trees when Options.PollInterval is zero.
const DefaultPollInterval = 500 * time.Millisecond

// maxPaths bounds Event.Paths; further paths are only counted.
const maxPaths = 64

// Options configure a Watcher.
type Options struct {
	// Paths are the directories (watched with everything under them) and
	// files (watched alone) to watch. Each must exist when New is called.
	Paths []string
	// Debounce is the quiet period: an Event is sent once no change has
	// been seen for this long. Zero means DefaultDebounce.
	Debounce time.Duration
	// Ignore holds extra patterns to ignore, in the syntax of path.Match,
	// matched against an entry's base name and against its path relative
	// to the watched directory ("*.o", "node_modules", "build/out"). An
	// ignored directory is not watched. A path named in Paths is never
	// ignored.
	Ignore []string
	// NoDefaultIgnore drops DefaultIgnore.
	NoDefaultIgnore bool
	// PollInterval is how often the polling Watcher walks its trees; it
	// has no effect with inotify. Zero means DefaultPollInterval.
	PollInterval time.Duration
}

// Event says that something changed under the watched paths since the last
// Event (or since New).
type Event struct {
	// Paths are the changed paths, each the watched path it is under
	// joined with its path below it, sorted, at most 64 of them.
	Paths []string
	// More counts the changed paths left out of Paths.
	More int
	// Rescan is set when the system lost track of events (inotify's queue
	// overflowed): something changed but Paths may not say what.
	Rescan bool
	// Errs are problems met while following the trees, none fatal: a new
	// directory that could not be watched (its changes will be missed),
	// say, because the system's limit on watches was reached.
	Errs []error
}

// Watcher reports changes under a set of paths on its Events channel.
type Watcher struct {
	ig       *ignorer
	debounce time.Duration
	out      chan Event
	kick     chan struct{}
	done     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
	stop     func() error // stops the backend and releases its descriptor

	mu      sync.Mutex
	pending map[string]struct{}
	rescan  bool
	errs    []error
	err     error // why the backend stopped, if not by Close
}

// root is one of Options.Paths.
type root struct {
	path  string // as given, cleaned
	abs   string
	isDir bool
}

// New starts watching opts.Paths. The Watcher holds one descriptor (on
// Linux, the inotify instance, close-on-exec) until Close.
func New(opts Options) (*Watcher, error) { return newWith(opts, startBackend) }

// newWith is New with the backend chosen by the caller (tests run the
// polling backend on Linux too).
func newWith(opts Options, start func(*Watcher, []root, *Options) error) (*Watcher, error) {
	if len(opts.Paths) == 0 {
		return nil, errors.New("watch: no paths to watch")
	}
	ig, err := newIgnorer(&opts)
	if err != nil {
		return nil, err
	}
	var roots []root
	for _, p := range opts.Paths {
		r, err := newRoot(p)
		if err != nil {
			return nil, err
		}
		roots = append(roots, r)
	}
	w := newWatcher(ig, opts.Debounce)
	if err := start(w, roots, &opts); err != nil {
		return nil, err
	}
	w.wg.Add(1)
	go w.debounceLoop()
	return w, nil
}

func newRoot(p string) (root, error) {
	clean := filepath.Clean(p)
	abs, err := filepath.Abs(clean)
	if err != nil {
		return root{}, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return root{}, err // *PathError, names p
	}
	// A path that is a symbolic link is watched where it leads (links
	// met below it are not followed); changes are still reported under
	// the name given.
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return root{}, err
	}
	return root{path: clean, abs: abs, isDir: fi.IsDir()}, nil
}

func newWatcher(ig *ignorer, debounce time.Duration) *Watcher {
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	return &Watcher{
		ig:       ig,
		debounce: debounce,
		out:      make(chan Event),
		kick:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		pending:  make(map[string]struct{}),
	}
}

// Events returns the channel Events are sent on. It is closed when the
// Watcher stops: after Close, or when it fails (see Err).
func (w *Watcher) Events() <-chan Event { return w.out }

// Err returns why the Watcher stopped on its own, once Events is closed;
// nil if it was closed by Close.
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Close stops the Watcher, releases its descriptor and waits for its
// goroutines to end; Events is closed when it returns. Close may be
// called more than once.
func (w *Watcher) Close() error {
	var err error
	w.once.Do(func() {
		close(w.done)
		err = w.stop()
	})
	w.wg.Wait()
	return err
}

// note records changed paths (and a lost track, and errors) and wakes the
// debouncer. Backends call it; it never blocks on the consumer.
func (w *Watcher) note(paths []string, rescan bool, errs ...error) {
	if len(paths) == 0 && !rescan && len(errs) == 0 {
		return
	}
	w.mu.Lock()
	for _, p := range paths {
		w.pending[p] = struct{}{}
	}
	w.rescan = w.rescan || rescan
	w.errs = append(w.errs, errs...)
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// fail records why the backend stopped; the debouncer then closes Events.
func (w *Watcher) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
	w.once.Do(func() {
		close(w.done)
		w.stop()
	})
}

// take empties what has been noted into an Event.
func (w *Watcher) take() (Event, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) == 0 && !w.rescan && len(w.errs) == 0 {
		return Event{}, false
	}
	ev := Event{Rescan: w.rescan, Errs: w.errs}
	for p := range w.pending {
		ev.Paths = append(ev.Paths, p)
	}
	sort.Strings(ev.Paths)
	if len(ev.Paths) > maxPaths {
		ev.More = len(ev.Paths) - maxPaths
		ev.Paths = ev.Paths[:maxPaths]
	}
	w.pending = make(map[string]struct{})
	w.rescan = false
	w.errs = nil
	return ev, true
}

// debounceLoop sends one Event once no change has been noted for the
// debounce period, and closes Events when the Watcher stops.
func (w *Watcher) debounceLoop() {
	defer w.wg.Done()
	defer close(w.out)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-w.done:
			return
		case <-w.kick:
			timer.Reset(w.debounce)
		case <-timer.C:
			ev, ok := w.take()
			if !ok {
				continue
			}
			select {
			case w.out <- ev:
			case <-w.done:
				return
			}
		}
	}
}
