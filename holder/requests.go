package holder

// Serving one connection: its requests, checked against the rules, and the
// operations on entries they ask for.

import (
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdname"
	"github.com/fdsend/fdsend/internal/jsonmsg"
)

// serveConn serves one connection until it ends, fails or times out; run
// closes it.
func (s *Server) serveConn(c *fdsend.Conn, cred fdsend.Cred) {
	c.SetReadLimits(maxRequestBytes, 1)
	for {
		c.SetReadDeadline(time.Now().Add(s.cfg.Timeout))
		data, files, err := c.ReadMsg()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.logf("client pid %d uid %d: connection closed: %v", cred.PID, cred.UID, err)
			}
			return
		}
		resp, out, after := s.handle(cred, data, files)
		if hook := s.beforeAnswer.Load(); hook != nil {
			(*hook)()
		}
		c.SetWriteDeadline(time.Now().Add(s.cfg.Timeout))
		werr := jsonmsg.Write(c, resp, out...)
		if after != nil {
			after(werr == nil)
		}
		if werr != nil {
			if !errors.Is(werr, net.ErrClosed) {
				s.logf("client pid %d uid %d: answer not delivered, connection closed: %v", cred.PID, cred.UID, werr)
			}
			return
		}
	}
}

// handle answers one request. It owns files (the request's descriptors) and
// closes every one it does not keep. It returns the response, its
// descriptors, and what to do once the response has been written or has
// failed (nil for nothing).
func (s *Server) handle(cred fdsend.Cred, data []byte, files []*os.File) (resp response, out []any, after func(sent bool)) {
	var req request
	if err := jsonmsg.Decode(data, &req); err != nil {
		jsonmsg.CloseAll(files)
		return failResponse(fail(codeInvalid, "request is not a JSON object of the holder protocol: %v", err)), nil, nil
	}
	need, ok := opRights[req.Op]
	if !ok {
		jsonmsg.CloseAll(files)
		return failResponse(fail(codeInvalid, "unknown operation %q (want store, fetch, list or remove)", req.Op)), nil, nil
	}
	if req.Op == opFetch && req.Delete {
		need |= OpDelete
	}
	if !s.allowed(cred, need) {
		jsonmsg.CloseAll(files)
		s.logf("refused %s from pid %d uid %d gid %d: not allowed", req.Op, cred.PID, cred.UID, cred.GID)
		return failResponse(fail(codeDenied, "uid %d gid %d may not %s (the holder's rules do not allow it)", cred.UID, cred.GID, need.verb())), nil, nil
	}
	if req.Op != opStore && len(files) > 0 {
		jsonmsg.CloseAll(files)
		return failResponse(fail(codeInvalid, "a %s request carries no descriptors, %d arrived (closed)", req.Op, len(files))), nil, nil
	}
	var r response
	var held []*os.File
	var err *failure
	switch req.Op {
	case opStore:
		err = s.store(cred, req, files)
	case opFetch:
		r.Entries, held, after, err = s.fetch(req)
	case opList:
		r.Entries, err = s.list()
	case opRemove:
		err = s.remove(req.Name)
	}
	if err != nil {
		return failResponse(err), nil, nil
	}
	r.OK = true
	for _, f := range held {
		out = append(out, f)
	}
	return r, out, after
}

// opRights are the rights each operation needs.
var opRights = map[string]Op{opStore: OpStore, opFetch: OpFetch, opList: OpList, opRemove: OpDelete}

// verb names the operations of o for a message.
func (o Op) verb() string {
	if o == OpFetch|OpDelete {
		return "fetch and delete"
	}
	return o.String()
}

// allowed reports whether a peer may do every operation of need.
func (s *Server) allowed(cred fdsend.Cred, need Op) bool {
	return s.rights(cred)&need == need
}

// rights is every operation the rules grant a peer; the holder's own user
// has them all.
func (s *Server) rights(cred fdsend.Cred) Op {
	if cred.UID == s.uid {
		return AllOps
	}
	var have Op
	for _, r := range s.cfg.Rules {
		if r.matches(cred.UID, cred.GID) {
			have |= r.Ops
		}
	}
	return have
}

// failResponse is the response of a request that failed with f.
func failResponse(f *failure) response {
	return response{Code: f.code, Error: f.msg}
}

