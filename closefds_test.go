//go:build linux

package fdsend_test

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdtest"
	"golang.org/x/sys/unix"
)

// closeCase is one call of CloseFDs on descriptors placed at chosen numbers.
// Numbers are offsets from a base above every descriptor the process has;
// a negative one is passed as -1.
type closeCase struct {
	name string
	open []int // offsets that get a descriptor (on /dev/null)
	fds  []int // the offsets passed to CloseFDs
	// bad is the index in fds of the element the error must name, -1 for
	// no error; badPlain is the same where close_range is missing, which
	// reports what it does not find open even inside a run.
	bad, badPlain int
	more          int // further failures the error must count
}

// seq returns the offsets from lo to hi, ascending, or descending if lo > hi.
func seq(lo, hi int) []int {
	var s []int
	for i := lo; ; {
		s = append(s, i)
		if i == hi {
			return s
		}
		if lo < hi {
			i++
		} else {
			i--
		}
	}
}

var closeCases = []closeCase{
	{name: "nil", bad: -1, badPlain: -1},
	{name: "empty", fds: []int{}, bad: -1, badPlain: -1},
	{name: "one", open: []int{0}, fds: []int{0}, bad: -1, badPlain: -1},
	{name: "run", open: seq(0, 7), fds: seq(0, 7), bad: -1, badPlain: -1},
	{name: "gaps", open: []int{0, 1, 3, 4, 7, 9, 10, 11}, fds: []int{0, 1, 3, 4, 7, 9, 10, 11}, bad: -1, badPlain: -1},
	{name: "duplicates", open: []int{0, 1, 2, 5}, fds: []int{0, 1, 1, 2, 0, 2, 5, 5}, bad: -1, badPlain: -1},
	{name: "unsorted", open: []int{0, 1, 3, 4, 5, 8, 9}, fds: []int{5, 3, 4, 0, 1, 9, 8}, bad: -1, badPlain: -1},
	{name: "unsorted-duplicates", open: seq(0, 9), fds: []int{9, 3, 4, 4, 0, 1, 2, 9, 5, 6, 7, 8, 3}, bad: -1, badPlain: -1},
	// A number not open between two runs is closed on its own: EBADF.
	{name: "closed-between-runs", open: []int{0, 1, 2, 4, 5}, fds: []int{0, 1, 2, 20, 4, 5}, bad: 3, badPlain: 3},
	// Inside a run close_range passes over it without a word.
	{name: "closed-inside-run", open: []int{0, 1, 3}, fds: []int{0, 1, 2, 3}, bad: -1, badPlain: 2},
	{name: "negative", open: []int{0, 1, 2}, fds: []int{0, 1, -1, 2}, bad: 2, badPlain: 2},
	{name: "two-closed", open: []int{0, 1}, fds: []int{0, 30, 1, 40}, bad: 1, badPlain: 1, more: 1},
	{name: "unsorted-closed", open: []int{0, 1, 2, 3}, fds: []int{3, 2, 50, 1, 0}, bad: 2, badPlain: 2},
	{name: "253-run", open: seq(0, 252), fds: seq(0, 252), bad: -1, badPlain: -1},
	{name: "253-reversed", open: seq(0, 252), fds: seq(252, 0), bad: -1, badPlain: -1},
	// More than a message's worth out of order: the sorted copy is on the
	// heap.
	{name: "300-reversed", open: seq(0, 299), fds: seq(299, 0), bad: -1, badPlain: -1},
}

// openFDSet lists the descriptors this process has open, without the one
// that reads the list.
func openFDSet() (map[int]bool, error) {
	dir, err := os.Open("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	names, err := dir.Readdirnames(-1)
	self := int(dir.Fd())
	dir.Close()
	if err != nil {
		return nil, err
	}
	open := make(map[int]bool, len(names))
	for _, n := range names {
		if fd, err := strconv.Atoi(n); err == nil && fd != self {
			open[fd] = true
		}
	}
	return open, nil
}

// freeBase returns a number from which span numbers are free. It starts
// far above the numbers the process uses, which the kernel hands out
// lowest first, so no other goroutine takes them meanwhile.
func freeBase(span int) (int, error) {
	base := 1000
next:
	for ; base < 8000; base += span {
		for fd := base; fd < base+span; fd++ {
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
				continue next
			}
		}
		return base, nil
	}
	return 0, errors.New("no free numbers")
}

