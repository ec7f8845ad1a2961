package notify

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdname"
)

// EnvSocket is the environment variable that names the manager's socket.
const EnvSocket = "NOTIFY_SOCKET"

// DefaultName is the name the service manager gives to stored descriptors
// that arrive without FDNAME=. Store always sends a name.
const DefaultName = "stored"

// MaxNameLen is the longest descriptor name the protocol allows.
const MaxNameLen = fdname.MaxLen

// Client sends notifications to one service-manager socket. The zero value
// has no address: every call returns (false, nil), as when not running under
// a manager. A Client holds no descriptor — each call opens a close-on-exec
// socket, sends one datagram and closes it — so it may be copied and used
// from several goroutines at once.
type Client struct {
	// Addr is the manager's socket in NOTIFY_SOCKET's syntax: an absolute
	// path, or "@name" for an abstract socket (Linux only). "" means no
	// manager.
	Addr string

	// Timeout bounds each send, and each wait of Barrier that has no
	// timeout of its own. Zero means wait as long as the manager takes, as
	// libsystemd does: a datagram socket blocks while the manager's queue
	// is full.
	Timeout time.Duration
}

// Env returns a Client for the socket that NOTIFY_SOCKET names now (the
// zero Client when it is unset). The environment is left as it is.
func Env() Client {
	return Client{Addr: os.Getenv(EnvSocket)}
}

// TakeEnv returns a Client for the socket that NOTIFY_SOCKET names and
// unsets the variable, so that processes started afterwards do not inherit
// it (libsystemd's unset_environment flag, but the returned Client keeps
// working). The package-level functions return (false, nil) after it.
func TakeEnv() Client {
	c := Env()
	os.Unsetenv(EnvSocket)
	return c
}

// Send sends state, newline-separated VARIABLE=VALUE assignments such as
// "READY=1\nSTATUS=serving", to the socket in NOTIFY_SOCKET, with the
// descriptors of files (any form fdsend.Send accepts: *os.File, a net conn
// or listener, an integer descriptor). It returns (false, nil) when
// NOTIFY_SOCKET is unset and (true, nil) once the datagram is sent. The
// caller keeps its files; the manager receives duplicates.
func Send(state string, files ...any) (bool, error) { return Env().Send(state, files...) }

// Ready tells the manager that start-up is finished (READY=1).
func Ready() (bool, error) { return Env().Ready() }

// Reloading tells the manager that the service is reloading its
// configuration (RELOADING=1 with MONOTONIC_USEC=, the time of the request
// on CLOCK_MONOTONIC, which systemd's Type=notify-reload requires). Call
// Ready when the reload is done.
func Reloading() (bool, error) { return Env().Reloading() }

// Stopping tells the manager that the service is shutting down
// (STOPPING=1).
func Stopping() (bool, error) { return Env().Stopping() }

// Status sends a one-line, human-readable status (STATUS=...). A status
// containing a newline or a NUL byte is an error wrapping syscall.EINVAL.
func Status(status string) (bool, error) { return Env().Status(status) }

// Watchdog keeps the service's watchdog timer from expiring (WATCHDOG=1).
func Watchdog() (bool, error) { return Env().Watchdog() }

// Store hands the descriptors of files to the manager's descriptor store
// under name (FDSTORE=1, FDNAME=name). The manager keeps them across
// restarts of the service and passes them back at the next start, named, in
// LISTEN_FDS/LISTEN_FDNAMES. The manager watches each stored descriptor and
// drops it when it reports a hang-up or error (StoreNoPoll turns that off).
//
// name must be 1 to 255 printable ASCII characters without ':'; at least
// one file is required and at most 253 fit. Anything else is an error
// wrapping syscall.EINVAL, sent nowhere. The caller keeps its files.
func Store(name string, files ...any) (bool, error) { return Env().Store(name, files...) }

// StoreNoPoll is Store with FDPOLL=0: the manager keeps the descriptors even
// if they report a hang-up or error (for example a socket whose peer may
// close while the service restarts, kept for its data).
func StoreNoPoll(name string, files ...any) (bool, error) {
	return Env().StoreNoPoll(name, files...)
}

// Remove asks the manager to close and forget every stored descriptor
// named name (FDSTOREREMOVE=1, FDNAME=name). name is checked as for Store.
func Remove(name string) (bool, error) { return Env().Remove(name) }

// Barrier waits until the manager has processed every notification this
// process sent before it (BARRIER=1, as sd_notify_barrier): it sends the
// write end of a new pipe and waits up to timeout (none if timeout <= 0 and
// the Client has no Timeout) for the manager to close it. A manager that
// does not close it in time gives an error wrapping syscall.ETIMEDOUT and
// os.ErrDeadlineExceeded. Both ends of the pipe are closed before Barrier
// returns.
func Barrier(timeout time.Duration) (bool, error) { return Env().Barrier(timeout) }

