package procfd

import (
	"strconv"
)

// Kind is what a descriptor is for a caller that wants to hand it on.
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
		return "listener"
	case Packet:
		return "packet"
	case Conn:
		return "conn"
	}
	return "file"
}

// FD is one descriptor of a process, as List found it.
type FD struct {
	// Num is the descriptor's number in the process.
	Num int
	// What says what the descriptor is, in the words `fdsend ls` uses:
	// "tcp listener 127.0.0.1:8080", "unix stream listener /run/x.sock",
	// "udp 0.0.0.0:53", "file /var/log/x", "pipe", "eventfd", ...
	What string
	// Kind is what the descriptor is to a caller handing it on.
	Kind Kind
	// Network is the socket's network as package net names it ("tcp4",
	// "tcp6", "udp4", "udp6", "unix", "unixgram", "unixpacket"); "" for
	// anything else.
	Network string
	// Local and Peer are a socket's own and its peer's addresses
	// ("127.0.0.1:8080", "[::]:8080", "/run/x.sock", "@abstract"); "" when
	// unnamed or not a socket.
	Local, Peer string
	// Dev and Ino identify what the descriptor refers to: two descriptors
	// with the same Dev and Ino are the same socket (or file), taken twice
	// would be the same thing twice.
	Dev, Ino uint64
}

// Error is the error of a step that failed, with the errno it wraps and
// what it means here.
type Error struct {
	Op  string // "pidfd_open", "pidfd_getfd", "reading /proc/PID/fd", ...
	PID int
	FD  int   // the descriptor asked for; -1 when the step is about no descriptor
	Err error // the errno (a syscall.Errno), or another cause
	// Why explains Err here: what rights are missing, what the kernel
	// lacks. It may be "".
	Why string
}

func (e *Error) Error() string {
	s := "process " + strconv.Itoa(e.PID)
	if e.FD >= 0 {
		s = "descriptor " + strconv.Itoa(e.FD) + " of " + s
	}
	s += ": " + e.Op + ": " + e.Err.Error()
	if e.Why != "" {
		s += " (" + e.Why + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }
