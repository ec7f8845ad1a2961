//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package spawn

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"github.com/fdsend/fdsend"
	"golang.org/x/sys/unix"
)

// Command returns an *exec.Cmd that runs the program name with the given
// arguments (looked up in PATH as exec.Command does) and hands it files as
// descriptors 3, 4, ... in order, with LISTEN_FDS, LISTEN_FDNAMES, and a
// LISTEN_PID equal to the PID of the program itself — on Linux with pidfs
// also LISTEN_PIDFDID, the inode of its pidfd. Each descriptor reaches the
// program in blocking mode, and nothing else is open in it above standard
// error. Options.Command hands them over non-blocking, or runs the program
// as another user.
//
// The PID of a child is known only once it has been forked, so the Cmd
// starts this program's own executable (/proc/self/exe on Linux) as a
// trampoline: an init function of this package recognises it by its
// arguments, sets LISTEN_PID to its own PID, moves the descriptors into
// place, clears O_NONBLOCK on each (a Go program, this one included, sets it
// on the open file description it shares with the child, and programs such
// as Python's socket.socket(fileno=3) then fail to accept), makes every other
// descriptor close-on-exec and execs the program in place, keeping the PID.
// See the package documentation for what that costs. cmd.Args therefore
// shows the trampoline's arguments rather than name and arg; cmd.Path is this
// executable.
//
// The caller may set cmd.Env (its LISTEN_* variables are replaced; nil means
// this process's environment, as usual), Dir, Stdin, Stdout, Stderr,
// SysProcAttr and so on before calling Start, but not ExtraFiles, whose
// descriptors beyond the files would be closed in the trampoline.
//
// Descriptors: files stay owned by the caller. cmd.ExtraFiles holds a
// close-on-exec duplicate of each, made now and owned by the Cmd's user:
// close them once Start has returned (the child has its own by then), or
// when the Cmd will not be started; otherwise they stay open until the Cmd is
// garbage collected. Clearing O_NONBLOCK in the child affects this process
// too, for a socket's open file description is shared: a listener this
// process goes on accepting on would then block a thread in accept(2) and
// ignore deadlines. A launcher holds the sockets it hands over without using
// them, which is unaffected.
//
// Errors: a name that activation.ValidateName refuses, a file that is not an
// open descriptor (an *fdsend.ArgError naming "files[i]"), or the lookup of
// name.
// If the final exec fails in the child, the trampoline writes the reason to
// the child's standard error and exits with status 127.
func Command(files []NamedFile, name string, arg ...string) (*exec.Cmd, error) {
	return command(Options{}, files, name, arg...)
}

