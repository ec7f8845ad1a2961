package fdsend

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// readAhead is the size of a Conn's read-ahead buffer: small messages are
// read several at a time, larger ones go straight into the returned buffer.
const readAhead = 4096

// initialAlloc is the most ReadMsg allocates for a message's data before the
// data arrives; larger messages grow their buffer as it does. Messages up to
// this size cost exactly one allocation.
const initialAlloc = 1 << 20

// Conn sends and receives whole messages with any number of files over a
// SOCK_STREAM Unix socket, in the format of PROTOCOL.md. Message boundaries
// are kept, more than 253 files are split over several system calls
// invisibly, and a message of any size arrives whole.
//
// A Conn is safe for concurrent use: concurrent WriteMsg calls never
// interleave, and concurrent ReadMsg calls each get whole messages. Deadlines
// and Close behave as on a net.Conn. Received files are close-on-exec and
// belong to the caller of ReadMsg; files given to WriteMsg stay the caller's.
type Conn struct {
	uc *net.UnixConn

	typeOnce sync.Once
	typeErr  error
	rc       syscall.RawConn // the socket's, set by checkType
	ctlHead  int             // room for the control messages before SCM_RIGHTS (see ctlLen)

	wmu  sync.Mutex
	werr error // sticky: a write failed part-way through a message
	whdr [frameHeaderLen]byte
	woob [oobSendMax]byte
	wst  writeState
	wfds []int // integer descriptors of the message being written (intFDs)
	wq   writeQueue
	// writeFn is c.writeStep, made once.
	writeFn func(uintptr) bool

	rmu         sync.Mutex
	rerr        error // sticky: end of stream or protocol error
	maxBytes    atomic.Int64
	maxFiles    atomic.Int64
	rbuf        []byte
	rstart      int
	rend        int
	roff        int64   // stream offset of rbuf[rend]: bytes received so far
	batches     []batch // descriptors received and not yet claimed by a frame
	slab        []int   // storage the batches' descriptor lists are cut from
	fdbuf       [maxFilesPerMsg]int
	roob        [oobRecvMax]byte // control buffer of fill, kept so no call clears one
	msgFiles    []int            // descriptors of the message being read
	msgData     []byte           // data of the message being read (final frame)
	msgInCaller bool             // msgData is in the spare capacity of the caller's buffer
	msgLen      int              // its length, announced by the frame header
	msgGot      int              // bytes of msgData filled
	inData      bool             // reading the final frame's data
	inMessage   bool             // a frame of the current message has been read
}

// batch is the descriptors one recvmsg returned, with the stream offsets of
// the bytes that call returned: [start, end).
type batch struct {
	fds        []int
	start, end int64
}

// NewConn wraps a connected SOCK_STREAM Unix socket. The Conn takes it over:
// Close closes it, and the caller should no longer read or write it
// directly. A socket of another type fails on first use.
func NewConn(c *net.UnixConn) *Conn {
	conn := &Conn{uc: c}
	conn.maxBytes.Store(DefaultMaxMsgBytes)
	conn.maxFiles.Store(DefaultMaxMsgFiles)
	return conn
}

// Dial connects to the Unix socket at path ("@name" for a Linux abstract
// address) and returns a Conn for it. The socket is close-on-exec.
func Dial(path string) (*Conn, error) {
	uc, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	return NewConn(uc), nil
}

// SetReadLimits sets the largest message ReadMsg accepts: maxBytes of data
// and maxFiles descriptors (defaults DefaultMaxMsgBytes and
// DefaultMaxMsgFiles). A message over a limit is a protocol error, and its
// descriptors are closed. Values below zero are taken as zero, and maxBytes
// above what an int holds as that. It may be called at any time, also while
// a ReadMsg waits; the new limits apply from the next frame header read.
func (c *Conn) SetReadLimits(maxBytes int64, maxFiles int) {
	c.maxBytes.Store(min(max(maxBytes, 0), int64(math.MaxInt)))
	c.maxFiles.Store(int64(max(maxFiles, 0)))
}

