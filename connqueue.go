package fdsend

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// When several goroutines write small messages on one Conn at once, the
// one that gets the write lock sends every message queued meanwhile as a
// batch (SendMsgs: one sendmmsg on Linux), group-commit style, instead of
// each paying its own system call and its own turn at the lock. A writer
// that finds the lock free writes at once, as before: a lone writer never
// queues.

// queueDataMax is the longest message that queues: a frame this short goes
// to a stream socket whole or not at all (rawTryMax).
const queueDataMax = rawTryMax - frameHeaderLen

// queueWrites turns the queue on (tests turn it off to compare).
var queueWrites atomic.Bool

func init() { queueWrites.Store(true) }

// queueBatches counts the batches flushQueue sent, for tests.
var queueBatches atomic.Int64

// writeReq is one queued message. Its fields after fds are set by
// whichever writer sends it, under the write lock.
type writeReq struct {
	data []byte
	fds  []int
	err  error
	done bool
}

// writeQueue is the messages waiting for the write lock.
type writeQueue struct {
	mu   sync.Mutex
	reqs []*writeReq
	// Kept between flushes, used under the write lock only.
	spare  []*writeReq
	frames []byte
	msgs   []Msg
}

// writeQueued writes one short message through the queue: it is queued,
// then the writer waits for the write lock; if the message went meanwhile,
// with another writer's batch, that is all, else this writer sends the
// whole queue.
func (c *Conn) writeQueued(data []byte, files []any) error {
	if fds, ok := intsOf(files); ok {
		return c.queue(data, fds)
	}
	return holdFDs(files, func(fds []int) error {
		// The files stay held until the message has gone: this call
		// returns only then.
		return c.queue(data, append([]int(nil), fds...))
	})
}

// intsOf returns the descriptors of files if every one is a valid
// integer, in a slice of their own.
func intsOf(files []any) ([]int, bool) {
	if len(files) == 0 {
		return nil, true
	}
	fds := make([]int, len(files))
	for i, f := range files {
		fd, isInt, bad := intFD(f)
		if !isInt || bad {
			return nil, false
		}
		fds[i] = fd
	}
	return fds, true
}

func (c *Conn) queue(data []byte, fds []int) error {
	r := &writeReq{data: data, fds: fds}
	q := &c.wq
	q.mu.Lock()
	q.reqs = append(q.reqs, r)
	q.mu.Unlock()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !r.done {
		c.flushQueue()
	}
	return r.err
}

// flushQueue sends every queued message; the caller holds wmu. One message
// alone is written as WriteMsg writes; several go as a batch of frames,
// each with its descriptors.
func (c *Conn) flushQueue() {
	q := &c.wq
	q.mu.Lock()
	reqs := q.reqs
	q.reqs = q.spare[:0]
	q.mu.Unlock()
	defer func() {
		clear(reqs)
		q.spare = reqs[:0]
	}()
	if c.werr != nil {
		for _, r := range reqs {
			r.err, r.done = c.werr, true
		}
		return
	}
	if len(reqs) == 1 {
		r := reqs[0]
		r.err, r.done = c.writeFrames(r.data, r.fds), true
		return
	}
	// Each message is one frame: header and data side by side in frames.
	size := 0
	for _, r := range reqs {
		size += frameHeaderLen + len(r.data)
	}
	if cap(q.frames) < size {
		q.frames = make([]byte, size)
	}
	frames := q.frames[:size]
	msgs := q.msgs[:0]
	off := 0
	for _, r := range reqs {
		f := frames[off : off+frameHeaderLen+len(r.data)]
		putFrameHeader(f, frameHeader{nfiles: len(r.fds), length: uint64(len(r.data))})
		copy(f[frameHeaderLen:], r.data)
		msgs = append(msgs, Msg{Data: f, FDs: r.fds})
		off += len(f)
	}
	// An error meets one message: that writer gets it, and the messages
	// after it are sent again, as they would have been without the queue.
	// An error of the stream (a deadline, the peer gone) meets each of them
	// in turn, at once.
	for i := 0; i < len(reqs); {
		n, err := SendMsgs(c.uc, msgs[i:], 0)
		queueBatches.Add(1)
		var me *msgError
		if errors.As(err, &me) {
			err = me.err // which frame of a queue is nobody's business
		}
		for _, r := range reqs[i : i+n] {
			r.done = true
		}
		i += n
		if err == nil {
			break
		}
		if n > 0 && msgs[i-1].N < len(msgs[i-1].Data) {
			// Part of this frame went: nothing more can be written.
			cut := reqs[i-1]
			cut.err = c.opError("writemsg", err)
			c.werr = fmt.Errorf("fdsend: stream unusable after a write failed part-way through a message: %w", cut.err)
			for _, r := range reqs[i:] {
				r.err, r.done = c.werr, true
			}
			break
		}
		if i == len(reqs) {
			break // not reached: an error stops a message short of the end
		}
		reqs[i].err, reqs[i].done = c.opError("writemsg", err), true
		i++
	}
	clear(msgs)
	q.msgs = msgs[:0]
}
