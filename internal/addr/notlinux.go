//go:build !linux

package addr

const isLinux = false
