package fdsend

import (
	"fmt"
	"math"
	"os"
	"reflect"
	"syscall"
)

// fder is any value that can report its descriptor number.
type fder interface{ Fd() uintptr }

// intFD reports whether v is a plain integer descriptor and, if so, its
// number. An integer that cannot be a descriptor (negative, or beyond
// int32) is an error wrapping EBADF.
func intFD(v any) (fd int, isInt bool, bad bool) {
	var x int64
	switch n := v.(type) {
	case int:
		x = int64(n)
	case int32:
		x = int64(n)
	case int64:
		x = n
	case uintptr:
		if uint64(n) > math.MaxInt32 {
			return 0, true, true
		}
		x = int64(n)
	default:
		return 0, false, false
	}
	if x < 0 || x > math.MaxInt32 {
		return 0, true, true
	}
	return int(x), true, false
}

// isNilValue reports whether v is nil or a typed nil pointer, map, slice,
// func, channel or interface, whose methods could panic.
func isNilValue(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface, reflect.UnsafePointer:
		return rv.IsNil()
	}
	return false
}

// resolved is how an argument names its descriptor: a number to use as it
// is (integers, and values with only an Fd method), or a RawConn whose
// Control keeps the descriptor valid while it runs.
type resolved struct {
	fd int
	rc syscall.RawConn
	v  any // the argument itself, for errors
}

// resolve classifies an argument. name and index name it in errors.
func resolve(v any, name string, index int) (resolved, error) {
	if fd, isInt, bad := intFD(v); isInt {
		if bad {
			return resolved{}, argError(name, index, v, errBadFD)
		}
		return resolved{fd: fd}, nil
	}
	if isNilValue(v) {
		return resolved{}, argError(name, index, v, errNil)
	}
	switch x := v.(type) {
	case syscall.Conn:
		rc, err := probeConn(x)
		if err != nil {
			return resolved{}, argError(name, index, v, err)
		}
		return resolved{rc: rc}, nil
	case fder:
		fd, ok := callFd(x)
		if !ok {
			return resolved{}, argError(name, index, v, errPanicked)
		}
		if fd == ^uintptr(0) {
			// What (*os.File).Fd-like methods return once closed.
			return resolved{}, argError(name, index, v, os.ErrClosed)
		}
		if uint64(fd) > math.MaxInt32 {
			return resolved{}, argError(name, index, v, errBadFD)
		}
		return resolved{fd: int(fd)}, nil
	}
	return resolved{}, argError(name, index, v, errNotDescriptor)
}

// errPanicked is the cause of an ArgError for a value whose own methods
// panicked (a zero os.File, a struct embedding a nil syscall.Conn).
var errPanicked = fmt.Errorf("its SyscallConn, Control or Fd method panicked (a zero value?): %w", os.ErrInvalid)

// probeConn gets a value's RawConn and checks that Control works on it: a
// closed file or conn is refused here, before anything is sent, and a value
// whose methods panic is an error, not a panic of ours.
func probeConn(c syscall.Conn) (rc syscall.RawConn, err error) {
	defer func() {
		if recover() != nil {
			rc, err = nil, errPanicked
		}
	}()
	rc, err = c.SyscallConn()
	if err != nil {
		return nil, err
	}
	if rc == nil {
		return nil, errNil
	}
	if err := rc.Control(func(uintptr) {}); err != nil {
		return nil, closedError{err}
	}
	return rc, nil
}

// callFd calls a value's Fd method; ok is false if it panicked.
func callFd(x fder) (fd uintptr, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return x.Fd(), true
}
