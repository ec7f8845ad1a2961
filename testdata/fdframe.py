#!/usr/bin/env python3
"""An independent implementation of the fdsend wire format (PROTOCOL.md).

Written from PROTOCOL.md alone, with the standard library only, so that the
Go tests can prove the document is enough to interoperate with fdsend.Conn.
It is used only by tests.

Module API:
    write_msg(sock, data, fds)              send one message
    read_msg(sock, max_bytes, max_files)    receive one message -> (data, fds)
    close_reader(sock)                      drop read-ahead state, close its fds

read_msg raises EOFError on a clean end of stream (and on every later call),
UnexpectedEOFError when the peer closed in the middle of a message (then
EOFError), and ProtocolError on anything the format forbids (and on every
later call). On either error every descriptor received for the unfinished
message, and every descriptor read ahead, is closed.

CLI (the socket is inherited as descriptor 3):
    echo N                 read N messages, answer each with b"echo:"+data
                           and the received descriptors, then close them;
                           print the write/read counters as JSON
    send-files DIR N [SIZE]
                           send one message with N descriptors opened read-only
                           on DIR/f0..f{N-1}; data b"py", or SIZE bytes of the
                           pattern byte(i % 251) when SIZE is given
    send-many DIR N:SIZE...
                           send one message per argument, with N descriptors
                           on DIR/f0..f{N-1} and SIZE bytes of the pattern
    recv-report [K]        read one message (or K), print a JSON report of
                           each on a line of its own
    lie KIND               send a valid message b"ok" with one descriptor, then
                           a frame that breaks the format in the way KIND says
                           (see LIES), then exit
    selftest               Python-to-Python checks over socket.socketpair()

With FDFRAME_SMALLBUF set in the environment, the inherited socket gets 4 KiB
buffers and is made non-blocking, so that writes are partial.
"""

import array
import hashlib
import json
import os
import select
import socket
import struct
import sys
import threading
import weakref

MAGIC = b"fd"
VERSION = 1
FLAG_MORE = 0x01
HEADER = struct.Struct(">2sBBIQ")  # magic, version, flags, nfiles, length
assert HEADER.size == 16
MAX_FDS_PER_FRAME = 253

# Room for 253 descriptors plus credentials (SO_PASSCRED sends them with
# every read on Linux), so that a well-formed frame never sets MSG_CTRUNC.
_ANCBUF = socket.CMSG_SPACE(MAX_FDS_PER_FRAME * 4) + socket.CMSG_SPACE(64)
_RECV_FLAGS = getattr(socket, "MSG_CMSG_CLOEXEC", 0)

# Counters the self-test reads to prove the interesting paths ran.
stats = {"partial_writes": 0, "eagain": 0, "recv_calls": 0, "direct_reads": 0}


class ProtocolError(Exception):
    """The peer broke the wire format; the stream is unusable."""


class UnexpectedEOFError(Exception):
    """The peer closed the stream in the middle of a message."""


def _close_fds(fds):
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


# ---------------------------------------------------------------- writing

def _wait_writable(sock):
    while True:
        _, w, _ = select.select([], [sock], [], 30)
        if w:
            return
        raise TimeoutError("fdframe: socket not writable for 30 s")


def _send_frame_bytes(sock, bufs, fds):
    """Write all of bufs; fds go with the sendmsg that writes the first byte.

    A sendmsg that writes nothing (EAGAIN) did not send the descriptors:
    they go with the retry. Later calls carry no control data.
    """
    views = [memoryview(b).cast("B") for b in bufs]
    views = [v for v in views if len(v)]
    total = sum(len(v) for v in views)
    if total == 0:
        raise ValueError("fdframe: a frame has at least its header")
    anc = []
    if fds:
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]
    sent = 0
    while sent < total:
        try:
            n = sock.sendmsg(views, anc if sent == 0 else [])
        except BlockingIOError:
            stats["eagain"] += 1
            _wait_writable(sock)
            continue
        if n <= 0:
            continue
        sent += n
        if sent < total:
            stats["partial_writes"] += 1
        # Drop what was written from the front of the vector.
        while n:
            if n >= len(views[0]):
                n -= len(views[0])
                views.pop(0)
            else:
                views[0] = views[0][n:]
                n = 0


