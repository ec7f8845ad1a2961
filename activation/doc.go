// Package activation implements both sides of the socket activation
// protocol of systemd (sd_listen_fds(3)): receiving the listening sockets and
// other descriptors a launcher hands a process, and handing descriptors to a
// child the same way.
//
// # The protocol
//
// A launcher — systemd, systemd-socket-activate, fdsend activate — starts a
// program with its descriptors at 3, 4, ... and sets LISTEN_FDS to their
// number, LISTEN_PID to the PID of the program (so that a child that
// inherits the variables by mistake ignores them), LISTEN_FDNAMES to their
// names separated by ':' and, since systemd 256 on Linux, LISTEN_PIDFDID to
// the inode number of a pidfd of the program, which unlike a PID is never
// reused.
//
// # Receiving
//
// Files parses the variables once, checks every one of them (PID, pidfd
// inode where the kernel has pidfs, the count of names, the names, that each
// descriptor is open and was inherited) and makes the descriptors
// close-on-exec. The taking functions — Listener, PacketConn, Conn, TakeFile
// and their plural forms — hand one descriptor, chosen by name, to the
// caller as a pollable object of its own (deadlines work), and each
// descriptor can be taken only once. ListenOrInherit and
// ListenPacketOrInherit take the inherited socket of a name if there is one
// and listen afresh otherwise, so that one binary runs the same under a
// launcher and on its own.
//
// # Sending
//
// Command builds an *exec.Cmd and Exec replaces the current process; both
// hand the child a list of named descriptors with correct variables. The
// hard part is LISTEN_PID: it must be the PID of the program finally run,
// which a parent knows only after the fork. Command therefore runs a
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
// # Descriptors and errors
//
// Every descriptor this package opens is close-on-exec, and no error path
// leaves one open. Malformed variables are an *EnvError naming the variable;
// a name that matches nothing wraps ErrNotInherited; bad arguments to
// Command and Exec are *fdsend.ArgError values naming the argument. On
// systems without Unix descriptor passing (Windows, Plan 9, ...) nothing is
// ever inherited, ListenOrInherit listens afresh, and Command and Exec
// return an error wrapping errors.ErrUnsupported.
package activation
