// Package fdkind says what a descriptor is. Inspect looks at it once (fstat;
// for a socket SO_TYPE, getsockname, SO_ACCEPTCONN and getpeername; on Linux
// the /proc/self/fd link) and returns a Desc, which two renderings put into
// words:
//
//   - Desc.Info, for package activation's taking functions and messages:
//     a sentence ("a listening IPv4 stream socket", "a pipe or FIFO") and
//     the Kind of thing a taking function wants;
//   - Desc.String, for the holder's listings: a short form with addresses
//     and paths ("tcp listener 127.0.0.1:8080", "unix stream connected ->
//     /run/x.sock", "file /var/log/x", "pipe").
//
// Of and Describe inspect and render in one call. FormatAddr is the one
// formatter of socket addresses. Nothing here changes, keeps or closes the
// descriptor looked at.
package fdkind

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Type is the type of file a descriptor refers to, as fstat reports it.
type Type int

const (
	OtherType   Type = iota // a type none of the names below covers (Desc.Mode has its bits)
	Regular                 // a regular file
	Directory               // a directory
	FIFO                    // a pipe or a named FIFO
	CharDevice              // a character device
	BlockDevice             // a block device
	Symlink                 // a symbolic link (opened with O_PATH)
	Socket                  // a socket: the Desc's socket fields say more
	AnonInode               // no file type at all: a Linux anonymous inode (eventfd, epoll, pidfd, ...)
)

// SockType is a socket's type, from SO_TYPE.
type SockType int

const (
	UnknownSock SockType = iota // SO_TYPE could not be read (Desc.Err says why)
	Stream
	Datagram
	SeqPacket
	Raw
	OtherSock // another type: Desc.SockNum is its number
)

// Family is the address family of a socket's local address.
type Family int

const (
	UnknownFamily Family = iota // getsockname failed (Desc.Err says why)
	IPv4
	IPv6
	Unix
	Netlink     // Linux AF_NETLINK
	LinkLayer   // Linux AF_PACKET
	Vsock       // Linux AF_VSOCK
	OtherFamily // any other family
)

// Desc is what Inspect learnt about a descriptor.
type Desc struct {
	Type Type
	// Mode is the file-type bits of st_mode (S_IFMT), as this system
	// numbers them.
	Mode uint32
	// Path is what the system says the descriptor refers to, for anything
	// but a socket: on Linux the target of /proc/self/fd/N ("/var/log/x",
	// "/tmp/f (deleted)", "pipe:[1234]", "anon_inode:[eventfd]"); "" on
	// other systems or where it cannot be read.
	Path string

	// The fields below are for sockets (Type == Socket) only.

	SockType SockType
	SockNum  int // the SO_TYPE number as this system numbers it; 0 if unknown
	Family   Family
	// Listening is set for a stream or seqpacket socket in the listening
	// state (SO_ACCEPTCONN).
	Listening bool
	// Connected is set when the socket has a peer (getpeername succeeds);
	// a listening socket is not asked.
	Connected bool
	// Local and Peer are the socket's own and its peer's addresses as
	// FormatAddr writes them; "" when unnamed, unknown or of a family
	// FormatAddr does not write.
	Local, Peer string
	// Err is a step that failed after fstat, as an *os.SyscallError:
	// getsockopt (SO_TYPE; SockType is UnknownSock and nothing else is
	// known about the socket) or getsockname (Family is UnknownFamily).
	Err error
}

// Kind is what a taking function of package activation wants a descriptor
// to be.
type Kind int

const (
	File     Kind = iota // anything that is none of the socket kinds below
	Listener             // a stream or seqpacket socket in the listening state
	Packet               // a datagram or raw socket
	Conn                 // a connected stream or seqpacket socket
)

func (k Kind) String() string {
	switch k {
	case Listener:
		return "a listening socket"
	case Packet:
		return "a datagram socket"
	case Conn:
		return "a connected socket"
	}
	return "a file"
}

// Info is what a descriptor turned out to be, in package activation's words.
type Info struct {
	Desc string // "a listening IPv4 stream socket", "a pipe or FIFO", ...
	Kind Kind   // File for anything that is none of the socket kinds
}

// Of inspects the descriptor of f and renders it as Desc.Info does.
func Of(f *os.File) (Info, error) {
	d, err := Inspect(f)
	if err != nil {
		return Info{}, err
	}
	return d.Info()
}

// Describe inspects the descriptor of f and renders it as Desc.String
// does; what could not be inspected reads "unknown (why)", or "unknown"
// on a system where descriptors cannot be looked into.
func Describe(f *os.File) string {
	d, err := Inspect(f)
	if errors.Is(err, errors.ErrUnsupported) {
		return "unknown"
	}
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return d.String()
}

