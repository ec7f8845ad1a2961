package procfd

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdkind"
	"golang.org/x/sys/unix"
)

// Process is a process whose descriptors may be taken, held by a pidfd from
// Open to Close. Its methods may be called from several goroutines.
type Process struct {
	pid   int
	pidfd *os.File // the pidfd; its RawConn keeps the number from being reused under a call
}

// Open gets a pidfd for process pid. The Process refers to that process
// for as long as it is open, whatever later gets the PID. The caller closes
// it. An error wraps ESRCH if there is no such process (or it has exited),
// ENOSYS if the kernel has no pidfd_open (Linux 5.3), EINVAL if pid is a
// thread rather than a process.
func Open(pid int) (*Process, error) {
	if pid <= 0 {
		return nil, &fdsend.ArgError{Arg: "pid", Type: "int", Err: fmt.Errorf("%d is not a process ID: %w", pid, syscall.EINVAL)}
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, explain(&Error{Op: "pidfd_open", PID: pid, FD: -1, Err: err})
	}
	p := &Process{pid: pid, pidfd: os.NewFile(uintptr(fd), "pidfd "+strconv.Itoa(pid))}
	if p.exited() {
		p.Close()
		return nil, &Error{Op: "pidfd_open", PID: pid, FD: -1, Err: syscall.ESRCH, Why: "the process has exited"}
	}
	return p, nil
}

// PID returns the process ID given to Open.
func (p *Process) PID() int { return p.pid }

// Close closes the pidfd. Files taken before stay open.
func (p *Process) Close() error { return p.pidfd.Close() }

// control runs f on the pidfd, or fails if the Process is closed.
func (p *Process) control(f func(fd int)) error {
	rc, err := p.pidfd.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(func(fd uintptr) { f(int(fd)) })
}

// exited reports whether the process has exited (its pidfd is readable then,
// whether or not it has been reaped).
func (p *Process) exited() bool {
	done := false
	p.control(func(fd int) {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			n, err := unix.Poll(pfd, 0)
			if err == unix.EINTR {
				continue
			}
			done = err == nil && n > 0
			return
		}
	})
	return done
}

// TakeFD duplicates descriptor n of the process into this one and returns it
// as a close-on-exec *os.File, which the caller owns. The process keeps its
// own descriptor. An error wraps EBADF if the process has no descriptor n,
// ESRCH if it has exited, EPERM without ptrace rights over it (Error.Why says
// which), ENOSYS on a kernel without pidfd_getfd (before Linux 5.6).
func (p *Process) TakeFD(n int) (*os.File, error) {
	if n < 0 {
		return nil, &fdsend.ArgError{Arg: "n", Type: "int", Err: fmt.Errorf("%d is not a descriptor number: %w", n, syscall.EBADF)}
	}
	fd, err := p.getfd(n)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "process "+strconv.Itoa(p.pid)+" fd "+strconv.Itoa(n)), nil
}

// getfd is pidfd_getfd(2) with its errors explained.
func (p *Process) getfd(n int) (int, error) {
	fd := -1
	var err error
	if cerr := p.control(func(pidfd int) { fd, err = unix.PidfdGetfd(pidfd, n, 0) }); cerr != nil {
		return -1, &Error{Op: "pidfd_getfd", PID: p.pid, FD: n, Err: cerr, Why: "the Process is closed"}
	}
	if err == nil {
		return fd, nil
	}
	e := &Error{Op: "pidfd_getfd", PID: p.pid, FD: n, Err: err}
	// A process that has exited but is not yet reaped has no descriptors
	// left: the kernel says EBADF, which would read as a wrong number.
	if (err == unix.EBADF || err == unix.ESRCH) && p.exited() {
		e.Err, e.Why = syscall.ESRCH, "the process has exited"
		return -1, e
	}
	return -1, explain(e)
}

// Signal sends sig to the process through its pidfd (pidfd_send_signal(2)):
// never to another process that got the PID later. It wraps ESRCH once the
// process has exited.
func (p *Process) Signal(sig syscall.Signal) error {
	var err error
	if cerr := p.control(func(fd int) { err = unix.PidfdSendSignal(fd, sig, nil, 0) }); cerr != nil {
		return &Error{Op: "pidfd_send_signal", PID: p.pid, FD: -1, Err: cerr, Why: "the Process is closed"}
	}
	if err != nil {
		return explain(&Error{Op: "pidfd_send_signal", PID: p.pid, FD: -1, Err: err})
	}
	return nil
}

// Wait waits until the process has exited, for at most timeoutMS
// milliseconds (-1: no limit), and reports whether it has. The process need
// not be a child of this one; its exit status is not available.
func (p *Process) Wait(timeoutMS int) (bool, error) {
	done := false
	var err error
	if cerr := p.control(func(fd int) {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			var n int
			n, err = unix.Poll(pfd, timeoutMS)
			if err == unix.EINTR {
				continue // a shorter wait is fine: the caller asks again
			}
			done = err == nil && n > 0
			return
		}
	}); cerr != nil {
		return false, cerr
	}
	if err != nil {
		return false, os.NewSyscallError("poll", err)
	}
	return done, nil
}

