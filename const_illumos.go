package fdsend

// What differs between the systems fdsend supports, one file each.

// abstractAddrs: no abstract namespace here; "@name" is a file name.
const abstractAddrs = false

// scmPIDFD: no pidfd control message here.
const scmPIDFD = -1

// fullControlBuffer: the message calls cannot see MSG_CTRUNC here (see
// msg_illumos.go), so every receive gives room for the most descriptors a
// message can carry, and what does not fit in the caller's slice is closed
// by us.
const fullControlBuffer = true

// msgNoSignal: not passed, as fdsend cannot test the flag there; the Go
// runtime ignores SIGPIPE on sockets other than stdout and stderr.
const msgNoSignal = 0
