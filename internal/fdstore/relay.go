package fdstore

import (
	"strings"
	"sync"

	"github.com/fdsend/fdsend/notify"
)

// relay forwards READY=1 and STATUS= to the outer manager from a goroutine
// of its own, so that a slow outer socket never holds up the Server.
// Notifications that arrive while a send is in progress are merged: the
// next send carries READY=1 if any of them had it and the latest status.
type relay struct {
	client notify.Client
	logf   func(string, ...any)
	wake   chan struct{} // capacity 1: "something is pending"
	quit   chan struct{}
	done   chan struct{}

	mu        sync.Mutex
	ready     bool
	status    string
	hasStatus bool
}

func newRelay(c notify.Client, logf func(string, ...any)) *relay {
	r := &relay{
		client: c,
		logf:   logf,
		wake:   make(chan struct{}, 1),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go r.run()
	return r
}

// post queues a notification without blocking.
func (r *relay) post(ready bool, status string, hasStatus bool) {
	r.mu.Lock()
	r.ready = r.ready || ready
	if hasStatus {
		r.status, r.hasStatus = status, true
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *relay) run() {
	defer close(r.done)
	for {
		select {
		case <-r.quit:
			return
		case <-r.wake:
		}
		r.mu.Lock()
		var lines []string
		if r.ready {
			lines = append(lines, "READY=1")
		}
		if r.hasStatus {
			lines = append(lines, "STATUS="+r.status)
		}
		r.ready, r.status, r.hasStatus = false, "", false
		r.mu.Unlock()
		if len(lines) == 0 {
			continue
		}
		if _, err := r.client.Send(strings.Join(lines, "\n")); err != nil {
			r.logf("fdstore: relaying to the outer manager: %v", err)
		}
	}
}

// stop ends the relay, waiting for a send in progress (bounded by the
// client's Timeout).
func (r *relay) stop() {
	close(r.quit)
	<-r.done
}
