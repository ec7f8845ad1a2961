//go:build !linux

package fdsend

// ctlHeaders returns the room kept for control messages other than
// SCM_RIGHTS: here always oobExtra, whatever the socket's options.
func ctlHeaders(fd int) int { return oobExtra }

// rightsLen is the room for n descriptors.
func rightsLen(n int) int { return rightsSpace(n) }