def _header(more, nfiles, length):
    return HEADER.pack(MAGIC, VERSION, FLAG_MORE if more else 0, nfiles, length)


def write_msg(sock, data, fds):
    """Send data with the descriptors fds (not closed) as one message.

    More than 253 descriptors are split over MORE frames of exactly 253
    descriptors and no data; the last frame holds the rest and all the data.
    Each frame's descriptors travel with the sendmsg that writes its first
    header byte, and no sendmsg writes bytes of two frames. Callers
    serialise writers on one socket.
    """
    data = memoryview(data).cast("B")
    fds = list(fds)
    nframes = max(1, -(-len(fds) // MAX_FDS_PER_FRAME))
    for i in range(nframes):
        chunk = fds[i * MAX_FDS_PER_FRAME:(i + 1) * MAX_FDS_PER_FRAME]
        last = i == nframes - 1
        if last:
            _send_frame_bytes(sock, [_header(False, len(chunk), len(data)), data], chunk)
        else:
            _send_frame_bytes(sock, [_header(True, len(chunk), 0)], chunk)


# ---------------------------------------------------------------- reading

class _Call:
    """One recvmsg that returned descriptors: stream offsets [start, end)."""

    __slots__ = ("start", "end", "fds", "claimed")

    def __init__(self, start, end, fds):
        self.start, self.end, self.fds, self.claimed = start, end, fds, False


class Reader:
    """Receiving side of one stream; keeps read-ahead bytes and descriptors.

    Every byte read has a stream offset; every recvmsg that returned
    descriptors is remembered with the offsets of the bytes it returned, so
    that a frame header found anywhere in the read-ahead is matched with the
    call that returned its first byte.
    """

    def __init__(self, sock, read_ahead=4096):
        self.sock = sock
        self.read_ahead = max(1, read_ahead)
        self.buf = bytearray()
        self.pos = 0            # buf[pos:] is unconsumed
        self.read_off = 0       # stream offset of the next byte the kernel returns
        self.next_frame = 0     # stream offset of the first byte of the next unparsed frame
        self.calls = []         # _Call records not yet settled
        self.msg_fds = []       # descriptors claimed by the unfinished message
        self.error = None       # ProtocolError once the stream is broken
        self.eof = False

    # -- bookkeeping

    def _buffered(self):
        return len(self.buf) - self.pos

    def _take(self, n):
        out = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        if self.pos > 65536 and self.pos * 2 > len(self.buf):
            del self.buf[:self.pos]
            self.pos = 0
        return out

    def _drop_all_fds(self):
        fds = self.msg_fds
        self.msg_fds = []
        for c in self.calls:
            if not c.claimed:
                fds.extend(c.fds)
            c.fds = []
        self.calls = []
        _close_fds(fds)

    def _fail(self, why, extra_fds=()):
        _close_fds(extra_fds)
        self._drop_all_fds()
        self.error = ProtocolError("fdframe: " + why)
        raise self.error

    def _unexpected_eof(self, why):
        self._drop_all_fds()
        self.eof = True
        raise UnexpectedEOFError("fdframe: unexpected end of stream " + why)

    def _settle(self):
        """Check calls whose bytes all lie before the next unparsed frame.

        Every frame that starts in such a call has been parsed, so if none
        claimed its descriptors they are on the wrong bytes.
        """
        keep = []
        for c in self.calls:
            if c.end <= self.next_frame:
                if not c.claimed:
                    self._fail("%d descriptors arrived with stream bytes [%d, %d), "
                               "which hold no frame announcing them" % (len(c.fds), c.start, c.end))
            else:
                keep.append(c)
        self.calls = keep

    def close(self):
        self._drop_all_fds()

    # -- the one place that calls recvmsg

    def _recv(self, into=None, size=0):
        while True:
            try:
                if into is not None:
                    n, ancdata, flags, _ = self.sock.recvmsg_into([into], _ANCBUF, _RECV_FLAGS)
                    stats["direct_reads"] += 1
                else:
                    data, ancdata, flags, _ = self.sock.recvmsg(size, _ANCBUF, _RECV_FLAGS)
                    n = len(data)
                break
            except BlockingIOError:
                if not select.select([self.sock], [], [], 30)[0]:
                    raise TimeoutError("fdframe: nothing to read for 30 s")
        stats["recv_calls"] += 1
        fds = []
        for level, typ, cdata in ancdata:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds.extend(array.array("i", cdata[:len(cdata) - len(cdata) % 4]))
        start = self.read_off
        self.read_off += n
        if flags & socket.MSG_CTRUNC:
            self._fail("control data truncated (MSG_CTRUNC)", fds)
        if n == 0 and fds:
            self._fail("descriptors arrived without data", fds)
        if into is None:
            self.buf += data
        if fds:
            self.calls.append(_Call(start, start + n, fds))
            self._settle()
        return n

    def _fill(self, n):
        """Buffer at least n bytes; False at end of stream."""
        while self._buffered() < n:
            if self._recv(size=max(self.read_ahead, n - self._buffered())) == 0:
                return False
        return True

    # -- frames and messages

    def _header(self, off, raw, max_bytes, max_files):
        magic, version, flags, nfiles, length = HEADER.unpack(raw)
        if magic != MAGIC:
            self._fail("bad magic %r at offset %d" % (magic, off))
        if version != VERSION:
            self._fail("unsupported version %d" % version)
        if flags & ~FLAG_MORE:
            self._fail("unknown flags 0x%02x" % flags)
        if nfiles > MAX_FDS_PER_FRAME:
            self._fail("frame announces %d descriptors, more than %d" % (nfiles, MAX_FDS_PER_FRAME))
        more = bool(flags & FLAG_MORE)
        if more and length:
            self._fail("MORE frame with %d data bytes" % length)
        if more and nfiles != MAX_FDS_PER_FRAME:
            self._fail("MORE frame with %d descriptors, not %d" % (nfiles, MAX_FDS_PER_FRAME))
        if len(self.msg_fds) + nfiles > max_files:
            self._fail("message has more than %d descriptors" % max_files)
        if length > max_bytes:
            self._fail("message of %d bytes exceeds the limit of %d" % (length, max_bytes))
        call = None
        for c in self.calls:
            if c.start <= off < c.end:
                call = c
                break
        if nfiles:
            if call is None:
                self._fail("frame at offset %d announces %d descriptors; none arrived with its first byte"
                           % (off, nfiles))
            if call.claimed:
                self._fail("frame at offset %d: descriptors of its read were claimed by another frame" % off)
            if len(call.fds) != nfiles:
                self._fail("frame at offset %d announces %d descriptors, %d arrived"
                           % (off, nfiles, len(call.fds)))
            call.claimed = True
            self.msg_fds.extend(call.fds)
            call.fds = []
        self.next_frame = off + HEADER.size + length
        self._settle()
        return more, length

    def read_msg(self, max_bytes=64 << 20, max_files=16384):
        if self.error is not None:
            raise self.error
        if self.eof:
            raise EOFError("fdframe: end of stream")
        self.msg_fds = []
        first = True
        while True:
            off = self.next_frame
            if not self._fill(HEADER.size):
                if first and self._buffered() == 0:
                    self.eof = True
                    self._drop_all_fds()
                    raise EOFError("fdframe: end of stream")
                self._unexpected_eof("in a frame header" if self._buffered() else "after a MORE frame")
            more, length = self._header(off, self._take(HEADER.size), max_bytes, max_files)
            first = False
            if not more:
                break
        data = bytearray(length)
        got = min(length, self._buffered())
        data[:got] = self._take(got)
        view = memoryview(data)
        while got < length:
            rem = length - got
            if rem >= self.read_ahead:
                # Read straight into the message, bounded by the frame's end.
                n = self._recv(into=view[got:])
                if n == 0:
                    self._unexpected_eof("in frame data")
                got += n
            else:
                if not self._fill(1):
                    self._unexpected_eof("in frame data")
                k = min(rem, self._buffered())
                data[got:got + k] = self._take(k)
                got += k
        fds = self.msg_fds
        self.msg_fds = []
        return bytes(data), fds


_readers = weakref.WeakKeyDictionary()


def reader_for(sock, read_ahead=4096):
    r = _readers.get(sock)
    if r is None:
        r = _readers[sock] = Reader(sock, read_ahead)
    return r


def read_msg(sock, max_bytes=64 << 20, max_files=16384):
    """Receive one whole message from sock: (data, fds); the caller owns fds.

    Read-ahead is kept per socket object between calls.
    """
    return reader_for(sock).read_msg(max_bytes, max_files)


def close_reader(sock):
    r = _readers.pop(sock, None)
    if r is not None:
        r.close()


# ---------------------------------------------------------------- lies

def _devnulls(n):
    return [os.open(os.devnull, os.O_RDONLY) for _ in range(n)]


def _lie(sock, kind):
    """Write one frame that breaks PROTOCOL.md in the way kind says."""
    if kind == "fewer":        # announces 2, carries 1
        fds = _devnulls(1)
        _send_frame_bytes(sock, [_header(False, 2, 1), b"x"], fds)
    elif kind == "more":       # announces 1, carries 2
        fds = _devnulls(2)
        _send_frame_bytes(sock, [_header(False, 1, 1), b"x"], fds)
    elif kind == "none":       # announces 1, carries none
        fds = []
        _send_frame_bytes(sock, [_header(False, 1, 1), b"x"], fds)
    elif kind == "wrongbytes":  # announces 0; a descriptor rides on its data
        fds = _devnulls(1)
        _send_frame_bytes(sock, [_header(False, 0, 4)], [])
        _send_frame_bytes(sock, [b"data"], fds)
    elif kind == "middata":    # announces 1 and carries it, plus one on its data bytes
        fds = _devnulls(2)
        _send_frame_bytes(sock, [_header(False, 1, 4)], fds[:1])
        _send_frame_bytes(sock, [b"data"], fds[1:])
    elif kind == "badmagic":
        fds = _devnulls(1)
        _send_frame_bytes(sock, [HEADER.pack(b"xx", VERSION, 0, 1, 1), b"x"], fds)
    elif kind == "badversion":
        fds = _devnulls(1)
        _send_frame_bytes(sock, [HEADER.pack(MAGIC, 2, 0, 1, 1), b"x"], fds)
    elif kind == "badflags":
        fds = _devnulls(1)
        _send_frame_bytes(sock, [HEADER.pack(MAGIC, VERSION, 0x02, 1, 1), b"x"], fds)
    elif kind == "morewithdata":  # MORE frame with 253 descriptors and data
        fds = _devnulls(MAX_FDS_PER_FRAME)
        _send_frame_bytes(sock, [_header(True, MAX_FDS_PER_FRAME, 1), b"x"], fds)
    elif kind == "shortmore":  # MORE frame with fewer than 253 descriptors
        fds = _devnulls(1)
        _send_frame_bytes(sock, [_header(True, 1, 0)], fds)
    elif kind == "toomany":    # announces 254 in one frame (carries 253)
        fds = _devnulls(MAX_FDS_PER_FRAME)
        _send_frame_bytes(sock, [_header(False, MAX_FDS_PER_FRAME + 1, 0)], fds)
    elif kind == "midmsg":     # valid header, 10 of 100 data bytes, then close
        fds = _devnulls(1)
        _send_frame_bytes(sock, [_header(False, 1, 100), b"0123456789"], fds)
    elif kind == "midmore":    # a MORE frame, then close
        fds = _devnulls(MAX_FDS_PER_FRAME)
        _send_frame_bytes(sock, [_header(True, MAX_FDS_PER_FRAME, 0)], fds)
    elif kind == "midheader":  # half a header, then close
        fds = _devnulls(1)
        _send_frame_bytes(sock, [_header(False, 1, 1)[:7]], fds)
    else:
        raise ValueError("unknown lie %r" % kind)
    _close_fds(fds)


LIES = ["fewer", "more", "none", "wrongbytes", "middata", "badmagic", "badversion",
        "badflags", "morewithdata", "shortmore", "toomany", "midmsg", "midmore", "midheader"]
EOF_LIES = {"midmsg", "midmore", "midheader"}


# ---------------------------------------------------------------- CLI

def pattern(n):
    """n bytes of byte(i % 251): the data the Go tests check big messages with."""
    block = bytes(range(251))
    return (block * (n // 251 + 1))[:n]


def _raise_nofile():
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass


def _report(data, fds):
    contents = []
    for fd in fds:
        contents.append(os.pread(fd, 64, 0).decode("latin-1"))
    return {"len": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "nfiles": len(fds), "contents": contents}


def main(argv):
    _raise_nofile()
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    mode, args = argv[0], argv[1:]
    if mode == "selftest":
        return selftest()
    sock = socket.socket(fileno=3)
    if os.environ.get("FDFRAME_SMALLBUF"):
        # Small buffers and a non-blocking socket: writes are partial.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
    if mode == "echo":
        for _ in range(int(args[0])):
            data, fds = read_msg(sock)
            try:
                write_msg(sock, b"echo:" + data, fds)
            finally:
                _close_fds(fds)
        print(json.dumps(stats))
    elif mode == "send-files":
        d, n = args[0], int(args[1])
        data = pattern(int(args[2])) if len(args) > 2 else b"py"
        fds = [os.open(os.path.join(d, "f%d" % i), os.O_RDONLY) for i in range(n)]
        try:
            write_msg(sock, data, fds)
        finally:
            _close_fds(fds)
    elif mode == "send-many":
        d = args[0]
        for spec in args[1:]:
            n, size = (int(x) for x in spec.split(":"))
            fds = [os.open(os.path.join(d, "f%d" % i), os.O_RDONLY) for i in range(n)]
            try:
                write_msg(sock, pattern(size), fds)
            finally:
                _close_fds(fds)
    elif mode == "recv-report":
        for _ in range(int(args[0]) if args else 1):
            data, fds = read_msg(sock)
            try:
                print(json.dumps(_report(data, fds)), flush=True)
            finally:
                _close_fds(fds)
    elif mode == "lie":
        ok = _devnulls(1)
        write_msg(sock, b"ok", ok)
        _close_fds(ok)
        _lie(sock, args[0])
    else:
        print("fdframe: unknown mode %r" % mode, file=sys.stderr)
        return 2
    sock.close()
    return 0


# ---------------------------------------------------------------- self-test

def _open_fd_count():
    return len(os.listdir("/proc/self/fd"))


def _ino(fd):
    st = os.fstat(fd)
    return (st.st_dev, st.st_ino)


def _check(cond, what):
    if not cond:
        raise AssertionError(what)


def _roundtrip(nfiles, size, small_buffers, read_ahead):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    files = []
    try:
        if small_buffers:
            a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            a.setblocking(False)
        files = _devnulls(nfiles)
        want_ids = [_ino(fd) for fd in files]
        data = pattern(size)
        err = []

        def writer():
            try:
                for _ in range(2):
                    write_msg(a, data, files)
                a.shutdown(socket.SHUT_WR)
            except BaseException as e:  # reported by the main thread
                err.append(e)

        t = threading.Thread(target=writer)
        t.start()
        r = Reader(b, read_ahead)
        for _ in range(2):
            got, fds = r.read_msg()
            try:
                _check(got == data, "data differs (%d bytes, want %d)" % (len(got), size))
                _check([_ino(fd) for fd in fds] == want_ids, "descriptors differ")
                _check(all(os.get_inheritable(fd) is False for fd in fds), "not close-on-exec")
            finally:
                _close_fds(fds)
        try:
            r.read_msg()
            _check(False, "no EOF")
        except EOFError:
            pass
        try:
            r.read_msg()
            _check(False, "no second EOF")
        except EOFError:
            pass
        t.join(60)
        _check(not t.is_alive(), "writer hung")
        if err:
            raise err[0]
    finally:
        _close_fds(files)
        a.close()
        b.close()


def _many_small(read_ahead):
    """Many small messages with descriptors back to back: reads span frames."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    fds = _devnulls(3)
    try:
        counts = [0, 1, 0, 2, 3, 0, 0, 1] * 8
        for i, k in enumerate(counts):
            write_msg(a, b"m%d" % i, fds[:k])
        a.close()
        r = Reader(b, read_ahead)
        for i, k in enumerate(counts):
            got, rfds = r.read_msg()
            _close_fds(rfds)
            _check(got == b"m%d" % i and len(rfds) == k, "message %d: %r with %d fds" % (i, got, len(rfds)))
        try:
            r.read_msg()
            _check(False, "no EOF")
        except EOFError:
            pass
    finally:
        _close_fds(fds)
        b.close()


def _expect_error(kind, read_ahead):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        ok = _devnulls(1)
        write_msg(a, b"ok", ok)
        _close_fds(ok)
        _lie(a, kind)
        a.close()
        r = Reader(b, read_ahead)
        got, fds = r.read_msg()
        _close_fds(fds)
        _check(got == b"ok" and len(fds) == 1, "%s: first message %r" % (kind, got))
        want = UnexpectedEOFError if kind in EOF_LIES else ProtocolError
        try:
            r.read_msg()
            _check(False, "%s: no error" % kind)
        except want:
            pass
        then = EOFError if kind in EOF_LIES else ProtocolError
        try:
            r.read_msg()
            _check(False, "%s: no error on the next read" % kind)
        except then:
            pass
    finally:
        b.close()


def _passcred():
    """SO_PASSCRED adds credentials to every read: full frames still fit."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    fds = _devnulls(506)
    try:
        write_msg(a, b"cred", fds)
        got, rfds = Reader(b).read_msg()
        _close_fds(rfds)
        _check(got == b"cred" and len(rfds) == 506, "SO_PASSCRED: %r with %d fds" % (got, len(rfds)))
    finally:
        _close_fds(fds)
        a.close()
        b.close()


def _limits():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    fds = _devnulls(300)
    try:
        write_msg(a, b"", fds)
        r = Reader(b)
        try:
            r.read_msg(max_files=299)
            _check(False, "max_files not enforced")
        except ProtocolError:
            pass
    finally:
        _close_fds(fds)
        a.close()
        b.close()
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        write_msg(a, b"12345", [])
        r = Reader(b)
        try:
            r.read_msg(max_bytes=4)
            _check(False, "max_bytes not enforced")
        except ProtocolError:
            pass
    finally:
        a.close()
        b.close()


def _example_bytes():
    """The examples in PROTOCOL.md, byte for byte."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    fds = _devnulls(300)
    try:
        write_msg(a, b"hi", fds[:2])
        raw, anc, _, _ = b.recvmsg(64, _ANCBUF)
        for _, _, c in anc:
            _close_fds(array.array("i", c))
        _check(raw == bytes.fromhex("66640100 00000002 0000000000000002 6869"), "example 1: %s" % raw.hex())
        write_msg(a, b"abc", fds)
        raw, anc, _, _ = b.recvmsg(64, _ANCBUF)
        _check(sum(len(c) // 4 for _, _, c in anc) == 253, "first frame's descriptors")
        for _, _, c in anc:
            _close_fds(array.array("i", c))
        _check(raw == bytes.fromhex("66640101 000000fd 0000000000000000"), "example 2a: %s" % raw.hex())
        raw, anc, _, _ = b.recvmsg(64, _ANCBUF)
        _check(sum(len(c) // 4 for _, _, c in anc) == 47, "second frame's descriptors")
        for _, _, c in anc:
            _close_fds(array.array("i", c))
        _check(raw == bytes.fromhex("66640100 0000002f 0000000000000003 616263"), "example 2b: %s" % raw.hex())
    finally:
        _close_fds(fds)
        a.close()
        b.close()


def selftest():
    before = _open_fd_count()
    _example_bytes()
    for nfiles in (0, 1, 253, 254, 1000):
        for size in (0, 5, 1 << 20):
            for small in (False, True):
                _roundtrip(nfiles, size, small, 4096)
    _roundtrip(300, 100, True, 1)
    _roundtrip(300, 100000, False, 1 << 16)
    _check(stats["partial_writes"] > 0, "no partial write happened")
    _check(stats["direct_reads"] > 0, "no direct read happened")
    for ra in (1, 7, 4096, 1 << 16):
        _many_small(ra)
    for kind in LIES:
        for ra in (1, 4096):
            _expect_error(kind, ra)
    _limits()
    _passcred()
    after = _open_fd_count()
    _check(after == before, "descriptor leak: %d open before, %d after" % (before, after))
    print("selftest ok", json.dumps(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