// run places the case's descriptors, calls CloseFDs, and checks that
// exactly the descriptors it opened are gone and that the error is the one
// expected (rangeOK: close_range is in use).
func (c closeCase) run(rangeOK bool) error {
	null, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(null)
	before, err := openFDSet()
	if err != nil {
		return err
	}
	base, err := freeBase(max(slices.Max(append([]int{0}, c.open...)), slices.Max(append([]int{0}, c.fds...))) + 1)
	if err != nil {
		return err
	}
	for _, off := range c.open {
		if err := unix.Dup3(null, base+off, unix.O_CLOEXEC); err != nil {
			return fmt.Errorf("dup3 to %d: %w", base+off, err)
		}
	}
	var fds []int
	if c.fds != nil {
		fds = make([]int, len(c.fds))
		for i, off := range c.fds {
			fds[i] = -1
			if off >= 0 {
				fds[i] = base + off
			}
		}
	}
	given := slices.Clone(fds)
	cerr := fdsend.CloseFDs(fds)
	after, err := openFDSet()
	if err != nil {
		return err
	}
	var left, lost []int
	for fd := range after {
		if !before[fd] {
			left = append(left, fd)
		}
	}
	for fd := range before {
		if !after[fd] {
			lost = append(lost, fd)
		}
	}
	if len(left) > 0 || len(lost) > 0 {
		slices.Sort(left)
		slices.Sort(lost)
		return fmt.Errorf("%s: left open %v, closed by mistake %v (error %v)", c.name, left, lost, cerr)
	}
	if !slices.Equal(fds, given) {
		return fmt.Errorf("%s: CloseFDs changed its argument", c.name)
	}
	bad := c.bad
	if !rangeOK {
		bad = c.badPlain
	}
	if bad < 0 {
		if cerr != nil {
			return fmt.Errorf("%s: %v, want no error", c.name, cerr)
		}
		return nil
	}
	var ae *fdsend.ArgError
	want := fmt.Sprintf("fds[%d]", bad)
	if !errors.Is(cerr, syscall.EBADF) || !errors.As(cerr, &ae) || ae.Arg != want ||
		!strings.Contains(cerr.Error(), fmt.Sprintf("descriptor %d:", fds[bad])) {
		return fmt.Errorf("%s: error %v, want EBADF naming %s = %d", c.name, cerr, want, fds[bad])
	}
	if more := fmt.Sprintf("%d more could not be closed", c.more); (c.more > 0) != strings.Contains(cerr.Error(), more) {
		return fmt.Errorf("%s: error %q, want %d more counted", c.name, cerr, c.more)
	}
	return nil
}

// CloseFDs closes each descriptor it is given exactly once, in any order,
// with duplicates, gaps and numbers that are not open, reports the first
// failure by its index with the errno, and touches nothing else.
func TestCloseFDs(t *testing.T) {
	for _, c := range closeCases {
		t.Run(c.name, func(t *testing.T) {
			fdtest.Check(t)
			if err := c.run(true); err != nil {
				t.Error(err)
			}
		})
	}
	if fdsend.CloseRangeMissing() {
		t.Errorf("close_range was given up on, on a kernel that has it")
	}
}

// sysCloseRange is close_range(2)'s number, the same on every architecture.
const sysCloseRange = 436

func init() {
	// closefds-plain: with close_range masked (ENOSYS, as before Linux
	// 5.9), CloseFDs finds it missing once, closes one number at a time,
	// and every case holds, EBADF inside runs included.
	children["closefds-plain"] = func() error {
		if err := maskSyscalls(map[uintptr]syscall.Errno{sysCloseRange: unix.ENOSYS}); err != nil {
			return err
		}
		if err := unix.CloseRange(1000, 1001, 0); err != unix.ENOSYS {
			return fmt.Errorf("close_range not masked: %v", err)
		}
		if fdsend.CloseRangeMissing() {
			return errors.New("close_range missing before any call")
		}
		for _, c := range closeCases {
			if err := c.run(false); err != nil {
				return err
			}
		}
		fmt.Printf("missing=%v\n", fdsend.CloseRangeMissing())
		return nil
	}
}

// Where the kernel lacks close_range, CloseFDs closes one number at a time,
// notes it once, and gives the same results.
func TestCloseFDsWithoutCloseRange(t *testing.T) {
	if auditArch() == 0 {
		t.Skipf("no seccomp architecture known for %s", runtime.GOARCH)
	}
	if out := runChild(t, "closefds-plain", nil); out != "missing=true\n" {
		t.Errorf("child reports %q, want missing=true", out)
	}
}

// The 253 descriptors of one received message, closed with CloseFDs.
func TestCloseFDsReceived(t *testing.T) {
	fdtest.Check(t)
	a, b := pair(t, syscall.SOCK_SEQPACKET)
	null := rawFD(t, devNulls(t, 1)[0].(syscall.Conn))
	files := make([]any, 253)
	for i := range files {
		files[i] = null
	}
	if _, err := fdsend.SendMsg(a, []byte("x"), files, 0); err != nil {
		t.Fatal(err)
	}
	fds := make([]int, 253)
	_, nfds, _, err := fdsend.RecvMsg(b, make([]byte, 8), fds, 0)
	if err != nil || nfds != 253 {
		t.Fatalf("RecvMsg: %d descriptors, %v", nfds, err)
	}
	runs := 1
	for i := 1; i < nfds; i++ {
		if fds[i] != fds[i-1]+1 {
			runs++
		}
	}
	t.Logf("received %d..%d in %d runs", fds[0], fds[nfds-1], runs)
	if err := fdsend.CloseFDs(fds); err != nil {
		t.Fatal(err)
	}
}

// CloseFDs allocates nothing for ascending numbers, nor for a message's
// worth out of order or repeated.
func TestCloseFDsAllocFree(t *testing.T) {
	fdtest.Check(t)
	null := rawFD(t, devNulls(t, 1)[0].(syscall.Conn))
	base, err := freeBase(253)
	if err != nil {
		t.Fatal(err)
	}
	ascending := make([]int, 253)
	for i := range ascending {
		ascending[i] = base + i
	}
	unordered := []int{base + 7, base + 3, base, base + 3, base + 1, base + 2, base + 9, base + 8, base + 7}
	for _, tc := range []struct {
		name string
		fds  []int
	}{{"ascending", ascending}, {"unordered", unordered}} {
		var failure error
		allocs := testing.AllocsPerRun(50, func() {
			for _, fd := range tc.fds {
				if err := unix.Dup3(null, fd, unix.O_CLOEXEC); err != nil {
					failure = err
				}
			}
			if err := fdsend.CloseFDs(tc.fds); err != nil {
				failure = err
			}
		})
		if failure != nil {
			t.Fatalf("%s: %v", tc.name, failure)
		}
		if allocs != 0 {
			t.Errorf("%s: %v allocations per CloseFDs, want 0", tc.name, allocs)
		}
	}
}
