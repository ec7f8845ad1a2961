// Package fdsend passes open file descriptors between processes over Unix
// domain sockets (SCM_RIGHTS), together with an ordinary data message.
//
// The core calls are Send, Recv, SendMsg, RecvMsg and Socketpair: one
// sendmsg(2) or recvmsg(2) each, with every corner of the kernel's behaviour
// handled. The socket and the files may be given as an *os.File, any
// syscall.Conn (every socket type of package net), any value with an
// Fd() uintptr method, or a plain int, int32, int64 or uintptr descriptor
// number.
//
// Ownership: the sender keeps its descriptors; sending duplicates them into
// the receiver, and the caller may close its own copies as soon as the call
// returns. The receiver owns every descriptor it receives and must close it.
// Every received descriptor is close-on-exec from the moment it exists, and no
// call ever leaves a descriptor open that it did not hand to the caller: when
// a message carries more files than the caller has room for, the extra ones
// are closed and the truncation is reported (MSG_CTRUNC for RecvMsg,
// ErrTruncated for Recv).
//
// When the socket is a syscall.Conn the I/O goes through its RawConn: the
// conn's deadlines apply (os.ErrDeadlineExceeded), a blocked call waits in
// the runtime's network poller rather than holding an OS thread, and Close
// from another goroutine unblocks it. Plain integer sockets get ordinary
// blocking calls.
//
// Kernel errors are wrapped so that errors.Is(err, syscall.EXXX) works, and
// their text names the system call. Bad arguments give an *ArgError naming
// the argument ("sock", "files[3]") and its Go type.
package fdsend
