package holder

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/jsonmsg"
)

// Client talks to a holder over one connection. It is safe for concurrent
// use; requests are answered one at a time, in order.
//
// Descriptors: what Store sends stays the caller's (the holder gets a
// duplicate). What Fetch returns belongs to the caller, close-on-exec, to
// be closed by it. A response that carries descriptors it should not is
// refused and they are closed.
//
// A failed exchange (an I/O error, a timeout, a malformed response) leaves
// the connection in an unknown state: the Client closes it, and every
// later call returns that error. Refusals by the holder (an *Error) leave it
// usable. A holder closes connections that stay idle longer than its
// Config.Timeout; a Client made by Dial notices that before its next request
// (the hang-up is already in its socket) and connects again.
//
// Before it sends or accepts anything on a connection, a Client checks that
// the peer runs as a trusted user (DialConfig.ServerUIDs; by default its own
// effective UID or root), and refuses any other with an error wrapping
// ErrUntrusted: whoever binds a holder's address first cannot receive what
// is stored or hand out descriptors of its own.
type Client struct {
	path    string       // where Dial connected, to connect again
	uids    []int        // users the holder may run as
	timeout atomic.Int64 // per request, in nanoseconds; 0: none

	mu      sync.Mutex // one request at a time; guards err and checked
	err     error      // sticky: the connection is gone
	checked bool       // the peer of conn has been checked

	cmu    sync.Mutex // guards conn and closed, never held during I/O
	conn   *fdsend.Conn
	closed bool
}

// Dial connects to the holder at path ("@name" for a Linux abstract
// address) with the default DialConfig: the holder must run as the
// caller's effective UID or as root, or Dial fails with an error wrapping
// ErrUntrusted (and syscall.EPERM) that says who answered. While the
// holder's listen backlog is full, Dial tries again for up to ConnectWait.
// The Client owns the connection; Close closes it.
func Dial(path string) (*Client, error) {
	return DialConfig{}.Dial(path)
}

// NewClient returns a Client that talks over c, which it takes over: Close
// closes it. Its first request checks the peer as Dial does (the caller's
// effective UID or root; DialConfig.NewClient for others) and fails, with
// the connection closed, if it is not trusted. Such a Client does not
// connect again after the holder closed an idle connection.
func NewClient(c *fdsend.Conn) *Client {
	return DialConfig{}.NewClient(c)
}

// SetTimeout bounds each request and its response (default DefaultTimeout;
// 0 means no bound). A request that exceeds it fails with an error wrapping
// os.ErrDeadlineExceeded and ends the Client.
func (c *Client) SetTimeout(d time.Duration) {
	c.timeout.Store(int64(max(d, 0)))
}

// errClientClosed is returned by every call after Close.
var errClientClosed = fmt.Errorf("holder: client closed: %w", os.ErrClosed)

// Close closes the connection, which also ends a request in progress with
// an error. Descriptors already fetched stay open. Every later call returns
// an error wrapping os.ErrClosed.
func (c *Client) Close() error {
	c.cmu.Lock()
	if c.closed {
		c.cmu.Unlock()
		return errClientClosed
	}
	c.closed = true
	conn := c.conn
	c.cmu.Unlock()
	return conn.Close()
}

// current returns the connection, or an error once the Client is closed.
func (c *Client) current() (*fdsend.Conn, error) {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	if c.closed {
		return nil, errClientClosed
	}
	return c.conn, nil
}

// reconnect replaces the connection with a new one to path, unless the
// Client has been closed meanwhile.
func (c *Client) reconnect() (*fdsend.Conn, error) {
	nc, err := DialConfig{ServerUIDs: c.uids}.connect(c.path)
	if err != nil {
		return nil, err
	}
	c.cmu.Lock()
	if c.closed {
		c.cmu.Unlock()
		nc.Close()
		return nil, errClientClosed
	}
	old := c.conn
	c.conn = nc
	c.cmu.Unlock()
	old.Close()
	return nc, nil
}