// checkType fails once and for all if the socket is not SOCK_STREAM.
func (c *Conn) checkType() error {
	c.typeOnce.Do(func() {
		if c.uc == nil {
			c.typeErr = &ArgError{Arg: "c", Type: "*net.UnixConn", Err: errNil}
			return
		}
		rc, err := c.uc.SyscallConn()
		if err != nil {
			c.typeErr = err
			return
		}
		c.rc = rc
		c.writeFn = c.writeStep
		var typ int
		var serr error
		if err := rc.Control(func(fd uintptr) {
			typ, serr = sockType(int(fd))
		}); err != nil {
			c.typeErr = err
			return
		}
		if serr != nil {
			c.typeErr = os.NewSyscallError("getsockopt", serr)
			return
		}
		if typ != sockStream {
			c.typeErr = fmt.Errorf("fdsend: Conn needs a SOCK_STREAM socket, this one is type %d: %w", typ, errProtoType)
			return
		}
		rc.Control(func(fd uintptr) { c.ctlHead = ctlHeaders(int(fd)) })
	})
	return c.typeErr
}

// opError wraps an I/O error as a *net.OpError of this Conn, taking the inner
// error out of the RawConn's own OpError so errors.Is still sees deadlines
// and net.ErrClosed.
func (c *Conn) opError(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: "unix", Source: c.uc.LocalAddr(), Addr: c.uc.RemoteAddr(), Err: err}
}

// WriteMsg writes data and files as one message. It returns once the whole
// message is in the socket (it waits for nothing from the peer). files are
// anything Send accepts and stay the caller's; each is held open for the
// duration of the call.
//
// Arguments that are rejected (a bad type, a closed file) write nothing. A
// write that fails or times out part-way through a message leaves the stream
// unusable for writing: that WriteMsg and every later one return the error.
func (c *Conn) WriteMsg(data []byte, files ...any) error {
	if err := c.checkType(); err != nil {
		return err
	}
	if !c.wmu.TryLock() {
		// Another goroutine is writing: a short message queues to go
		// with others in one sendmmsg (connqueue.go).
		if len(data) <= queueDataMax && len(files) <= maxFilesPerMsg && queueWrites.Load() {
			return c.writeQueued(data, files)
		}
		c.wmu.Lock()
	}
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	if len(files) == 0 {
		return c.writeFrames(data, nil)
	}
	if fds, ok := c.intFDs(files); ok {
		return c.writeFrames(data, fds)
	}
	return holdFDs(files, func(fds []int) error { return c.writeFrames(data, fds) })
}

// intFDs gathers files into c.wfds if every one is a plain integer
// descriptor, so that writing integers allocates nothing in the steady state.
// Anything else, a bad number included, is left to holdFDs, which resolves
// and reports it. The caller holds wmu.
func (c *Conn) intFDs(files []any) ([]int, bool) {
	fds := c.wfds[:0]
	for _, f := range files {
		fd, isInt, bad := intFD(f)
		if !isInt || bad {
			return nil, false
		}
		fds = append(fds, fd)
	}
	c.wfds = fds
	return fds, true
}

// writeFrames writes one message as frames of at most maxFilesPerMsg
// descriptors each, the data in the last. The caller holds wmu.
func (c *Conn) writeFrames(data []byte, fds []int) error {
	c.wst.started = false
	for first := true; first || len(fds) > 0; first = false {
		n := min(len(fds), maxFilesPerMsg)
		h := frameHeader{nfiles: n}
		var payload []byte
		if len(fds) > maxFilesPerMsg {
			h.more = true
		} else {
			h.length = uint64(len(data))
			payload = data
		}
		putFrameHeader(c.whdr[:], h)
		if err := c.writeFrame(c.whdr[:], payload, fds[:n]); err != nil {
			err = c.opError("writemsg", err)
			if c.wst.started {
				c.werr = fmt.Errorf("fdsend: stream unusable after a write failed part-way through a message: %w", err)
			}
			return err
		}
		fds = fds[n:]
	}
	return nil
}

// writeState is what the RawConn's write callback works on. It lives in the
// Conn, under wmu, and the callback is made once, so that a write allocates
// nothing.
type writeState struct {
	hdr, data, oob []byte
	err            error
	started        bool // a byte of the current message has been written
}

