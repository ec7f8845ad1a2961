package fdsend

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// Socketpair returns a connected pair of Unix sockets of the given type:
// syscall.SOCK_STREAM, SOCK_SEQPACKET or SOCK_DGRAM. Both ends are
// close-on-exec and registered with the network poller, so deadlines work on
// them. The caller owns both and closes them.
func Socketpair(typ int) (*net.UnixConn, *net.UnixConn, error) {
	switch typ {
	case sockStream, sockSeqpacket, sockDgram:
	default:
		return nil, nil, &ArgError{Arg: "typ", Type: "int", Err: fmt.Errorf("socket type %d: want SOCK_STREAM, SOCK_SEQPACKET or SOCK_DGRAM: %w", typ, syscall.EINVAL)}
	}
	fds, err := socketpairCloexec(typ)
	if err != nil {
		return nil, nil, os.NewSyscallError("socketpair", err)
	}
	a, err := unixConnFromFD(fds[0])
	if err != nil {
		closeFD(fds[1])
		return nil, nil, err
	}
	b, err := unixConnFromFD(fds[1])
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

// unixConnFromFD turns a Unix socket descriptor into a *net.UnixConn and
// closes the descriptor (net.FileConn works on a close-on-exec duplicate).
func unixConnFromFD(fd int) (*net.UnixConn, error) {
	f := os.NewFile(uintptr(fd), "socketpair")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("fdsend: socketpair gave a %T, not a Unix socket", c)
	}
	return uc, nil
}