// Send sends state with the descriptors of files to c's socket; see the
// package-level Send. An empty state is an error wrapping syscall.EINVAL.
func (c Client) Send(state string, files ...any) (bool, error) {
	if state == "" {
		return false, fmt.Errorf("notify: empty state: %w", syscall.EINVAL)
	}
	if c.Addr == "" {
		return false, nil
	}
	if err := c.send(state, files); err != nil {
		return false, err
	}
	return true, nil
}

// Ready sends READY=1 to c's socket; see the package-level Ready.
func (c Client) Ready() (bool, error) { return c.Send("READY=1") }

// Reloading sends RELOADING=1 and MONOTONIC_USEC= to c's socket; see the
// package-level Reloading.
func (c Client) Reloading() (bool, error) {
	if c.Addr == "" {
		return false, nil
	}
	usec, err := monotonicUsec()
	if err != nil {
		return false, err
	}
	return c.Send("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatUint(usec, 10))
}

// Stopping sends STOPPING=1 to c's socket.
func (c Client) Stopping() (bool, error) { return c.Send("STOPPING=1") }

// Watchdog sends WATCHDOG=1 to c's socket.
func (c Client) Watchdog() (bool, error) { return c.Send("WATCHDOG=1") }

// Status sends STATUS=status to c's socket; see the package-level Status.
func (c Client) Status(status string) (bool, error) {
	if i := strings.IndexAny(status, "\n\x00"); i >= 0 {
		return false, fmt.Errorf("notify: status %q: byte %d is a newline or NUL: %w", status, i, syscall.EINVAL)
	}
	return c.Send("STATUS=" + status)
}

// Store sends FDSTORE=1 and FDNAME=name with the descriptors of files to
// c's socket; see the package-level Store. The caller keeps its files.
func (c Client) Store(name string, files ...any) (bool, error) {
	return c.store(name, files, false)
}

// StoreNoPoll is Store with FDPOLL=0; see the package-level StoreNoPoll.
func (c Client) StoreNoPoll(name string, files ...any) (bool, error) {
	return c.store(name, files, true)
}

func (c Client) store(name string, files []any, noPoll bool) (bool, error) {
	if err := CheckName(name); err != nil {
		return false, err
	}
	if len(files) == 0 {
		return false, fmt.Errorf("notify: store %q: no files: %w", name, syscall.EINVAL)
	}
	state := "FDSTORE=1\nFDNAME=" + name
	if noPoll {
		state += "\nFDPOLL=0"
	}
	return c.Send(state, files...)
}

// Remove sends FDSTOREREMOVE=1 and FDNAME=name to c's socket.
func (c Client) Remove(name string) (bool, error) {
	if err := CheckName(name); err != nil {
		return false, err
	}
	return c.Send("FDSTOREREMOVE=1\nFDNAME=" + name)
}

// Barrier sends BARRIER=1 to c's socket and waits for the manager to close
// the pipe it carries; see the package-level Barrier.
func (c Client) Barrier(timeout time.Duration) (bool, error) {
	if c.Addr == "" {
		return false, nil
	}
	if timeout <= 0 {
		timeout = c.Timeout
	}
	r, w, err := os.Pipe()
	if err != nil {
		return false, fmt.Errorf("notify: barrier: %w", err)
	}
	defer r.Close()
	err = c.send("BARRIER=1", []any{w})
	w.Close()
	if err != nil {
		return false, err
	}
	if timeout > 0 {
		if err := r.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			return false, fmt.Errorf("notify: barrier: %w", err)
		}
	}
	var buf [64]byte
	for {
		_, err := r.Read(buf[:])
		switch {
		case err == nil:
			continue // the manager wrote something; only the close counts
		case errors.Is(err, os.ErrDeadlineExceeded):
			return false, fmt.Errorf("notify: barrier: the manager did not close the barrier pipe within %v: %w (%w)", timeout, syscall.ETIMEDOUT, os.ErrDeadlineExceeded)
		case errors.Is(err, io.EOF):
			return true, nil
		default:
			return false, fmt.Errorf("notify: barrier: %w", err)
		}
	}
}

// CheckName reports whether name may name stored descriptors: 1 to 255
// printable ASCII characters (space to '~') other than ':', which
// LISTEN_FDNAMES uses as its separator. The error wraps syscall.EINVAL and
// says what is wrong. It is the rule of activation.ValidateName.
func CheckName(name string) error {
	if err := fdname.Check(name); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

// send dials c.Addr and sends one datagram.
func (c Client) send(state string, files []any) error {
	conn, err := dial(c.Addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if c.Timeout > 0 {
		if err := conn.SetWriteDeadline(time.Now().Add(c.Timeout)); err != nil {
			return fmt.Errorf("notify: %w", err)
		}
	}
	if _, err := fdsend.Send(conn, []byte(state), files...); err != nil {
		return fmt.Errorf("notify: sending to %s: %w", c.Addr, err)
	}
	return nil
}
