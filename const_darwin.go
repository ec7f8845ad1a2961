package fdsend

import "golang.org/x/sys/unix"

// What differs between the systems fdsend supports, one file each.

// abstractAddrs: no abstract namespace here; "@name" is a file name.
const abstractAddrs = false

// scmPIDFD: no pidfd control message here.
const scmPIDFD = -1

// fullControlBuffer: when darwin truncates control data it still installs
// every descriptor, including those that did not fit, which could then be
// neither found nor closed. So every receive gives room for the most
// descriptors a message can carry, and what does not fit in the caller's
// slice is closed by us.
const fullControlBuffer = true

// msgNoSignal: darwin has no MSG_NOSIGNAL; the Go runtime ignores SIGPIPE
// on sockets other than stdout and stderr.
const msgNoSignal = 0

// localPeerPID is the socket option that gives the peer's PID.
const localPeerPID = unix.LOCAL_PEERPID
