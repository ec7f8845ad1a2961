package watch

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// stamp is what the polling backend compares between two walks.
type stamp struct {
	mode  fs.FileMode
	size  int64
	mtime time.Time
}

// poller is the backend for systems without inotify: it walks the roots
// every interval and reports the entries that appeared, vanished or whose
// stamp changed.
type poller struct {
	w        *Watcher
	roots    []root
	interval time.Duration
}

func startPoller(w *Watcher, roots []root, opts *Options) error {
	p := &poller{w: w, roots: roots, interval: opts.PollInterval}
	if p.interval <= 0 {
		p.interval = DefaultPollInterval
	}
	last, err := p.snapshot(true)
	if err != nil {
		return err
	}
	w.stop = func() error { return nil }
	w.wg.Add(1)
	go p.loop(last)
	return nil
}

func (p *poller) loop(last map[string]stamp) {
	defer p.w.wg.Done()
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-p.w.done:
			return
		case <-t.C:
		}
		now, err := p.snapshot(false)
		var changed []string
		for name, s := range now {
			if old, ok := last[name]; !ok || old != s {
				changed = append(changed, name)
			}
		}
		for name := range last {
			if _, ok := now[name]; !ok {
				changed = append(changed, name)
			}
		}
		if err != nil {
			p.w.note(changed, false, err)
		} else {
			p.w.note(changed, false)
		}
		last = now
	}
}

// snapshot walks every root. With strict (at start), an error other than
// an entry vanishing mid-walk is returned at once; otherwise the first one
// is returned with what could be walked.
func (p *poller) snapshot(strict bool) (map[string]stamp, error) {
	m := make(map[string]stamp)
	var first error
	for i := range p.roots {
		r := &p.roots[i]
		if !r.isDir {
			fi, err := os.Stat(r.abs)
			if err == nil {
				m[r.path] = stampOf(fi)
			} else if !errors.Is(err, fs.ErrNotExist) {
				if strict {
					return nil, err
				}
				if first == nil {
					first = err
				}
			}
			continue
		}
		err := filepath.WalkDir(r.abs, func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				if strict {
					return err
				}
				if first == nil {
					first = err
				}
				return nil
			}
			rel, _ := filepath.Rel(r.abs, path)
			if p.w.ig.ignored(rel) {
				if e.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			fi, err := e.Info()
			if err != nil {
				return nil // vanished
			}
			m[filepath.Join(r.path, rel)] = stampOf(fi)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return m, first
}

func stampOf(fi fs.FileInfo) stamp {
	return stamp{mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime()}
}
