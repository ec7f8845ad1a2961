package fdsend

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"syscall"
)

// CloseFDs closes the descriptors numbered in fds, such as those RecvMsg
// stored. Every number in fds is closed exactly once, whatever their order
// and however often one appears; fds itself is not changed.
//
// On Linux and FreeBSD each run of consecutive numbers is closed with one
// close_range(2): the kernel installs a message's descriptors in the lowest
// free slots, in ascending order, so a received batch is usually a single
// run. A lone number, and every number on other systems or where the kernel
// lacks close_range (found once, then not tried again), is closed with
// close(2). Nothing is allocated unless fds holds more than 253 numbers out
// of ascending order.
//
// A number that cannot be closed does not stop the others. The error is an
// *ArgError naming the first element that failed (fds[i]) and wrapping the
// errno, so that errors.Is(err, syscall.EBADF) reports a number that was
// not open; it says how many others failed. close_range does not report the
// numbers of a run that were not open, so where a run is closed with it such
// a number goes unnoticed.
//
// The caller must own every descriptor in fds, as with close(2): a number
// already closed may since have been given to another open file, in this
// goroutine or another, and that file would be closed.
func CloseFDs(fds []int) error {
	for i := 1; i < len(fds); i++ {
		if fds[i] <= fds[i-1] {
			return closeUnordered(fds)
		}
	}
	return closeAscending(fds, fds)
}

// closeUnordered closes fds, which are not strictly ascending, from a sorted
// copy without repeats: on the stack for a message's worth of numbers. It is
// a function of its own so that CloseFDs's usual path does not clear the
// array.
//
//go:noinline
func closeUnordered(fds []int) error {
	var buf [maxFilesPerMsg]int
	var s []int
	if len(fds) <= len(buf) {
		s = buf[:len(fds)]
	} else {
		s = make([]int, len(fds))
	}
	copy(s, fds)
	slices.Sort(s)
	s = slices.Compact(s)
	return closeAscending(s, fds)
}

// closeAscending closes the strictly ascending numbers of s, runs with
// closeRange where it can, and reports failures against orig, the caller's
// slice.
func closeAscending(s, orig []int) error {
	var failed int
	var first int
	var firstErr error
	note := func(fd int, err error) {
		if failed == 0 {
			first, firstErr = fd, err
		}
		failed++
	}
	for i := 0; i < len(s); {
		j := i + 1
		for j < len(s) && s[j] == s[j-1]+1 {
			j++
		}
		if j-i == 1 || s[i] < 0 || !closeRange(s[i], s[j-1]) {
			for _, fd := range s[i:j] {
				if err := closeOne(fd); err != nil {
					note(fd, err)
				}
			}
		}
		i = j
	}
	if failed == 0 {
		return nil
	}
	return closeFDsError(orig, first, firstErr, failed-1)
}

// closeFDsError builds CloseFDs's error: the first number that failed, found
// in the caller's slice, and how many more did.
func closeFDsError(orig []int, fd int, errno error, more int) error {
	idx := slices.Index(orig, fd)
	var err error = os.NewSyscallError("close", errno)
	if _, ok := errno.(syscall.Errno); !ok {
		err = errno // errUnsupported on systems without descriptor passing
	}
	err = fmt.Errorf("descriptor %d: %w", fd, err)
	if more > 0 {
		err = fmt.Errorf("%w; %d more could not be closed", err, more)
	}
	return &ArgError{Arg: "fds[" + strconv.Itoa(idx) + "]", Type: "int", Err: err}
}
