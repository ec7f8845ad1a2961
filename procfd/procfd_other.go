//go:build !linux

package procfd

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
)

// Process is a process whose descriptors may be taken; on this system none
// can be.
type Process struct{ pid int }

func unsupported(pid int, op string) error {
	return &Error{Op: op, PID: pid, FD: -1, Err: errors.ErrUnsupported, Why: fmt.Sprintf("taking another process's descriptors needs Linux's pidfd_getfd, and this is %s", runtime.GOOS)}
}

// Open returns an error wrapping errors.ErrUnsupported: only Linux can take
// another process's descriptors.
func Open(pid int) (*Process, error) { return nil, unsupported(pid, "pidfd_open") }

// PID returns the process ID given to Open.
func (p *Process) PID() int { return p.pid }

// Close does nothing.
func (p *Process) Close() error { return nil }

// TakeFD returns an error wrapping errors.ErrUnsupported.
func (p *Process) TakeFD(n int) (*os.File, error) { return nil, unsupported(p.pid, "pidfd_getfd") }

// List returns an error wrapping errors.ErrUnsupported.
func (p *Process) List() ([]FD, error) { return nil, unsupported(p.pid, "list") }

// Signal returns an error wrapping errors.ErrUnsupported.
func (p *Process) Signal(sig syscall.Signal) error { return unsupported(p.pid, "pidfd_send_signal") }

// Wait returns an error wrapping errors.ErrUnsupported.
func (p *Process) Wait(timeoutMS int) (bool, error) { return false, unsupported(p.pid, "wait") }
