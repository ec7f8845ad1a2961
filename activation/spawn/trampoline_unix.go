//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package spawn

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/fdsend/fdsend/activation/internal/pidfd"
	"golang.org/x/sys/unix"
)

// The trampoline is this program's own executable started with arguments
//
//	trampolineArg0 trampolineVersion HOP FDS NAMES OPTS PATH ARGV0 ARGV1 ...
//
// FDS lists, comma-separated, the descriptor that holds each file (3, 4, ...
// when exec.Cmd has put them in place; high numbers after Exec), NAMES is the
// LISTEN_FDNAMES value, OPTS the Options (Options.encode), PATH the program
// to exec and ARGV0... its arguments. HOP counts the times the trampoline
// has had to exec itself again.
const (
	trampolineArg0    = "fdsend-activation-trampoline"
	trampolineVersion = "2"
	trampolineMinArgs = 8
	maxHops           = 3
	trampolineExit    = 127
)

func init() {
	if len(os.Args) < trampolineMinArgs || os.Args[0] != trampolineArg0 || os.Args[1] != trampolineVersion {
		return
	}
	err := trampoline(os.Args)
	// Said in the name of the launcher whose binary this is ("fdsend: ..."),
	// as a Unix tool says what it could not do.
	name := "spawn"
	if self, serr := os.Executable(); serr == nil {
		name = filepath.Base(self)
	}
	msg := name + ": " + err.Error() + "\n"
	unix.Write(2, []byte(msg))
	os.Exit(trampolineExit)
}

// trampolineArgs builds the trampoline's argument list.
func trampolineArgs(hop int, fds []int, names []string, opts, path string, argv []string) []string {
	args := make([]string, 0, 7+len(argv))
	args = append(args, trampolineArg0, trampolineVersion, strconv.Itoa(hop), fdList(fds), joinNames(names), opts, path)
	return append(args, argv...)
}

// trampoline puts the files in place and execs the program; it returns only
// on error. It runs in a process image that has just started, before main.
func trampoline(args []string) error {
	if unix.Getuid() != unix.Geteuid() || unix.Getgid() != unix.Getegid() {
		return errors.New("refusing to run in a set-user-ID or set-group-ID process")
	}
	hop, err := strconv.Atoi(args[2])
	if err != nil || hop < 0 || hop >= maxHops {
		return fmt.Errorf("bad hop count %q", args[2])
	}
	var fds []int
	if args[3] != "" {
		for s := range strings.SplitSeq(args[3], ",") {
			fd, err := strconv.Atoi(s)
			if err != nil || fd < 0 {
				return fmt.Errorf("bad descriptor list %q", args[3])
			}
			fds = append(fds, fd)
		}
	}
	n := len(fds)
	var names []string
	if n > 0 {
		names = strings.Split(args[4], ":")
	} else if args[4] != "" {
		return fmt.Errorf("names %q for no descriptors", args[4])
	}
	if len(names) != n {
		return fmt.Errorf("%d names for %d descriptors", len(names), n)
	}
	for i, fd := range fds {
		if fd != listenStart+i && fd < listenStart+n {
			return fmt.Errorf("descriptor %d for slot %d overlaps the slots", fd, listenStart+i)
		}
	}
	opts, err := decodeOptions(args[5])
	if err != nil {
		return err
	}
	path, argv := args[6], args[7:]

	// Nothing may fork while descriptors are being moved.
	syscall.ForkLock.Lock()

	again, err := placeFiles(listenStart, fds)
	if err != nil {
		return err
	}
	if again {
		self, err := selfExe()
		if err != nil {
			return err
		}
		if hop+1 >= maxHops {
			return fmt.Errorf("descriptors %d..%d still taken after %d re-execs", listenStart, listenStart+n-1, hop)
		}
		err = syscall.Exec(self, trampolineArgs(hop+1, fds, names, args[5], path, argv), os.Environ())
		return fmt.Errorf("re-exec %s: %w", self, err)
	}

	for i := range n {
		slot := listenStart + i
		if _, err := unix.FcntlInt(uintptr(slot), unix.F_SETFD, 0); err != nil {
			return fmt.Errorf("descriptor %d (%s): %w", slot, names[i], os.NewSyscallError("fcntl", err))
		}
		fl, err := unix.FcntlInt(uintptr(slot), unix.F_GETFL, 0)
		if err != nil {
			return fmt.Errorf("descriptor %d (%s): %w", slot, names[i], os.NewSyscallError("fcntl", err))
		}
		want := fl &^ unix.O_NONBLOCK
		if opts.Nonblocking {
			want = fl | unix.O_NONBLOCK
		}
		if want != fl {
			if _, err := unix.FcntlInt(uintptr(slot), unix.F_SETFL, want); err != nil {
				return fmt.Errorf("descriptor %d (%s): %w", slot, names[i], os.NewSyscallError("fcntl", err))
			}
		}
	}
	if err := cloexecFrom(listenStart + n); err != nil {
		return err
	}
	if opts.User != nil {
		if err := become(opts.User); err != nil {
			return err
		}
	}

	var extra []string
	if n > 0 {
		extra = append(extra,
			envFDs+"="+strconv.Itoa(n),
			envFDNames+"="+joinNames(names),
			envPID+"="+strconv.Itoa(os.Getpid()))
		if id, ok := pidfd.OwnID(); ok {
			extra = append(extra, envPIDFDID+"="+strconv.FormatUint(id, 10))
		}
	}
	env := replaceListenVars(os.Environ(), extra...)
	err = syscall.Exec(path, argv, env)
	return fmt.Errorf("cannot exec %s: %w", path, err)
}

