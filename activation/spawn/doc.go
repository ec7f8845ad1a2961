// Package spawn starts a program with descriptors handed to it through the
// socket activation protocol of systemd (sd_listen_fds(3)): the launching
// side of package github.com/fdsend/fdsend/activation, which receives.
// Command builds an *exec.Cmd and Exec replaces the current process; both
// hand the program a list of named descriptors as 3, 4, ... with LISTEN_FDS,
// LISTEN_FDNAMES, LISTEN_PID and, on Linux with pidfs, LISTEN_PIDFDID set
// for it, as systemd does, so the program may be in any language: a Go one
// receives with package activation, a C one with sd_listen_fds(3), a Python
// one with socket.socket(fileno=3). See the package example.
//
// Only launchers should import this package: it has an init function (the
// trampoline's, below) that runs, before main, in every program that links
// it. The receiving side, notify, holder and handoff do not depend on it.
//
// # The trampoline
//
// The hard part is LISTEN_PID: it must be the PID of the program finally
// run, which a parent knows only after the fork. Command therefore runs a
// trampoline: the child first execs this program's own executable
// (/proc/self/exe on Linux) with arguments that an init function of this
// package recognises. That init, before main and before any other
// initialisation that comes after this package, sets LISTEN_PID to its own
// PID, moves the descriptors into place, clears O_NONBLOCK on each, makes
// every other descriptor close-on-exec and execs the program, keeping the
// PID. Exec uses the same trampoline to place the descriptors safely while
// the Go runtime of the calling process may be using 3, 4, ... itself.
//
// The trampoline costs a second exec of this program's executable (the
// start-up of a Go runtime, typically a millisecond or two, and package
// initialisation: init functions of packages initialised before this one run
// in the trampoline too, so they should not have effects outside the
// process). It needs the executable to be reachable at start time: always on
// Linux through /proc/self/exe, unless the caller's SysProcAttr chroots or
// changes the mount namespace away from /proc; elsewhere through the path
// os.Executable reports, so a binary replaced on disk would run the new
// version as the trampoline. The trampoline refuses to run in a set-user-ID
// or set-group-ID process. A final exec that fails in the trampoline cannot
// be returned as an error: it is written to standard error and the process
// exits with status 127.
//
// Clearing O_NONBLOCK matters because a descriptor handed to a child shares
// its open file description with the sender: a Go program (this one, or a Go
// child started earlier) sets O_NONBLOCK on it, and a child that expects
// the blocking descriptors systemd passes, such as Python's
// socket.socket(fileno=3), then fails to accept. The flag is cleared right
// before each final exec; the sender should not itself go on accepting on a
// socket it hands over, since it too then sees a blocking socket.
//
// Options changes two things: Nonblocking hands the descriptors over in
// non-blocking mode instead (systemd's NonBlocking=yes, for runtimes such as
// Rust's Tokio that want it), and User runs the program as another user.
// The trampoline makes that switch itself, after placing the descriptors
// and right before the final exec: supplementary groups, group ID, user ID,
// in that order, then a check that root cannot be regained; any failure
// ends it with status 127 before the program runs. Doing it there rather
// than with exec.Cmd's SysProcAttr.Credential (which would switch before
// the trampoline runs) means that only the program has to be executable by
// the user, not this executable, which often lives where the user cannot
// reach it (a directory of root's).
//
// # Descriptors and errors
//
// Every descriptor this package opens is close-on-exec, and no error path
// leaves one open; the caller keeps ownership of the files it passes. Names
// are checked with activation.ValidateName; bad arguments to Command and
// Exec are *fdsend.ArgError values naming the argument. On systems without
// Unix descriptor passing (Windows, Plan 9, ...) Command and Exec return an
// error wrapping errors.ErrUnsupported.
package spawn