// Info says what d is in a sentence for activation's messages ("a
// listening IPv4 stream socket", "an IPv6 datagram socket", "a pipe or
// FIFO", "a type 10 socket") and which Kind it is. A socket whose type could
// not be read is an error (d.Err).
func (d Desc) Info() (Info, error) {
	if d.Type != Socket {
		return Info{Desc: d.fileSentence(), Kind: File}, nil
	}
	family := ""
	switch d.Family {
	case IPv4:
		family = "IPv4"
	case IPv6:
		family = "IPv6"
	case Unix:
		family = "Unix"
	}
	switch d.SockType {
	case UnknownSock:
		return Info{}, d.Err
	case Datagram:
		return Info{Desc: sentence("", family, "datagram"), Kind: Packet}, nil
	case Raw:
		return Info{Desc: sentence("", family, "raw"), Kind: Packet}, nil
	case Stream, SeqPacket:
		name := "stream"
		if d.SockType == SeqPacket {
			name = "seqpacket"
		}
		switch {
		case d.Listening:
			return Info{Desc: sentence("listening", family, name), Kind: Listener}, nil
		case !d.Connected:
			return Info{Desc: sentence("unconnected", family, name), Kind: File}, nil
		}
		return Info{Desc: sentence("connected", family, name), Kind: Conn}, nil
	}
	return Info{Desc: sentence("", family, "type "+strconv.Itoa(d.SockNum)), Kind: File}, nil
}

// sentence puts the words of a socket's description together with their
// article: "a listening IPv4 stream socket", "an IPv6 datagram socket".
func sentence(state, family, typ string) string {
	var words []string
	for _, w := range []string{state, family, typ, "socket"} {
		if w != "" {
			words = append(words, w)
		}
	}
	article := "a"
	switch words[0][0] {
	case 'a', 'e', 'i', 'o', 'u', 'I':
		article = "an"
	}
	return article + " " + strings.Join(words, " ")
}

// fileSentence describes a descriptor that is not a socket.
func (d Desc) fileSentence() string {
	switch d.Type {
	case Regular:
		return "a regular file"
	case Directory:
		return "a directory"
	case FIFO:
		return "a pipe or FIFO"
	case CharDevice:
		return "a character device"
	case BlockDevice:
		return "a block device"
	case Symlink:
		return "a symbolic link"
	case AnonInode:
		return "an anonymous inode (eventfd, epoll, pidfd, ...)"
	}
	return fmt.Sprintf("a file of type %#o", d.Mode)
}

// String says what d is in the holder's short form: for a socket its
// protocol, whether it listens, and its addresses ("tcp listener
// 127.0.0.1:8080", "udp 0.0.0.0:53", "unix stream listener /run/x.sock",
// "tcp connected 10.0.0.1:5000 -> 10.0.0.2:80", "netlink dgram"); for
// anything else its type and, where the system tells it, its path ("file
// /var/log/x", "pipe", "fifo /run/f", "character device /dev/null",
// "eventfd").
func (d Desc) String() string {
	if d.Type == Socket {
		return d.socketString()
	}
	withPath := func(what string) string {
		if d.Path == "" {
			return what
		}
		return what + " " + d.Path
	}
	switch d.Type {
	case Regular:
		return withPath("file")
	case Directory:
		return withPath("directory")
	case FIFO:
		if d.Path == "" || strings.HasPrefix(d.Path, "pipe:") {
			return "pipe"
		}
		return withPath("fifo")
	case CharDevice:
		return withPath("character device")
	case BlockDevice:
		return withPath("block device")
	case AnonInode:
		// Linux anonymous inodes read "anon_inode:[eventfd]" or
		// "anon_inode:inotify".
		if k, ok := strings.CutPrefix(d.Path, "anon_inode:"); ok {
			return strings.Trim(k, "[]")
		}
		return withPath("anonymous inode")
	}
	return withPath(fmt.Sprintf("file of type %#o", d.Mode))
}

// socketString is String for a socket.
func (d Desc) socketString() string {
	if d.SockType == UnknownSock {
		// "socket (" and the errno's text ")"
		why := d.Err
		var se *os.SyscallError
		if errors.As(why, &se) {
			why = se.Err
		}
		if why == nil {
			return "socket"
		}
		return "socket (" + why.Error() + ")"
	}
	typ := d.sockTypeWord()
	var proto string
	switch d.Family {
	case IPv4, IPv6:
		switch d.SockType {
		case Stream:
			proto = "tcp"
		case Datagram:
			proto = "udp"
		case SeqPacket:
			proto = "sctp"
		case Raw:
			proto = "raw ip"
		default:
			proto = "ip socket of type " + strconv.Itoa(d.SockNum)
		}
	case Unix:
		proto = "unix " + typ
	case UnknownFamily:
		if d.Err == nil {
			return "socket (" + typ + ")"
		}
		return "socket (" + typ + ", " + d.Err.Error() + ")"
	case Netlink:
		return "netlink " + typ
	case LinkLayer:
		return "packet " + typ
	case Vsock:
		return "vsock " + typ
	default:
		return "socket (" + typ + ")"
	}
	var b strings.Builder
	b.WriteString(proto)
	if d.Listening {
		b.WriteString(" listener")
		if d.Local != "" {
			b.WriteString(" " + d.Local)
		}
		return b.String()
	}
	if d.Connected {
		b.WriteString(" connected")
	}
	if d.Local != "" {
		b.WriteString(" " + d.Local)
	}
	if d.Connected && d.Peer != "" {
		b.WriteString(" -> " + d.Peer)
	}
	return b.String()
}

// sockTypeWord names d's socket type for String: "stream", "dgram",
// "seqpacket", "raw", "type 10".
func (d Desc) sockTypeWord() string {
	switch d.SockType {
	case Stream:
		return "stream"
	case Datagram:
		return "dgram"
	case SeqPacket:
		return "seqpacket"
	case Raw:
		return "raw"
	}
	return "type " + strconv.Itoa(d.SockNum)
}
