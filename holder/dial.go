package holder

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fdsend/fdsend"
)

// ErrUntrusted: the process that answered on the holder's socket runs as a
// user the client does not trust to be the holder (DialConfig.ServerUIDs),
// so the client sent it nothing and took nothing from it. Matches
// fs.ErrPermission; the error, an *UntrustedError, also wraps
// syscall.EPERM.
var ErrUntrusted = fmt.Errorf("the holder's socket is served by a user this client does not trust: %w", fs.ErrPermission)

// ConnectWait is how long a client keeps trying to connect while the
// holder's listen backlog is full (connect fails with EAGAIN): a holder
// that accepts again within it is reached, one that does not fails the
// connection with an error wrapping syscall.EAGAIN.
const ConnectWait = 2 * time.Second

// DialConfig says how a Client connects to a holder. The zero value is the
// default Dial uses.
type DialConfig struct {
	// ServerUIDs are the users the holder may run as. Right after
	// connecting, before anything is sent or received, the client asks the
	// kernel who the peer is (fdsend.PeerCred) and refuses a peer whose
	// UID is not listed with an error wrapping ErrUntrusted. Empty means
	// the client's own effective UID and root (0). This matters most for
	// Linux abstract sockets ("@name"), which have no owner or file mode:
	// any process may bind the name first.
	ServerUIDs []int
}

// Dial connects to the holder at path ("@name" for a Linux abstract
// address), checks that the peer runs as one of c.ServerUIDs, and returns a
// Client that owns the connection; Close closes it. While the holder's
// backlog is full, connecting is retried for up to ConnectWait.
func (c DialConfig) Dial(path string) (*Client, error) {
	conn, err := c.connect(path)
	if err != nil {
		return nil, err
	}
	cl := c.NewClient(conn)
	cl.path = path
	cl.checked = true
	return cl, nil
}

// NewClient is NewClient with the peer checked against c.ServerUIDs before
// the first request.
func (c DialConfig) NewClient(conn *fdsend.Conn) *Client {
	cl := &Client{conn: conn, uids: c.uids()}
	cl.timeout.Store(int64(DefaultTimeout))
	return cl
}

// uids returns the trusted UIDs, the defaults filled in.
func (c DialConfig) uids() []int {
	if len(c.ServerUIDs) > 0 {
		return append([]int(nil), c.ServerUIDs...)
	}
	if euid := os.Geteuid(); euid != 0 && euid >= 0 {
		return []int{euid, 0}
	}
	return []int{0}
}

// connect dials path, retrying while the backlog is full, and checks the
// peer; on failure nothing is left open.
func (c DialConfig) connect(path string) (*fdsend.Conn, error) {
	conn, err := dialWait(path, ConnectWait)
	if err != nil {
		return nil, err
	}
	if err := checkPeer(conn, path, c.uids()); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// dialWait connects to path. While the holder's listen backlog is full
// (connect fails with EAGAIN) it keeps trying until wait has passed: on
// Linux in the kernel's queue of waiting connectors (connectQueued), so that
// a flood of other connections cannot keep taking the free places first;
// elsewhere after short, growing pauses.
func dialWait(path string, wait time.Duration) (*fdsend.Conn, error) {
	conn, err := connectQueued(path, wait)
	if errors.Is(err, syscall.EAGAIN) {
		return nil, fmt.Errorf("holder: %s: its listen backlog stayed full for %v (the holder is not accepting connections): %w", path, wait, err)
	}
	return conn, err
}

// UntrustedError is the error of a connection refused because the peer is
// not a trusted user: Socket is where the client connected ("" for a Client
// of NewClient), Peer who answered there, Trusted the UIDs it would have
// accepted. errors.Is matches it against ErrUntrusted, syscall.EPERM and
// fs.ErrPermission.
type UntrustedError struct {
	Socket  string
	Peer    fdsend.Cred
	Trusted []int
}

// Error says who answered and who was expected.
func (e *UntrustedError) Error() string {
	var b strings.Builder
	b.WriteString("holder: ")
	if e.Socket != "" {
		b.WriteString(e.Socket + ": ")
	}
	fmt.Fprintf(&b, "the socket is served by pid %d uid %d gid %d, not by %s: refusing it", e.Peer.PID, e.Peer.UID, e.Peer.GID, e.TrustedText())
	return b.String()
}

// TrustedText lists the trusted UIDs for a message: "uid 1000 or uid 0".
func (e *UntrustedError) TrustedText() string {
	var b strings.Builder
	for i, u := range e.Trusted {
		if i > 0 {
			b.WriteString(" or ")
		}
		b.WriteString("uid " + strconv.Itoa(u))
	}
	return b.String()
}

// Unwrap returns ErrUntrusted and syscall.EPERM.
func (e *UntrustedError) Unwrap() []error { return []error{ErrUntrusted, syscall.EPERM} }

// checkPeer fails unless the peer of conn runs as one of uids. A peer whose
// credentials cannot be read is refused too.
func checkPeer(conn *fdsend.Conn, path string, uids []int) error {
	cred, err := conn.PeerCred()
	if err != nil {
		where := ""
		if path != "" {
			where = path + ": "
		}
		return fmt.Errorf("holder: %scannot tell who serves the socket, so refusing to talk to it: %w", where, err)
	}
	for _, u := range uids {
		if cred.UID == u {
			return nil
		}
	}
	return &UntrustedError{Socket: path, Peer: cred, Trusted: uids}
}
