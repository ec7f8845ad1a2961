// Package socket creates sockets that are close-on-exec from the moment they
// exist, for the root package and internal/addr alike: with SOCK_CLOEXEC
// where the system has it, else (darwin) made and marked under
// syscall.ForkLock, which exec takes for writing, so that no child started
// in between inherits them. The sockets are in blocking mode and not
// registered with Go's network poller. Errors are the bare errno, for the
// caller to wrap.
//
// On systems without these calls the package is empty.
package socket
