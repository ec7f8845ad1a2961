//go:build !linux

package fdsend

// passesCredentials reports whether receives on the socket fd may carry a
// credentials header besides the descriptors. Here it is not asked: the
// control buffer always keeps room for one (LOCAL_CREDS and the like).
func passesCredentials(fd int) bool { return true }
