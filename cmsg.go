//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

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

// oobSendMax bounds the control buffer of one message: a SCM_RIGHTS header
// with maxFilesPerMsg descriptors on any supported system.
const oobSendMax = 32 + 4*maxFilesPerMsg

// oobRecvMax bounds the control buffer of one receive: room for
// maxFilesPerMsg descriptors plus oobExtra.
const oobRecvMax = 64 + 4*maxFilesPerMsg + oobExtraMax

// oobExtraMax is an upper bound of oobExtra on every supported system.
const oobExtraMax = 256

// oobExtra is the room kept in every control buffer beyond the descriptors:
// a credentials header (Linux's SO_PASSCRED puts one before SCM_RIGHTS in
// every message) and a pidfd header (SO_PASSPIDFD), so that they never push
// the files out of the buffer. FreeBSD's LOCAL_CREDS header grows with the
// peer's groups and may exceed this; it comes with the first message only,
// and the cost there is reported truncation, never a leak.
var oobExtra = unix.CmsgSpace(168) + unix.CmsgSpace(4)

// oobLen returns the control buffer size for a receive of up to n files.
func oobLen(n int) int {
	if n > maxFilesPerMsg || fullControlBuffer {
		n = maxFilesPerMsg
	}
	return unix.CmsgSpace(4*n) + oobExtra
}

// rightsSpace is the size of a control buffer that carries n descriptors.
func rightsSpace(n int) int { return unix.CmsgSpace(4 * n) }

// takeFDs stores the descriptors of every SCM_RIGHTS header of a control
// buffer into fds, in order, and closes those that do not fit and any pidfd.
// dropped reports whether anything was closed.
func takeFDs(oob []byte, fds []int) (nfds int, dropped bool) {
	rest := oob
	for {
		var level, typ int32
		var data []byte
		var ok bool
		level, typ, data, rest, ok = nextCmsg(rest)
		if !ok {
			return nfds, dropped
		}
		if level != unix.SOL_SOCKET {
			continue
		}
		switch typ {
		case unix.SCM_RIGHTS:
			i := 0
			for ; i < len(data)/4 && nfds < len(fds); i++ {
				if fd := fdAt(data, i); fd >= 0 {
					fds[nfds] = fd
					nfds++
				}
			}
			if i < len(data)/4 && closePayload(data[4*i:]) {
				dropped = true
			}
		case scmPIDFD:
			if len(data) >= 4 {
				if fd := fdAt(data, 0); fd >= 0 {
					unix.Close(fd)
				}
			}
		}
	}
}

// closePayload closes the descriptors of (the rest of) a SCM_RIGHTS payload,
// those that did not fit the caller's room, with CloseFDs, and reports
// whether there were any. A payload holds at most maxFilesPerMsg on the
// systems that cap it; more are closed a buffer's worth at a time. It is a
// function of its own so that takeFDs's usual path does not clear the
// buffer.
//
//go:noinline
func closePayload(data []byte) (closed bool) {
	var buf [maxFilesPerMsg]int
	n := 0
	for i := 0; i < len(data)/4; i++ {
		fd := fdAt(data, i)
		if fd < 0 {
			continue
		}
		if n == len(buf) {
			CloseFDs(buf[:n])
			n = 0
		}
		buf[n] = fd
		n++
		closed = true
	}
	CloseFDs(buf[:n])
	return closed
}