// placeFiles moves the file held by descriptor fds[i] into slot start+i,
// for each i. A slot is free, or holds a descriptor that came through exec
// (not close-on-exec: a placeholder from Exec, or the file itself), which
// nothing in this image uses and which can be overwritten. A close-on-exec
// descriptor in a slot was opened by this image (the Go runtime opens its
// poller and cgroup files as it starts) and must not be touched: placeFiles
// then clears its close-on-exec flag so that the slot stays taken across the
// next exec, and reports again, telling the caller to exec the trampoline
// once more; in that image the slot holds a dead copy that can be
// overwritten.
func placeFiles(start int, fds []int) (again bool, err error) {
	for i, src := range fds {
		slot := start + i
		if src == slot {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(slot), unix.F_GETFD, 0)
		switch {
		case err == unix.EBADF || err == nil && flags&unix.FD_CLOEXEC == 0:
			if err := unix.Dup2(src, slot); err != nil {
				return false, fmt.Errorf("moving descriptor %d to %d: %w", src, slot, os.NewSyscallError("dup2", err))
			}
		case err != nil:
			return false, fmt.Errorf("descriptor %d: %w", slot, os.NewSyscallError("fcntl", err))
		default:
			if _, err := unix.FcntlInt(uintptr(slot), unix.F_SETFD, flags&^unix.FD_CLOEXEC); err != nil {
				return false, fmt.Errorf("descriptor %d: %w", slot, os.NewSyscallError("fcntl", err))
			}
			again = true
		}
	}
	return again, nil
}

// become switches this process to user u: supplementary groups, then group
// ID, then user ID (each of Go's syscall calls applies to every thread of
// the process; the thread is locked too, so that the exec that follows
// comes from the thread that made the calls, whatever the platform does).
// It then makes sure that the IDs took and that root cannot be regained, so
// that no failure leaves the program running with the caller's privileges.
func become(u *Credential) error {
	runtime.LockOSThread() // never unlocked: exec or exit follows
	groups := make([]int, len(u.Groups))
	for i, g := range u.Groups {
		groups[i] = int(g)
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("cannot set the groups of user %d: %w", u.UID, os.NewSyscallError("setgroups", err))
	}
	if err := syscall.Setgid(int(u.GID)); err != nil {
		return fmt.Errorf("cannot set group %d: %w", u.GID, os.NewSyscallError("setgid", err))
	}
	if err := syscall.Setuid(int(u.UID)); err != nil {
		return fmt.Errorf("cannot set user %d: %w", u.UID, os.NewSyscallError("setuid", err))
	}
	if uid, euid := unix.Getuid(), unix.Geteuid(); uid != int(u.UID) || euid != int(u.UID) {
		return fmt.Errorf("user IDs are %d/%d after setting user %d", uid, euid, u.UID)
	}
	if gid, egid := unix.Getgid(), unix.Getegid(); gid != int(u.GID) || egid != int(u.GID) {
		return fmt.Errorf("group IDs are %d/%d after setting group %d", gid, egid, u.GID)
	}
	if u.UID != 0 {
		if err := syscall.Setuid(0); err == nil {
			return fmt.Errorf("user %d can set user ID 0 again", u.UID)
		}
	}
	return nil
}
