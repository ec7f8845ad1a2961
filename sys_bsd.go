//go:build freebsd || netbsd

package fdsend

// scmPIDFD: these systems have no pidfd control message.
const scmPIDFD = -1

// abstractAddrs: no abstract namespace here; "@name" is a file name.
const abstractAddrs = false