// List returns the process's descriptors in increasing order of number,
// each with what it is. To say what a descriptor is, List takes a duplicate
// of it (as TakeFD does), inspects it and closes it at once; a descriptor
// closed by the process meanwhile is left out. The duplicate's brief life
// has one effect the process may notice: an epoll registration of a
// descriptor the process closes in that instant lasts until List closes
// its duplicate.
func (p *Process) List() ([]FD, error) {
	dir := "/proc/" + strconv.Itoa(p.pid) + "/fd"
	d, err := os.Open(dir)
	if err != nil {
		return nil, p.procError(dir, err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, p.procError(dir, err)
	}
	// The PID cannot have been given to another process while ours has
	// not exited (even as a zombie), so what was read is its list.
	if p.exited() {
		return nil, &Error{Op: "reading " + dir, PID: p.pid, FD: -1, Err: syscall.ESRCH, Why: "the process has exited"}
	}
	var nums []int
	for _, name := range names {
		if n, err := strconv.Atoi(name); err == nil {
			nums = append(nums, n)
		}
	}
	slices.Sort(nums)
	list := make([]FD, 0, len(nums))
	for _, n := range nums {
		fd, err := p.getfd(n)
		if errors.Is(err, syscall.EBADF) {
			continue // closed since the directory was read
		}
		if err != nil {
			return nil, err
		}
		f := os.NewFile(uintptr(fd), "")
		e := describe(f)
		f.Close()
		e.Num = n
		list = append(list, e)
	}
	return list, nil
}

// procError explains an error reading the process's /proc directory.
func (p *Process) procError(dir string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	e := &Error{Op: "reading " + dir, PID: p.pid, FD: -1, Err: err}
	if err == syscall.ENOENT {
		e.Err, e.Why = syscall.ESRCH, "the process has exited"
		return e
	}
	return explain(e)
}

// describe says what f is.
func describe(f *os.File) FD {
	var e FD
	d, err := fdkind.Inspect(f)
	if err != nil {
		e.What = "unknown (" + err.Error() + ")"
		return e
	}
	e.What = d.String()
	if info, err := d.Info(); err == nil {
		switch info.Kind {
		case fdkind.Listener:
			e.Kind = Listener
		case fdkind.Packet:
			e.Kind = Packet
		case fdkind.Conn:
			e.Kind = Conn
		}
	}
	if d.Type == fdkind.Socket {
		e.Local, e.Peer = d.Local, d.Peer
		e.Network = network(d)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err == nil {
		e.Dev, e.Ino = uint64(st.Dev), st.Ino
	}
	return e
}

// network names a socket's network as package net does.
func network(d fdkind.Desc) string {
	switch d.Family {
	case fdkind.IPv4, fdkind.IPv6:
		v := "4"
		if d.Family == fdkind.IPv6 {
			v = "6"
		}
		switch d.SockType {
		case fdkind.Stream:
			return "tcp" + v
		case fdkind.Datagram:
			return "udp" + v
		}
	case fdkind.Unix:
		switch d.SockType {
		case fdkind.Stream:
			return "unix"
		case fdkind.Datagram:
			return "unixgram"
		case fdkind.SeqPacket:
			return "unixpacket"
		}
	}
	return ""
}

// explain fills in e.Why for the errnos that need it.
func explain(e *Error) *Error {
	switch e.Err {
	case syscall.EPERM, syscall.EACCES:
		e.Why = ptraceWhy(e.PID)
	case syscall.ENOSYS:
		e.Why = "this kernel (" + kernelRelease() + ") lacks it: pidfd_open needs Linux 5.3, pidfd_getfd Linux 5.6"
	case syscall.EBADF:
		if e.FD >= 0 {
			e.Why = "the process has no descriptor " + strconv.Itoa(e.FD)
		}
	case syscall.EINVAL:
		if e.Op == "pidfd_open" {
			e.Why = "not a process ID (a thread's?)"
		}
	}
	return e
}

// ptraceWhy says what rights taking process pid's descriptors needs on this
// system, and who the process and this one run as.
func ptraceWhy(pid int) string {
	who := ""
	if st, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
		if s, ok := st.Sys().(*syscall.Stat_t); ok {
			who = fmt.Sprintf("; the process runs as uid %d, this one as uid %d", s.Uid, os.Getuid())
		}
	}
	need := "taking another process's descriptors needs ptrace rights over it: "
	scope, err := os.ReadFile("/proc/sys/kernel/yama/ptrace_scope")
	switch strings.TrimSpace(string(scope)) {
	case "1":
		return need + "Yama's kernel.yama.ptrace_scope is 1, so only CAP_SYS_PTRACE, which root has, or being the same user and an ancestor of the process (or named by it with PR_SET_PTRACER) gives them" + who
	case "2":
		return need + "Yama's kernel.yama.ptrace_scope is 2, so only CAP_SYS_PTRACE, which root has, gives them" + who
	case "3":
		return need + "Yama's kernel.yama.ptrace_scope is 3, so no process has them, not even root, until the next boot" + who
	}
	scopeNote := "; Yama's kernel.yama.ptrace_scope is 0"
	if err != nil {
		scopeNote = "; this system has no Yama ptrace_scope"
	}
	return need + "the same user as the process, which must be dumpable, or CAP_SYS_PTRACE, which root has" + scopeNote + who
}

// kernelRelease returns uname -r, or "unknown".
func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}
