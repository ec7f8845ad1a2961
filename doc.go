// Package fdsend passes open file descriptors between processes over Unix
// domain sockets (SCM_RIGHTS), together with an ordinary data message.
//
// # What is in it
//
//   - The core calls: Send and Recv (files as *os.File), SendMsg and RecvMsg
//     (descriptor numbers, flags, no allocation on a *net.UnixConn), one
//     sendmsg(2) or recvmsg(2) each; Socketpair for a connected pair of Unix
//     sockets.
//   - Conn, made by NewConn or Dial: whole messages of any size with any
//     number of files on a SOCK_STREAM socket (framing in PROTOCOL.md), with
//     limits (SetReadLimits), deadlines and safe concurrent use.
//   - Listener, made by Listen or ListenConfig.Listen: a listening Unix
//     socket whose file mode is set before anyone can connect, with stale
//     socket files replaced and an optional allow-list of peers.
//   - PeerCred and Cred: who is at the other end of a connected socket.
//   - Dup and DupFD: a close-on-exec duplicate of any descriptor value the
//     package accepts.
//   - CloseFDs: closes received descriptor numbers, each exactly once, with
//     one close_range(2) per run of consecutive numbers where the kernel has
//     it.
//   - ErrTruncated, ErrProtocol and ArgError: the errors callers act on.
//
// The jobs built on these live in packages of their own: activation (the
// LISTEN_FDS protocol), notify (sd_notify), handoff (zero-downtime restarts
// between unrelated processes) and holder (a descriptor holder), with the
// fdsend command in cmd/fdsend.
//
// # Descriptor values
//
// The socket and the files may be given as an *os.File, any syscall.Conn
// (every socket type of package net), any value with an Fd() uintptr method,
// or a plain int, int32, int64 or uintptr descriptor number. Values with a
// RawConn are held open through it for the whole call, so a concurrent Close
// cannot recycle the number mid-call.
//
// # Ownership
//
// The sender keeps its descriptors; sending duplicates them into the
// receiver, and the caller may close its own copies as soon as the call
// returns. The receiver owns every descriptor it receives and must close it.
// Every received descriptor is close-on-exec from the moment it exists, and no
// call ever leaves a descriptor open that it did not hand to the caller: when
// a message carries more files than the caller has room for, the extra ones
// are closed and the truncation is reported (MSG_CTRUNC for RecvMsg,
// ErrTruncated for Recv).
//
// # Deadlines and Close
//
// When the socket is a syscall.Conn the I/O goes through its RawConn: the
// conn's deadlines apply (os.ErrDeadlineExceeded), a blocked call waits in
// the runtime's network poller rather than holding an OS thread, and Close
// from another goroutine unblocks it. Plain integer sockets get ordinary
// blocking calls.
//
// # Errors
//
// Kernel errors are wrapped so that errors.Is(err, syscall.EXXX) works, and
// their text names the system call. Bad arguments give an *ArgError naming
// the argument ("sock", "files[3]") and its Go type.
package fdsend
