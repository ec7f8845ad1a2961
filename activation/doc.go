// Package activation receives the listening sockets and other descriptors a
// launcher hands a process through the socket activation protocol of systemd
// (sd_listen_fds(3)), so that a server runs the same under systemd,
// systemd-socket-activate or fdsend activate and on its own (see the example
// of ListenOrInherit). It only receives: starting a child with descriptors is
// package github.com/fdsend/fdsend/activation/spawn, so that a program that
// only receives links none of the launcher's code and runs no init function
// of it.
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
// ValidateName is the rule for the names a launcher may send; package spawn
// applies it to what it sends, and the holder and handoff packages to the
// names they pass on.
//
// # Descriptors and errors
//
// Every descriptor this package opens is close-on-exec, and no error path
// leaves one open. Malformed variables are an *EnvError naming the variable;
// a name that matches nothing wraps ErrNotInherited. On systems without Unix
// descriptor passing (Windows, Plan 9, ...) nothing is ever inherited and
// ListenOrInherit listens afresh.
package activation
