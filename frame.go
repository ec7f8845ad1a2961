package fdsend

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The frame header of PROTOCOL.md: magic "fd", version, flags, the number of
// descriptors with the frame, and the length of its data, big-endian.
const (
	frameHeaderLen = 16
	frameVersion   = 1
	frameMore      = 0x01 // the message continues in the next frame
	frameMagic0    = 'f'
	frameMagic1    = 'd'
)

// Default limits of what one message may carry when read.
const (
	DefaultMaxMsgBytes = 64 << 20
	DefaultMaxMsgFiles = 16384
)

// maxFilesPerMsg is the most descriptors one message may carry (Linux's
// SCM_MAX_FD; the BSDs accept more, but a portable sender stays below it).
const maxFilesPerMsg = 253

// maxFrameLength is the largest length field the format allows (2^62 bytes),
// so that stream offsets computed from it never overflow an int64.
const maxFrameLength = 1 << 62

// ErrProtocol is wrapped by the errors ReadMsg returns for a stream that
// does not follow PROTOCOL.md: a malformed header, a message over the
// limits, descriptors that do not match what a frame announced. The stream
// cannot be read further.
var ErrProtocol = errors.New("fdsend: protocol error")

// frameHeader is a decoded header.
type frameHeader struct {
	more   bool
	nfiles int
	length uint64
}

// putFrameHeader encodes a header into b[:frameHeaderLen].
func putFrameHeader(b []byte, h frameHeader) {
	b[0], b[1], b[2] = frameMagic0, frameMagic1, frameVersion
	b[3] = 0
	if h.more {
		b[3] = frameMore
	}
	binary.BigEndian.PutUint32(b[4:], uint32(h.nfiles))
	binary.BigEndian.PutUint64(b[8:], h.length)
}

// parseFrameHeader decodes and checks a header on its own: magic, version,
// flags, at most maxFilesPerMsg descriptors, and a MORE frame carrying
// exactly maxFilesPerMsg descriptors and no data.
func parseFrameHeader(b []byte) (frameHeader, error) {
	if len(b) < frameHeaderLen {
		return frameHeader{}, fmt.Errorf("%w: short header (%d bytes)", ErrProtocol, len(b))
	}
	if b[0] != frameMagic0 || b[1] != frameMagic1 {
		return frameHeader{}, fmt.Errorf("%w: bad magic %#02x %#02x", ErrProtocol, b[0], b[1])
	}
	if b[2] != frameVersion {
		return frameHeader{}, fmt.Errorf("%w: unknown version %d", ErrProtocol, b[2])
	}
	if b[3]&^frameMore != 0 {
		return frameHeader{}, fmt.Errorf("%w: unknown flags %#02x", ErrProtocol, b[3])
	}
	h := frameHeader{
		more:   b[3]&frameMore != 0,
		length: binary.BigEndian.Uint64(b[8:]),
	}
	if h.length > maxFrameLength {
		return frameHeader{}, fmt.Errorf("%w: frame length %d is beyond the format's limit", ErrProtocol, h.length)
	}
	n := binary.BigEndian.Uint32(b[4:])
	if n > maxFilesPerMsg {
		return frameHeader{}, fmt.Errorf("%w: frame announces %d descriptors, at most %d", ErrProtocol, n, maxFilesPerMsg)
	}
	h.nfiles = int(n)
	if h.more && (h.nfiles != maxFilesPerMsg || h.length != 0) {
		return frameHeader{}, fmt.Errorf("%w: continued frame with %d descriptors and %d bytes (want %d and 0)", ErrProtocol, h.nfiles, h.length, maxFilesPerMsg)
	}
	return h, nil
}