// writeStep is the RawConn write callback: it writes what is left of the
// frame in c.wst, the descriptors with the first byte.
func (c *Conn) writeStep(fd uintptr) bool {
	w := &c.wst
	for len(w.hdr)+len(w.data) > 0 {
		n, err := sendmsg2Polled(int(fd), w.hdr, w.data, w.oob)
		if err == errAgain {
			return false
		}
		if err != nil {
			w.err = os.NewSyscallError("sendmsg", err)
			return true
		}
		if n > 0 {
			w.started = true
			w.oob = nil
		}
		k := min(n, len(w.hdr))
		w.hdr, n = w.hdr[k:], n-k
		w.data = w.data[n:]
	}
	return true
}

// writeFrame writes one frame: its descriptors go with the sendmsg that
// writes the header's first byte, and with no other.
func (c *Conn) writeFrame(hdr, data []byte, fds []int) error {
	w := &c.wst
	w.hdr, w.data, w.oob, w.err = hdr, data, nil, nil
	if len(fds) > 0 {
		w.oob = c.woob[:putRightsHeader(c.woob[:], len(fds))]
		for i, fd := range fds {
			putFD(w.oob, i, fd)
		}
	}
	err := c.rc.Write(c.writeFn)
	w.hdr, w.data, w.oob = nil, nil, nil
	if err != nil {
		return err
	}
	return w.err
}

