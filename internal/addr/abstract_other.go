//go:build !linux

package addr

// abstractSupported tells whether the system has abstract Unix sockets.
const abstractSupported = false
