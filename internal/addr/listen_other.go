//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package addr

import (
	"errors"
	"os"
)

// Listener is a socket opened by Listen. On this system Listen always fails.
type Listener struct {
	// File is the socket, owned by the Listener.
	File *os.File
	// Bound is the address the socket is bound to.
	Bound string
}

// Listen is not supported on this system: it returns an error wrapping
// errors.ErrUnsupported.
func Listen(a Addr, typ int) (*Listener, error) {
	return nil, &Error{Addr: a.String(), Err: errors.ErrUnsupported}
}

// Close closes the socket.
func (l *Listener) Close() error { return l.File.Close() }

// Local is not supported on this system.
func Local(f *os.File) (string, error) { return "", errors.ErrUnsupported }

// Handover describes a Listener for a process this one execs into.
type Handover struct {
	FD    int
	Bound string
}

// Handover describes l; fd is the socket's number.
func (l *Listener) Handover(fd int) Handover { return Handover{FD: fd, Bound: l.Bound} }

// Adopt takes over a Listener described by Handover.
func Adopt(h Handover) *Listener {
	return &Listener{File: os.NewFile(uintptr(h.FD), h.Bound), Bound: h.Bound}
}
