package fdsend

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
)

// ErrTruncated is wrapped by the error Recv returns when the kernel cut a
// message short: the control data (more files than maxFiles, or the receiver
// ran out of descriptors) or the data itself (a datagram or seqpacket message
// longer than the buffer). Every descriptor that did arrive has been closed.
var ErrTruncated = errors.New("fdsend: message truncated")

// errNotDescriptor is the cause of an ArgError for a value that cannot name a
// descriptor.
var errNotDescriptor = errors.New("not a descriptor: want *os.File, syscall.Conn, a type with Fd() uintptr, or an int, int32, int64 or uintptr")

// errNil is the cause of an ArgError for a nil argument.
var errNil = errors.New("nil")

// ArgError reports an argument that does not name a usable descriptor. Arg is
// the argument's name ("sock", "files[3]"), Type its Go type, and Err the
// cause (errors.Is sees through it, for example to syscall.EBADF).
type ArgError struct {
	Arg  string
	Type string
	Err  error
}

func (e *ArgError) Error() string {
	return "fdsend: " + e.Arg + " (" + e.Type + "): " + e.Err.Error()
}

func (e *ArgError) Unwrap() error { return e.Err }

// argError builds an ArgError; index < 0 means the argument is not an element
// of a list.
func argError(name string, index int, v any, err error) error {
	if index >= 0 {
		name = name + "[" + strconv.Itoa(index) + "]"
	}
	return &ArgError{Arg: name, Type: fmt.Sprintf("%T", v), Err: err}
}

// closedError is the cause of an ArgError for a socket or file whose
// RawConn is closed. It matches net.ErrClosed and os.ErrClosed whatever
// the RawConn said (package net's says net.ErrClosed, package os's only "use
// of closed file"), and the RawConn's own error.
type closedError struct{ err error }

func (e closedError) Error() string { return "closed: " + e.err.Error() }
func (e closedError) Unwrap() []error {
	return []error{e.err, net.ErrClosed, os.ErrClosed}
}