// roundTrip sends a request with files and reads the response. The
// response's descriptors are the caller's, and there are exactly want of
// them (any other number closes them and fails the Client).
func (c *Client) roundTrip(req request, want int, files ...any) (response, []*os.File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	conn, err := c.current()
	if err != nil {
		return response{}, nil, err
	}
	if c.err != nil {
		return response{}, nil, c.err
	}
	if c.path != "" && hungUp(conn) {
		if conn, err = c.reconnect(); err != nil {
			if errors.Is(err, errClientClosed) {
				return response{}, nil, err
			}
			return response{}, nil, c.broken(fmt.Errorf("holder: %s: the holder closed the idle connection, and connecting again failed: %w", req.Op, err))
		}
	}
	if !c.checked {
		// A Client of NewClient: nothing goes out before the peer is known.
		if err := checkPeer(conn, c.path, c.uids); err != nil {
			return response{}, nil, c.broken(err)
		}
		c.checked = true
	}
	var deadline time.Time
	if d := time.Duration(c.timeout.Load()); d > 0 {
		deadline = time.Now().Add(d)
	}
	conn.SetDeadline(deadline)
	if err := jsonmsg.Write(conn, req, files...); err != nil {
		var ae *fdsend.ArgError
		if errors.As(err, &ae) {
			// Rejected before anything was written: the stream is intact.
			return response{}, nil, fmt.Errorf("holder: %s: %w", req.Op, err)
		}
		// The holder may have answered before closing (busy, shutting
		// down): that answer says more than a broken pipe.
		conn.SetReadDeadline(time.Now().Add(busyTimeout))
		var resp response
		if rfiles, rerr := jsonmsg.Read(conn, &resp); rerr == nil {
			jsonmsg.CloseAll(rfiles)
			if !resp.OK && resp.Code != "" {
				return response{}, nil, c.broken(&Error{Op: req.Op, Code: resp.Code, Msg: resp.Error})
			}
		}
		return response{}, nil, c.broken(fmt.Errorf("holder: %s: %w", req.Op, err))
	}
	var resp response
	rfiles, err := jsonmsg.Read(conn, &resp)
	if errors.Is(err, jsonmsg.ErrMalformed) {
		return response{}, nil, c.broken(fmt.Errorf("holder: %s: malformed response: %w", req.Op, err))
	}
	if err != nil {
		return response{}, nil, c.broken(fmt.Errorf("holder: %s: %w", req.Op, err))
	}
	if !resp.OK {
		jsonmsg.CloseAll(rfiles)
		if resp.Code == codeBusy || resp.Code == codeClosed {
			return response{}, nil, c.broken(&Error{Op: req.Op, Code: resp.Code, Msg: resp.Error})
		}
		return response{}, nil, &Error{Op: req.Op, Code: resp.Code, Msg: resp.Error}
	}
	if len(rfiles) != want {
		jsonmsg.CloseAll(rfiles)
		return response{}, nil, c.broken(fmt.Errorf("holder: %s: response carries %d descriptors, want %d (closed)", req.Op, len(rfiles), want))
	}
	return resp, rfiles, nil
}

// broken ends the Client with err, which it returns; c.mu is held.
func (c *Client) broken(err error) error {
	c.err = err
	c.cmu.Lock()
	conn := c.conn
	c.cmu.Unlock()
	conn.Close()
	return err
}

// Store asks the holder to hold a duplicate of file under name, for ttl
// (0: until removed). file is anything fdsend.Send accepts (an *os.File, a
// listener or conn of package net, a descriptor number) and stays the
// caller's. A name already held is ErrExists unless replace is set, in which
// case the holder closes the old descriptor. Names follow
// activation.ValidateName.
func (c *Client) Store(name string, file any, ttl time.Duration, replace bool) error {
	if ttl < 0 {
		return &Error{Op: opStore, Code: codeInvalid, Msg: fmt.Sprintf("negative expiry %v", ttl)}
	}
	if file == nil {
		return &Error{Op: opStore, Code: codeInvalid, Msg: "no descriptor to store"}
	}
	_, _, err := c.roundTrip(request{Op: opStore, Name: name, TTL: int64(ttl), Replace: replace}, 0, file)
	return err
}

// Fetch returns duplicates of the descriptors held under names, in that
// order; the caller owns them (close-on-exec) and must close them. With
// remove, the holder also drops the names at once (fetch and delete both
// need to be allowed). Either every name is held and every descriptor
// comes, or the call fails with nothing (ErrNotHeld for a missing name).
func (c *Client) Fetch(names []string, remove bool) ([]*os.File, error) {
	_, files, err := c.FetchEntries(names, remove)
	return files, err
}

// FetchEntries is Fetch that also describes each descriptor as List would
// at the moment it was fetched (its kind, age, and the expiry it had left),
// in the same order as the files.
func (c *Client) FetchEntries(names []string, remove bool) ([]Entry, []*os.File, error) {
	if len(names) == 0 {
		return nil, nil, &Error{Op: opFetch, Code: codeInvalid, Msg: "no names to fetch"}
	}
	resp, files, err := c.roundTrip(request{Op: opFetch, Names: names, Delete: remove}, len(names))
	if err != nil {
		return nil, nil, err
	}
	if len(resp.Entries) != len(names) {
		jsonmsg.CloseAll(files)
		return nil, nil, c.brokenLocked(fmt.Errorf("holder: fetch: response describes %d entries for %d names", len(resp.Entries), len(names)))
	}
	entries := make([]Entry, len(resp.Entries))
	for i, w := range resp.Entries {
		entries[i] = w.entry()
	}
	return entries, files, nil
}

// brokenLocked is broken for callers that do not hold the lock.
func (c *Client) brokenLocked(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broken(err)
}

// List returns what the holder holds, sorted by name.
func (c *Client) List() ([]Entry, error) {
	resp, _, err := c.roundTrip(request{Op: opList}, 0)
	if err != nil {
		return nil, err
	}
	entries := make([]Entry, len(resp.Entries))
	for i, w := range resp.Entries {
		entries[i] = w.entry()
	}
	return entries, nil
}

// Remove asks the holder to drop name and close its descriptor
// (ErrNotHeld if it holds no such name).
func (c *Client) Remove(name string) error {
	_, _, err := c.roundTrip(request{Op: opRemove, Name: name}, 0)
	return err
}

// TransferReport is what Transfer did, name by name.
type TransferReport struct {
	// Copied are the names now held by the target too, each with the
	// expiry it had left in the source.
	Copied []string
	// Skipped are names the target already held; both holders keep what
	// they had.
	Skipped []string
	// Gone are names the source listed but dropped (expired, removed)
	// before they could be fetched.
	Gone []string
}

// Transfer copies every entry of the holder from into the holder to, each
// with the expiry it has left (measured when it is fetched; the copy may
// therefore live a few microseconds longer), so that a holder can be
// restarted without losing anything: start the new one on another socket,
// Transfer, stop the old one. The source keeps its entries. A name the
// target already holds is reported in Skipped and left alone. Per-name
// failures (the target full, or refusing) are joined into the error, and
// the other names are still copied; a failure of either connection stops
// the transfer. Descriptors pass through this process and are closed here
// once stored.
func Transfer(from, to *Client) (TransferReport, error) {
	var rep TransferReport
	entries, err := from.List()
	if err != nil {
		return rep, err
	}
	var errs []error
	for _, e := range entries {
		got, files, err := from.FetchEntries([]string{e.Name}, false)
		if errors.Is(err, ErrNotHeld) {
			rep.Gone = append(rep.Gone, e.Name)
			continue
		}
		if err != nil {
			if !perName(err) {
				return rep, errors.Join(append(errs, err)...)
			}
			errs = append(errs, fmt.Errorf("%q: %w", e.Name, err))
			continue
		}
		err = to.Store(e.Name, files[0], got[0].ExpiresIn, false)
		files[0].Close()
		switch {
		case err == nil:
			rep.Copied = append(rep.Copied, e.Name)
		case errors.Is(err, ErrExists):
			rep.Skipped = append(rep.Skipped, e.Name)
		case perName(err):
			errs = append(errs, fmt.Errorf("%q: %w", e.Name, err))
		default:
			return rep, errors.Join(append(errs, err)...)
		}
	}
	return rep, errors.Join(errs...)
}

// perName reports whether err is a refusal of one request that leaves the
// connection usable.
func perName(err error) bool {
	var he *Error
	return errors.As(err, &he) && he.Code != codeBusy && he.Code != codeClosed
}
