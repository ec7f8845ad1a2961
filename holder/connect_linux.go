package holder

import (
	"errors"
	"net"
	"os"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/socket"
	"golang.org/x/sys/unix"
)

// connectQueued connects to the Unix stream socket at path ("@name" for an
// abstract one) with a blocking connect(2) bounded by SO_SNDTIMEO = wait:
// while the listen backlog is full, Linux queues the caller among the
// connectors waiting for a place and wakes them in turn, so a client is not
// outrun by a flood of others retrying at once, and fails with EAGAIN only
// when wait passes. The call holds an OS thread for at most wait.
func connectQueued(path string, wait time.Duration) (*fdsend.Conn, error) {
	addr := &net.UnixAddr{Name: path, Net: "unix"}
	fail := func(call string, err error) (*fdsend.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: "unix", Addr: addr, Err: os.NewSyscallError(call, err)}
	}
	fd, err := socket.Open(unix.AF_UNIX, unix.SOCK_STREAM)
	if err != nil {
		return fail("socket", err)
	}
	deadline := time.Now().Add(wait)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			unix.Close(fd)
			return fail("connect", unix.EAGAIN)
		}
		tv := unix.NsecToTimeval(left.Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
			unix.Close(fd)
			return fail("setsockopt", err)
		}
		// x/sys takes a leading '@' for an abstract address.
		err := unix.Connect(fd, &unix.SockaddrUnix{Name: path})
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EINTR) {
			unix.Close(fd)
			return fail("connect", err)
		}
		// A signal cut the wait short: go on waiting for what is left.
	}
	// The send timeout must not outlive the connect: writes go through the
	// poller, with the Conn's own deadlines.
	var zero unix.Timeval
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &zero)
	return connOf(fd)
}