// store holds files[0] under req.Name.
func (s *Server) store(cred fdsend.Cred, req request, files []*os.File) *failure {
	if len(files) != 1 {
		jsonmsg.CloseAll(files)
		return fail(codeInvalid, "a store request carries exactly one descriptor, %d arrived", len(files))
	}
	if err := fdname.Check(req.Name); err != nil {
		jsonmsg.CloseAll(files)
		return fail(codeInvalid, "%v", err)
	}
	if req.TTL < 0 {
		jsonmsg.CloseAll(files)
		return fail(codeInvalid, "negative expiry %v", time.Duration(req.TTL))
	}
	now := time.Now()
	e := &entry{name: req.Name, file: files[0], refs: 1, stored: now, by: cred}
	if req.TTL > 0 {
		e.expires = now.Add(time.Duration(req.TTL))
	}
	var drop []*entry
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		jsonmsg.CloseAll(files)
		return fail(codeClosed, "the holder is shutting down")
	}
	old := s.getLocked(req.Name, now, &drop)
	switch {
	case old != nil && !req.Replace:
		s.mu.Unlock()
		s.closeEntries(drop, "expired")
		jsonmsg.CloseAll(files)
		return fail(codeExists, "%q is already held (store with replace to replace it)", req.Name)
	case old != nil:
		s.takeLocked(old)
		drop = append(drop, old)
	default:
		if len(s.entries) >= s.cfg.Max {
			s.sweepLocked(now, &drop)
		}
		if len(s.entries) >= s.cfg.Max {
			s.mu.Unlock()
			s.closeEntries(drop, "expired")
			jsonmsg.CloseAll(files)
			return fail(codeFull, "the holder holds %d entries, its limit", s.cfg.Max)
		}
	}
	s.entries[e.name] = e
	s.armLocked(e, now)
	s.mu.Unlock()
	s.releaseAll(drop)
	for _, d := range drop {
		if d == old {
			s.logf("replaced %q", d.name)
		} else {
			s.logf("dropped %q (expired)", d.name)
		}
	}
	return nil
}

// fetch answers a fetch: the held descriptors themselves, referenced
// until they are sent (no duplicates: a fetch costs no descriptors), and
// with Delete taken out of the holder. after lets go of them once they are
// in the client's socket; if the response could not be written, deleted
// entries are put back when their names are still free, so a client that
// dies mid-request loses nothing.
func (s *Server) fetch(req request) ([]wireEntry, []*os.File, func(bool), *failure) {
	names := req.Names
	if len(names) == 0 {
		return nil, nil, nil, fail(codeInvalid, "a fetch request names at least one entry")
	}
	if len(names) > s.cfg.Max {
		return nil, nil, nil, fail(codeInvalid, "a fetch of %d names, more than the %d the holder can hold", len(names), s.cfg.Max)
	}
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if err := fdname.Check(n); err != nil {
			return nil, nil, nil, fail(codeInvalid, "%v", err)
		}
		if seen[n] {
			return nil, nil, nil, fail(codeInvalid, "%q is named twice", n)
		}
		seen[n] = true
	}
	now := time.Now()
	var drop []*entry
	defer func() { s.closeEntries(drop, "expired") }()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, nil, nil, fail(codeClosed, "the holder is shutting down")
	}
	found := make([]*entry, len(names))
	for i, n := range names {
		e := s.getLocked(n, now, &drop)
		if e == nil {
			s.mu.Unlock()
			return nil, nil, nil, fail(codeNotHeld, "%q is not held", n)
		}
		found[i] = e
	}
	desc := s.describeLocked(found)
	files := make([]*os.File, len(found))
	for i, e := range found {
		files[i] = e.file
		if req.Delete {
			s.takeLocked(e) // the map's reference goes with the response
		} else {
			e.refs++
		}
	}
	s.mu.Unlock()
	kinds := desc.wait(found, s)
	wire := make([]wireEntry, len(found))
	for i, e := range found {
		wire[i] = e.wire(now, kinds[i])
	}
	if req.Delete {
		return wire, files, func(sent bool) { s.afterDelete(found, sent) }, nil
	}
	return wire, files, func(bool) { s.releaseAll(found) }, nil
}

// afterDelete finishes a fetch with delete: the entries are closed if the
// response went out, and otherwise put back where possible.
func (s *Server) afterDelete(taken []*entry, sent bool) {
	if sent {
		s.releaseAll(taken)
		return
	}
	now := time.Now()
	var lost []*entry
	s.mu.Lock()
	for _, e := range taken {
		if s.closed || s.entries[e.name] != nil || e.expired(now) || len(s.entries) >= s.cfg.Max {
			lost = append(lost, e)
			continue
		}
		s.entries[e.name] = e
		s.armLocked(e, now)
	}
	s.mu.Unlock()
	s.closeEntries(lost, "fetched with delete by a client that went away, and could not be put back")
}

// list describes every entry, sorted by name.
func (s *Server) list() ([]wireEntry, *failure) {
	now := time.Now()
	var drop []*entry
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fail(codeClosed, "the holder is shutting down")
	}
	s.sweepLocked(now, &drop)
	es := make([]*entry, 0, len(s.entries))
	for _, e := range s.entries {
		es = append(es, e)
	}
	desc := s.describeLocked(es)
	s.mu.Unlock()
	kinds := desc.wait(es, s)
	out := make([]wireEntry, len(es))
	for i, e := range es {
		out[i] = e.wire(now, kinds[i])
	}
	s.closeEntries(drop, "expired")
	slices.SortFunc(out, func(a, b wireEntry) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out, nil
}

// remove drops the entry held under name.
func (s *Server) remove(name string) *failure {
	if err := fdname.Check(name); err != nil {
		return fail(codeInvalid, "%v", err)
	}
	var drop []*entry
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fail(codeClosed, "the holder is shutting down")
	}
	e := s.getLocked(name, time.Now(), &drop)
	if e != nil {
		s.takeLocked(e)
	}
	s.mu.Unlock()
	s.closeEntries(drop, "expired")
	if e == nil {
		return fail(codeNotHeld, "%q is not held", name)
	}
	s.releaseAll([]*entry{e})
	s.logf("removed %q", name)
	return nil
}
