//go:build linux || darwin || freebsd || netbsd || openbsd

package fdsend

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Layout of a control-message header (struct cmsghdr) on this system. The
// length field is 8 bytes on 64-bit Linux and 4 bytes elsewhere; level and
// type are 32-bit. Fields are read with explicit offsets so that nothing
// depends on the alignment of the buffer.
const (
	cmsgHdrSize  = unix.SizeofCmsghdr
	cmsgLenOff   = unsafe.Offsetof(unix.Cmsghdr{}.Len)
	cmsgLenSize  = unsafe.Sizeof(unix.Cmsghdr{}.Len)
	cmsgLevelOff = unsafe.Offsetof(unix.Cmsghdr{}.Level)
	cmsgTypeOff  = unsafe.Offsetof(unix.Cmsghdr{}.Type)
)

// maxFilesPerMsg is the most descriptors one message may carry (Linux's
// SCM_MAX_FD; the BSDs accept more, but a portable sender stays below it).
const maxFilesPerMsg = 253

// cmsgAlign rounds n up to the control-message alignment of this system.
func cmsgAlign(n int) int { return unix.CmsgSpace(n) - unix.CmsgSpace(0) }

// nextCmsg reads the first control message of b, a buffer filled by
// recvmsg(2) (or by anyone: nothing in it is trusted), and returns its level,
// type and data, and the rest of the buffer after it. ok is false at the end
// of the buffer or at a header shorter than a header; nothing after it is
// read. A header that claims more than what remains is cut to what remains
// (darwin keeps the untruncated length when it truncates control data, and
// the descriptors that did fit must still be found and closed) and ends the
// walk. Every header length is
// checked against the bytes that remain, so data never reaches past b. It is
// a plain function of its argument, not a method on a pointer, so that the
// escape analysis keeps the caller's buffer on its stack.
func nextCmsg(b []byte) (level, typ int32, data, rest []byte, ok bool) {
	if len(b) < cmsgHdrSize {
		return 0, 0, nil, nil, false
	}
	var l uint64
	if cmsgLenSize == 8 {
		l = binary.NativeEndian.Uint64(b[cmsgLenOff:])
	} else {
		l = uint64(binary.NativeEndian.Uint32(b[cmsgLenOff:]))
	}
	start := uint64(unix.CmsgLen(0))
	if l < start || start > uint64(len(b)) {
		return 0, 0, nil, nil, false
	}
	if l > uint64(len(b)) {
		l = uint64(len(b))
	}
	level = int32(binary.NativeEndian.Uint32(b[cmsgLevelOff:]))
	typ = int32(binary.NativeEndian.Uint32(b[cmsgTypeOff:]))
	data = b[start:l:l]
	if adv := cmsgAlign(int(l)); adv < len(b) {
		rest = b[adv:]
	}
	return level, typ, data, rest, true
}

// putRightsHeader writes a SCM_RIGHTS header for n descriptors at the start of
// b and returns the total space the message occupies. The caller writes the
// descriptors with putFD. b must hold unix.CmsgSpace(4*n) bytes.
func putRightsHeader(b []byte, n int) int {
	space := unix.CmsgSpace(4 * n)
	clear(b[:space])
	l := uint64(unix.CmsgLen(4 * n))
	if cmsgLenSize == 8 {
		binary.NativeEndian.PutUint64(b[cmsgLenOff:], l)
	} else {
		binary.NativeEndian.PutUint32(b[cmsgLenOff:], uint32(l))
	}
	binary.NativeEndian.PutUint32(b[cmsgLevelOff:], uint32(unix.SOL_SOCKET))
	binary.NativeEndian.PutUint32(b[cmsgTypeOff:], uint32(unix.SCM_RIGHTS))
	return space
}

// putFD stores descriptor i of a SCM_RIGHTS message built by putRightsHeader.
func putFD(b []byte, i int, fd int) {
	binary.NativeEndian.PutUint32(b[unix.CmsgLen(0)+4*i:], uint32(int32(fd)))
}

// fdAt reads descriptor i of a SCM_RIGHTS payload.
func fdAt(data []byte, i int) int {
	return int(int32(binary.NativeEndian.Uint32(data[4*i:])))
}
