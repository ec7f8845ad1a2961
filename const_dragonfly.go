package fdsend

import "golang.org/x/sys/unix"

// What differs between the systems fdsend supports, one file each.

// abstractAddrs: no abstract namespace here; "@name" is a file name.
const abstractAddrs = false

// scmPIDFD: no pidfd control message here.
const scmPIDFD = -1

// fullControlBuffer: our tests do not run on DragonFly, so fdsend does not
// rely on how its kernel truncates control data: every receive gives room
// for the most descriptors a message can carry, and what does not fit in the
// caller's slice is closed by us.
const fullControlBuffer = true

// msgNoSignal keeps a write to a closed peer from raising SIGPIPE.
const msgNoSignal = unix.MSG_NOSIGNAL