// command is Command with the options o.
func command(o Options, files []NamedFile, name string, arg ...string) (*exec.Cmd, error) {
	if err := checkNames(files); err != nil {
		return nil, err
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	target := exec.Command(name, arg...)
	if target.Err != nil {
		return nil, target.Err
	}
	self, err := selfExe()
	if err != nil {
		return nil, err
	}
	extra := make([]*os.File, 0, len(files))
	fds := make([]int, len(files))
	for i, f := range files {
		fd, err := dupOf(f.File, 0, fmt.Sprintf("files[%d].File", i))
		if err != nil {
			for _, e := range extra {
				e.Close()
			}
			return nil, err
		}
		extra = append(extra, os.NewFile(uintptr(fd), "activation:"+f.Name))
		fds[i] = listenStart + i // where exec.Cmd puts ExtraFiles[i]
	}
	return &exec.Cmd{
		Path:       self,
		Args:       trampolineArgs(0, fds, namesOf(files), o.encode(), target.Path, target.Args),
		ExtraFiles: extra,
	}, nil
}

// Exec replaces the current process with the program at path (looked up in
// PATH if it has no slash, as exec.LookPath does), run with argv (argv[0]
// included; empty means {path}) and env (nil means os.Environ(); its LISTEN_*
// variables are replaced), handing it files as descriptors 3, 4, ... with
// LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID = os.Getpid(), the PID being
// kept. As with Command, every descriptor arrives in blocking mode and
// nothing else is open above standard error.
//
// Exec goes through the same trampoline as Command: the Go runtime of this
// process may be using descriptors 3, 4, ... itself (its poller, for one),
// and overwriting them before exec would break it if the exec failed, or even
// before it happens. So Exec passes close-on-exec-cleared duplicates of the
// files at high numbers, holds the low slots open across the exec, and the
// trampoline, a fresh process image in which nothing else runs, moves the
// files into place and execs path.
//
// Exec returns only on error, and then leaves every descriptor as it found it
// and closes the duplicates it made. Errors found before the exec are
// returned: bad names or files, a path that is not an executable file.
// Errors after it (the final exec failing for a reason the lookup could not
// see) cannot return: the trampoline writes the reason to standard error and
// the process exits with status 127. The caller keeps ownership of files;
// they are duplicated, and the caller's descriptors go the way of every
// close-on-exec descriptor.
func Exec(files []NamedFile, path string, argv []string, env []string) error {
	return execFiles(Options{}, files, path, argv, env)
}

// execFiles is Exec with the options o.
func execFiles(o Options, files []NamedFile, path string, argv []string, env []string) error {
	if err := checkNames(files); err != nil {
		return err
	}
	if err := o.check(); err != nil {
		return err
	}
	lp, err := exec.LookPath(path)
	if err != nil {
		return err
	}
	if len(argv) == 0 {
		argv = []string{path}
	}
	if env == nil {
		env = os.Environ()
	}
	self, err := selfExe()
	if err != nil {
		return err
	}
	n := len(files)
	high := listenStart + n

	// No other goroutine may fork while descriptors are not close-on-exec.
	syscall.ForkLock.Lock()
	defer syscall.ForkLock.Unlock()

	copies := make([]int, 0, n)
	var undo []func()
	fail := func(err error) error {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		for _, fd := range copies {
			unix.Close(fd)
		}
		return err
	}
	for i, f := range files {
		fd, err := dupOf(f.File, high, fmt.Sprintf("files[%d].File", i))
		if err != nil {
			return fail(err)
		}
		copies = append(copies, fd)
	}
	for i := range n {
		u, err := holdSlot(listenStart+i, copies[i])
		if err != nil {
			return fail(err)
		}
		if u != nil {
			undo = append(undo, u)
		}
	}
	for _, fd := range copies {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
			return fail(os.NewSyscallError("fcntl", err))
		}
	}
	err = syscall.Exec(self, trampolineArgs(0, copies, namesOf(files), o.encode(), lp, argv), env)
	return fail(&os.PathError{Op: "exec trampoline", Path: self, Err: err})
}

// holdSlot makes sure descriptor slot will be open, and not close-on-exec,
// when this process execs, so that the runtime of the new image cannot take
// that number before the trampoline puts a file there: an open close-on-exec
// descriptor has the flag cleared for the exec, and a free slot gets a
// duplicate of src. It returns what undoes that if the exec fails (nil when
// there is nothing to undo).
func holdSlot(slot, src int) (func(), error) {
	for range 16 {
		flags, err := unix.FcntlInt(uintptr(slot), unix.F_GETFD, 0)
		if err == unix.EBADF {
			nfd, err := unix.FcntlInt(uintptr(src), unix.F_DUPFD, slot)
			if err != nil {
				return nil, os.NewSyscallError("fcntl", err)
			}
			if nfd == slot {
				return func() { unix.Close(slot) }, nil
			}
			unix.Close(nfd) // another goroutine took the slot meanwhile
			continue
		}
		if err != nil {
			return nil, os.NewSyscallError("fcntl", err)
		}
		if flags&unix.FD_CLOEXEC == 0 {
			return nil, nil // goes through the exec as it is; replaced there
		}
		if _, err := unix.FcntlInt(uintptr(slot), unix.F_SETFD, flags&^unix.FD_CLOEXEC); err != nil {
			return nil, os.NewSyscallError("fcntl", err)
		}
		return func() { unix.FcntlInt(uintptr(slot), unix.F_SETFD, flags) }, nil
	}
	return nil, fmt.Errorf("activation: descriptor %d kept being opened and closed by other goroutines", slot)
}

// dupOf returns a close-on-exec duplicate of the descriptor v names, numbered
// min or above (fdsend.DupFD: held through its RawConn while duplicated, and
// not switched to blocking mode). arg names v in errors.
func dupOf(v any, min int, arg string) (int, error) {
	fd, err := fdsend.DupFD(v, min)
	if ae, ok := err.(*fdsend.ArgError); ok {
		ae.Arg = arg
	}
	return fd, err
}

// fdList formats descriptor numbers for the trampoline's arguments.
func fdList(fds []int) string {
	b := make([]byte, 0, 4*len(fds))
	for i, fd := range fds {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(fd), 10)
	}
	return string(b)
}
