// Package procfd takes open descriptors out of another, running process that
// was never written to hand them over: Linux's pidfd_open(2) and
// pidfd_getfd(2) (Linux 5.6 and later). It is what `fdsend adopt` and
// `fdsend ps` are built on.
//
// Open gets a pidfd for a process once; every later step goes through that
// pidfd, so a PID recycled after Open can never make TakeFD hand over
// another process's descriptor: the pidfd refers to the process that had the
// PID at Open, and once that process has exited every call fails with
// ESRCH. List says what each descriptor is (the words of `fdsend ls`), so
// that a caller can choose sockets by address rather than by number;
// TakeFD duplicates one into the calling process.
//
// A taken descriptor is a duplicate: it refers to the same open file
// description as the process's own, which keeps it. For a listening socket
// this means both processes accept from the same queue until one closes
// its copy. Flags of the open file description, such as O_NONBLOCK, are
// shared too.
//
// # Permissions
//
// pidfd_getfd needs the rights ptrace(2) would need to attach to the
// process (PTRACE_MODE_ATTACH_REALCREDS): the same user as the process and a
// dumpable process, or CAP_SYS_PTRACE; where the Yama security module is
// loaded its kernel.yama.ptrace_scope narrows that further (1: the process
// must also be a descendant of the caller, or have named it with
// PR_SET_PTRACER; 2: CAP_SYS_PTRACE only; 3: never). In practice adopting a
// server's sockets needs root. An error for missing rights says which of
// these applies on the running system.
//
// # Why a package of its own
//
// The root package fdsend passes descriptors between processes that both
// take part (SCM_RIGHTS over a Unix socket) and runs on every Unix. Taking a
// descriptor from a process that does not take part is another mechanism,
// Linux only, with a permission model of its own (ptrace's), and it needs
// the descriptor classifier to be useful; a program that only sends and
// receives links none of it.
//
// # Descriptors and errors
//
// Every descriptor this package opens is close-on-exec. The Process owns
// its pidfd until Close; a File that TakeFD returns belongs to the caller;
// List closes each duplicate it takes as soon as it has looked at it (see
// List for the one side effect that can have). Errors are *Error values
// that wrap the errno, so errors.Is(err, syscall.EPERM) works, and say what
// is missing. On other systems every call returns an error wrapping
// errors.ErrUnsupported.
package procfd
