package fdsend

import "golang.org/x/sys/unix"

// What differs between the systems fdsend supports, one file each.

// abstractAddrs: no abstract namespace here; "@name" is a file name.
const abstractAddrs = false

// scmPIDFD: no pidfd control message here.
const scmPIDFD = -1

// fullControlBuffer: the kernel truncates control data cleanly, so a
// receive asks for room for just the descriptors wanted (plus oobExtra).
const fullControlBuffer = false

// msgNoSignal keeps a write to a closed peer from raising SIGPIPE.
const msgNoSignal = unix.MSG_NOSIGNAL