// ReadMsg reads one whole message: its data and its files, in order. The
// caller owns the files (close-on-exec) and must close them.
//
// It returns io.EOF once the peer has closed between messages, for this and
// every later call, and io.ErrUnexpectedEOF if the peer closed in the middle
// of a message (then io.EOF). A deadline gives an error wrapping
// os.ErrDeadlineExceeded and loses nothing: the next ReadMsg goes on with the
// same message. Close from another goroutine unblocks it with an error
// wrapping net.ErrClosed. A stream that breaks PROTOCOL.md or the read limits
// gives an error wrapping ErrProtocol, and nothing more is read from it.
// Whatever the error, every descriptor that arrived for an unfinished message
// is closed when the message is abandoned, never leaked.
//
// ReadMsgFDs reads the same messages as numbers, without an *os.File each.
func (c *Conn) ReadMsg() (data []byte, files []*os.File, err error) {
	if err := c.checkType(); err != nil {
		return nil, nil, err
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	data, fds, err := c.readMsg(nil)
	if err != nil {
		return nil, nil, err
	}
	if data == nil {
		data = []byte{}
	}
	if len(fds) > 0 {
		files = make([]*os.File, len(fds))
		for i, fd := range fds {
			files[i] = os.NewFile(uintptr(fd), "fdsend-received")
		}
	}
	return data, files, nil
}

// ReadMsgFDs reads one whole message as ReadMsg does, appending its data to
// data and its descriptor numbers to fds, and returns the extended slices.
// The slices grow as needed, as append does: a message is never cut, and
// the read limits (SetReadLimits) bound what it can add. Reusing them,
//
//	data, fds, err = c.ReadMsgFDs(data[:0], fds[:0])
//
// allocates nothing once they have grown to the largest message. The
// descriptors are close-on-exec and the caller's, to close (CloseFDs closes
// them all). Errors, deadlines and Close are as for ReadMsg; with an error,
// data and fds come back with their lengths unchanged and nothing added,
// and no descriptor is left open. data's spare capacity is written to only
// during the call.
func (c *Conn) ReadMsgFDs(data []byte, fds []int) ([]byte, []int, error) {
	if err := c.checkType(); err != nil {
		return data, fds, err
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	msg, got, err := c.readMsg(data)
	if err != nil {
		return data, fds, err
	}
	return msg, append(fds, got...), nil
}

// readMsg reads one whole message, appending its data to dst (straight into
// dst's spare capacity if the message fits there). The descriptors it
// returns are the Conn's slice, valid until the next read: the caller, who
// holds rmu, takes them over before releasing it.
func (c *Conn) readMsg(dst []byte) ([]byte, []int, error) {
	if c.rerr != nil {
		return nil, nil, c.rerr
	}
	if c.rbuf == nil {
		c.rbuf = make([]byte, readAhead)
	}
	data, fds, err := c.readLoop(dst)
	if err != nil && c.inData && c.msgInCaller {
		// The message goes on in a later call, maybe with another buffer:
		// what has arrived moves out of the caller's.
		own := make([]byte, min(c.msgLen, max(initialAlloc, c.msgGot)))
		copy(own, c.msgData[:c.msgGot])
		c.msgData, c.msgInCaller = own, false
	}
	return data, fds, err
}

// readLoop reads frames until a message is whole. The caller holds rmu.
func (c *Conn) readLoop(dst []byte) ([]byte, []int, error) {
	for {
		if c.inData {
			if c.msgData == nil && c.msgLen > 0 {
				if cap(dst)-len(dst) >= c.msgLen {
					c.msgData = dst[len(dst) : len(dst)+c.msgLen]
					c.msgInCaller = true
				} else {
					c.msgData = make([]byte, min(c.msgLen, initialAlloc))
				}
			}
			k := copy(c.msgData[c.msgGot:], c.rbuf[c.rstart:c.rend])
			c.rstart += k
			c.msgGot += k
			if c.msgGot == c.msgLen {
				return c.finishMessage(dst)
			}
			if c.msgGot == len(c.msgData) {
				// Past the first allocation: grow as the data arrives, so
				// a header alone cannot make us allocate the read limit.
				grown := make([]byte, min(2*len(c.msgData), c.msgLen))
				copy(grown, c.msgData)
				c.msgData = grown
			}
			// Read the rest of the frame straight into the message, never
			// past the frame's end.
			if err := c.fill(c.msgData[c.msgGot:], true); err != nil {
				return nil, nil, err
			}
			continue
		}
		if c.rend-c.rstart < frameHeaderLen {
			if c.rstart > 0 {
				c.rend = copy(c.rbuf, c.rbuf[c.rstart:c.rend])
				c.rstart = 0
			}
			if err := c.fill(c.rbuf[c.rend:], false); err != nil {
				return nil, nil, err
			}
			continue
		}
		if err := c.readHeader(); err != nil {
			return nil, nil, err
		}
		if !c.inData && !c.inMessage {
			// Not reached: a final frame always enters inData.
			return nil, nil, c.fail(fmt.Errorf("%w: internal state", ErrProtocol))
		}
	}
}

// readHeader parses the buffered header at rstart, gives it the descriptors
// sent with it, and enters its data or the next frame.
func (c *Conn) readHeader() error {
	start := c.roff - int64(c.rend-c.rstart) // stream offset of the header's first byte
	h, err := parseFrameHeader(c.rbuf[c.rstart : c.rstart+frameHeaderLen])
	if err != nil {
		return c.fail(err)
	}
	c.rstart += frameHeaderLen
	c.inMessage = true
	if maxFiles := c.maxFiles.Load(); int64(len(c.msgFiles)+h.nfiles) > maxFiles {
		return c.fail(fmt.Errorf("%w: message has more than %d files (the read limit)", ErrProtocol, maxFiles))
	}
	if maxBytes := c.maxBytes.Load(); h.length > uint64(maxBytes) {
		return c.fail(fmt.Errorf("%w: message of %d bytes is over the %d-byte read limit", ErrProtocol, h.length, maxBytes))
	}
	// The descriptors sent with this frame came with the recvmsg that
	// returned its first byte.
	claimed := false
	for i := range c.batches {
		b := &c.batches[i]
		if b.fds == nil || start < b.start || start >= b.end {
			continue
		}
		if h.nfiles == 0 {
			break // another frame starting in that read may claim them
		}
		if len(b.fds) != h.nfiles {
			return c.fail(fmt.Errorf("%w: frame announces %d descriptors, %d arrived with it", ErrProtocol, h.nfiles, len(b.fds)))
		}
		c.msgFiles = append(c.msgFiles, b.fds...)
		b.fds = nil
		claimed = true
		break
	}
	if h.nfiles > 0 && !claimed {
		return c.fail(fmt.Errorf("%w: frame announces %d descriptors, none arrived with its first byte", ErrProtocol, h.nfiles))
	}
	next := start + frameHeaderLen + int64(h.length)
	if !h.more {
		c.msgLen = int(h.length)
		c.msgData = nil // made when the data is read (readLoop)
		c.msgGot = 0
		c.inData = true
	}
	return c.checkOrphans(next)
}

// checkOrphans fails if a batch of descriptors can no longer be claimed: no
// frame starts in the bytes of its read before next, the offset of the next
// frame's first byte.
func (c *Conn) checkOrphans(next int64) error {
	kept := c.batches[:0]
	var orphan error
	for _, b := range c.batches {
		if b.fds == nil {
			continue
		}
		if b.end <= next {
			orphan = fmt.Errorf("%w: %d descriptors arrived on bytes of a frame that announced none", ErrProtocol, len(b.fds))
		}
		kept = append(kept, b)
	}
	c.batches = kept
	if orphan != nil {
		return c.fail(orphan)
	}
	return nil
}

// nextFrameStart is the stream offset of the first byte of the next frame
// not yet parsed.
func (c *Conn) nextFrameStart() int64 {
	if c.inData {
		return c.roff + int64(c.msgLen-c.msgGot) - int64(c.rend-c.rstart)
	}
	return c.roff - int64(c.rend-c.rstart)
}

// fill performs one recvmsg into dst. direct reads go into the message being
// built; others into the read-ahead buffer.
//
// One receive takes at most as many descriptors as the read limit allows a
// message, with a control buffer sized for just those (none at all under a
// limit of 0), so the kernel installs no more in this process; the rest of
// an oversized batch is discarded by the kernel and reported as truncation.
func (c *Conn) fill(dst []byte, direct bool) error {
	room := int(min(c.maxFiles.Load(), maxFilesPerMsg))
	oob := c.roob[:c.ctlLen(room)]
	n, oobn, flags, err := recvOn(c.uc, dst, oob, 0)
	if err != nil {
		return c.opError("readmsg", err)
	}
	nfds, dropped := takeFDs(oob[:oobn], c.fdbuf[:room])
	if dropped {
		flags |= msgCtrunc
	}
	var fds []int
	if nfds > 0 {
		if len(c.batches) == 0 {
			c.slab = c.slab[:0] // nothing refers to it any more
		}
		start := len(c.slab)
		c.slab = append(c.slab, c.fdbuf[:nfds]...)
		fds = c.slab[start:len(c.slab):len(c.slab)]
	}
	if flags&msgCtrunc != 0 {
		CloseFDs(fds)
		if room < maxFilesPerMsg && nfds == room {
			// The buffer had room for what the read limit allows a
			// message, it is full, and the peer sent more with one write.
			return c.fail(fmt.Errorf("%w: message has more than %d files (the read limit): %w", ErrProtocol, room, ErrTruncated))
		}
		return c.fail(fmt.Errorf("%w: descriptors were cut (more than %d with one write, or this process is out of descriptors): %w", ErrProtocol, maxFilesPerMsg, ErrTruncated))
	}
	if n == 0 {
		CloseFDs(fds)
		return c.endOfStream()
	}
	start := c.roff
	c.roff += int64(n)
	if direct {
		c.msgGot += n
	} else {
		c.rend += n
	}
	if fds != nil {
		c.batches = append(c.batches, batch{fds: fds, start: start, end: c.roff})
		// Descriptors of the message being read and of frames not yet
		// parsed: within the limits that is at most the current message's
		// and the next one's, so a peer cannot pile up more.
		held := len(c.msgFiles)
		for _, b := range c.batches {
			held += len(b.fds)
		}
		if maxFiles := c.maxFiles.Load(); int64(held) > 2*maxFiles {
			return c.fail(fmt.Errorf("%w: %d descriptors arrived for frames not yet read, more than the read limit of %d a message allows", ErrProtocol, held, maxFiles))
		}
	}
	return c.checkOrphans(c.nextFrameStart())
}

// ctlLen is the size of the control buffer for a receive of up to n
// descriptors: room for exactly n, after room for the headers the socket's
// options make the kernel put first (read once, at the first ReadMsg); 0
// when there is nothing to receive. Where the kernel installs descriptors
// beyond the buffer anyway (fullControlBuffer), the buffer is as RecvMsg
// sizes it.
func (c *Conn) ctlLen(n int) int {
	if fullControlBuffer {
		return oobLen(n)
	}
	size := c.ctlHead
	if n > 0 {
		size += rightsLen(n)
	}
	return min(size, oobRecvMax)
}

// endOfStream handles a read of zero bytes: the peer has closed.
func (c *Conn) endOfStream() error {
	mid := c.inMessage || c.rend > c.rstart || len(c.batches) > 0
	c.discard()
	c.rerr = io.EOF
	if mid {
		return io.ErrUnexpectedEOF
	}
	return io.EOF
}

// finishMessage hands over the message just completed: its data appended
// to dst, and its descriptors, which stay in c.msgFiles's array until the
// next read.
func (c *Conn) finishMessage(dst []byte) ([]byte, []int, error) {
	var data []byte
	switch {
	case c.msgInCaller:
		data = dst[:len(dst)+c.msgLen]
	case len(dst) == 0 && c.msgData != nil:
		data = c.msgData[:c.msgLen] // the Conn's own, handed over whole
	default:
		data = append(dst, c.msgData[:c.msgLen]...)
	}
	fds := c.msgFiles
	c.msgFiles = c.msgFiles[:0]
	c.msgData, c.msgLen, c.msgGot, c.inData, c.inMessage, c.msgInCaller = nil, 0, 0, false, false, false
	return data, fds, nil
}

// fail abandons the message in progress and makes err sticky: after a
// protocol error the stream cannot be read further.
func (c *Conn) fail(err error) error {
	c.discard()
	c.rerr = err
	return err
}

// discard closes every descriptor received for the unfinished message and
// every unclaimed one, and forgets the message.
func (c *Conn) discard() {
	CloseFDs(c.msgFiles)
	for _, b := range c.batches {
		CloseFDs(b.fds)
	}
	c.msgFiles, c.batches = nil, nil
	c.msgData, c.msgLen, c.msgGot, c.inData, c.inMessage, c.msgInCaller = nil, 0, 0, false, false, false
	c.rstart, c.rend = 0, 0
}

// Close closes the socket, which unblocks any ReadMsg or WriteMsg with an
// error wrapping net.ErrClosed, and closes every descriptor received for a
// message not yet returned.
func (c *Conn) Close() error {
	if c.uc == nil {
		return &ArgError{Arg: "c", Type: "*net.UnixConn", Err: errNil}
	}
	err := c.uc.Close()
	c.rmu.Lock()
	c.discard()
	c.rerr = c.opError("readmsg", net.ErrClosed)
	c.rmu.Unlock()
	return err
}

// SetDeadline sets the read and write deadlines, as net.Conn's does.
func (c *Conn) SetDeadline(t time.Time) error { return c.uc.SetDeadline(t) }

// SetReadDeadline sets the deadline for ReadMsg, also one already waiting.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.uc.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline for WriteMsg, also one already waiting.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.uc.SetWriteDeadline(t) }

// LocalAddr returns the local address.
func (c *Conn) LocalAddr() net.Addr { return c.uc.LocalAddr() }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.uc.RemoteAddr() }

// UnixConn returns the underlying socket, for options such as buffer sizes.
// Reading or writing it directly breaks the framing. Options that add
// control messages to every receive (SO_PASSCRED, SO_PASSPIDFD, SO_PASSSEC)
// are read once, at the first ReadMsg, to size its control buffer: set them
// before it (turned on later, their headers take the descriptors' room and
// a message with descriptors fails as truncated).
func (c *Conn) UnixConn() *net.UnixConn { return c.uc }

// PeerCred returns the credentials of the peer process (see PeerCred).
func (c *Conn) PeerCred() (Cred, error) { return PeerCred(c.uc) }
