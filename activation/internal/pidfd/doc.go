// Package pidfd gives this process's pidfd inode number, which both sides of
// the socket-activation protocol compare with LISTEN_PIDFDID: package
// activation when it receives, package activation/spawn when its trampoline
// sets the variable for the program it execs.
package pidfd
