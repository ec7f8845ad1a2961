// Package fdkind says what a descriptor is — a listening socket, a datagram
// socket, a connected socket or some other file — in words for messages
// ("a listening IPv4 stream socket") and as a Kind for the taking functions
// of package activation. It is shared with the tests of activation/spawn,
// whose children describe what they inherited the same way.
package fdkind

// Kind is what a taking function wants a descriptor to be.
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

// Info is what a descriptor turned out to be.
type Info struct {
	Desc string // "a listening IPv4 stream socket", "a pipe or FIFO", ...
	Kind Kind   // File for anything that is none of the socket kinds
}
