package holder

// What the server holds: entries, their expiry, and their descriptions,
// which are made outside the server's lock.

import (
	"fmt"
	"os"
	"time"
	"unicode/utf8"

	"github.com/fdsend/fdsend"
)

// describeTimeout bounds describing descriptors for a response: fstat of a
// file on a file system that stops answering (a hung FUSE or network
// mount) may never return.
const describeTimeout = time.Second

// describing is the descriptions of some entries, under way.
type describing struct {
	kinds   []string
	got     []bool
	results chan describeResult
	pending int
}

type describeResult struct {
	i    int
	kind string
}

// describeLocked starts describing es (s.mu held), each in a goroutine of
// its own that holds a reference to its entry, so the descriptor stays open
// while it is looked at. No system call that could block runs under the
// lock. An entry whose description from an earlier request is still out
// (it does not answer) is not asked again.
func (s *Server) describeLocked(es []*entry) *describing {
	fn := describe
	if hook := s.describeHook.Load(); hook != nil {
		fn = *hook
	}
	d := &describing{kinds: make([]string, len(es)), got: make([]bool, len(es)), results: make(chan describeResult, len(es))}
	for i, e := range es {
		if e.describing {
			continue
		}
		e.describing = true
		e.refs++
		d.pending++
		go func() {
			kind := fn(e.file)
			s.mu.Lock()
			e.describing = false
			e.kind = kind
			e.refs--
			last := e.refs == 0
			s.mu.Unlock()
			if last {
				e.file.Close()
			}
			d.results <- describeResult{i, kind}
		}()
	}
	return d
}

// wait returns the descriptions, waiting at most describeTimeout; an entry
// that has not answered by then is reported as such, with what it was last
// found to be.
func (d *describing) wait(es []*entry, s *Server) []string {
	t := time.NewTimer(describeTimeout)
	defer t.Stop()
wait:
	for ; d.pending > 0; d.pending-- {
		select {
		case r := <-d.results:
			d.kinds[r.i], d.got[r.i] = r.kind, true
		case <-t.C:
			break wait
		}
	}
	s.mu.Lock()
	for i, e := range es {
		if !d.got[i] {
			if e.kind == "" {
				d.kinds[i] = fmt.Sprintf("unknown (did not answer within %v)", describeTimeout)
			} else {
				d.kinds[i] = e.kind + " (not answering)"
			}
		}
	}
	s.mu.Unlock()
	return d.kinds
}

// entry is one held descriptor.
//
// Its file is closed when the last reference goes (see release): the map
// holds one, and so does each fetch sending it, so a fetch sends the held
// descriptor itself, never a duplicate.
type entry struct {
	name       string
	file       *os.File
	refs       int    // under Server.mu
	kind       string // what it was last found to be, under Server.mu
	describing bool   // a description is under way, under Server.mu
	stored     time.Time
	expires    time.Time // zero: never
	timer      *time.Timer
	by         fdsend.Cred
}

func (e *entry) expired(now time.Time) bool {
	return !e.expires.IsZero() && !now.Before(e.expires)
}

// wire describes e for a response.
func (e *entry) wire(now time.Time, kind string) wireEntry {
	w := wireEntry{
		Name: e.name,
		Kind: kind, // encoding/json makes it valid UTF-8
		Age:  int64(now.Sub(e.stored)),
		UID:  e.by.UID,
		GID:  e.by.GID,
		PID:  e.by.PID,
	}
	if !utf8.ValidString(kind) {
		w.KindRaw = []byte(kind)
	}
	if !e.expires.IsZero() {
		w.ExpiresIn = max(int64(e.expires.Sub(now)), 1)
	}
	return w
}

// takeLocked removes e from the map and stops its timer; the caller closes
// its file (outside the lock) or puts it back.
func (s *Server) takeLocked(e *entry) {
	delete(s.entries, e.name)
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
}

// getLocked returns the live entry held under name. An expired one whose
// timer has not fired yet is taken out and appended to *drop.
func (s *Server) getLocked(name string, now time.Time, drop *[]*entry) *entry {
	e := s.entries[name]
	if e == nil {
		return nil
	}
	if e.expired(now) {
		s.takeLocked(e)
		*drop = append(*drop, e)
		return nil
	}
	return e
}

// sweepLocked takes out every expired entry into *drop.
func (s *Server) sweepLocked(now time.Time, drop *[]*entry) {
	for _, e := range s.entries {
		if e.expired(now) {
			s.takeLocked(e)
			*drop = append(*drop, e)
		}
	}
}

// closeEntries lets go of dropped entries (see releaseAll).
func (s *Server) closeEntries(drop []*entry, why string) {
	s.releaseAll(drop)
	for _, e := range drop {
		s.logf("dropped %q (%s)", e.name, why)
	}
}

// releaseAll drops a reference to each of es (taken out of the map, or
// sent) and closes the file of each that no one refers to any more. The
// closing happens outside the lock: closing a file on a file system that
// stopped answering may block.
func (s *Server) releaseAll(es []*entry) {
	var last []*entry
	s.mu.Lock()
	for _, e := range es {
		e.refs--
		if e.refs == 0 {
			last = append(last, e)
		}
	}
	s.mu.Unlock()
	for _, e := range last {
		e.file.Close()
	}
}

// armLocked starts e's expiry timer, if it has an expiry.
func (s *Server) armLocked(e *entry, now time.Time) {
	if e.expires.IsZero() {
		return
	}
	e.timer = time.AfterFunc(e.expires.Sub(now), func() { s.expire(e) })
}

// expire drops e when its time has come, if it is still held.
func (s *Server) expire(e *entry) {
	s.mu.Lock()
	if s.entries[e.name] != e {
		s.mu.Unlock()
		return
	}
	s.takeLocked(e)
	s.mu.Unlock()
	s.closeEntries([]*entry{e}, "expired")
}
