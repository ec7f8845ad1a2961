package holder

import (
	"os"

	"github.com/fdsend/fdsend/internal/fdkind"
)

// describe says what the descriptor of f is, in the short form of
// internal/fdkind: for a socket its protocol, whether it listens, and its
// addresses ("tcp listener 127.0.0.1:8080", "udp 0.0.0.0:53", "unix stream
// listener /run/x.sock", "tcp connected 10.0.0.1:5000 -> 10.0.0.2:80"); for
// anything else its type and, where the system tells it, its path ("file
// /var/log/x", "pipe", "character device /dev/null"); "unknown" where it
// cannot be looked into. f stays open.
func describe(f *os.File) string { return fdkind.Describe(f) }
