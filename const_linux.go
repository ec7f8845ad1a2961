package fdsend

import "golang.org/x/sys/unix"

// What differs between the systems fdsend supports, one file each.

// abstractAddrs: "@name" is an address in Linux's abstract namespace.
const abstractAddrs = true

// scmPIDFD is the control-message type that carries a pidfd of the sender
// (SO_PASSPIDFD, Linux 6.5); the descriptor in it must be closed if unwanted.
const scmPIDFD = unix.SCM_PIDFD

// fullControlBuffer: the kernel truncates control data cleanly, so a
// receive asks for room for just the descriptors wanted (plus oobExtra).
const fullControlBuffer = false

// msgNoSignal keeps a write to a closed peer from raising SIGPIPE.
const msgNoSignal = unix.MSG_NOSIGNAL
