package fdsend

import "golang.org/x/sys/unix"

// scmPIDFD is the control-message type that carries a pidfd of the sender
// (SO_PASSPIDFD, Linux 6.5); the descriptor in it must be closed if unwanted.
const scmPIDFD = unix.SCM_PIDFD

// abstractAddrs: "@name" is an address in Linux's abstract namespace.
const abstractAddrs = true
