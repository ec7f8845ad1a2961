package holder

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/fdsend/fdsend"
)

// Wire types of the holder protocol (PROTOCOL.md, "The holder protocol"): each request and
// each response is one fdsend.Conn message whose data is a JSON object.

// The operations as they are spelled on the wire.
const (
	opStore  = "store"
	opFetch  = "fetch"
	opList   = "list"
	opRemove = "remove"
)

// request is every request; which fields apply depends on Op.
type request struct {
	Op      string   `json:"op"`
	Name    string   `json:"name,omitempty"`    // store, remove
	Names   []string `json:"names,omitempty"`   // fetch
	TTL     int64    `json:"ttl_ns,omitempty"`  // store: nanoseconds, 0 = no expiry
	Replace bool     `json:"replace,omitempty"` // store
	Delete  bool     `json:"delete,omitempty"`  // fetch
}

// response is every response. A failed request has OK false, Code and
// Error, and carries no descriptors.
type response struct {
	OK      bool        `json:"ok"`
	Code    string      `json:"code,omitempty"`
	Error   string      `json:"error,omitempty"`
	Entries []wireEntry `json:"entries,omitempty"` // list, fetch
}

// wireEntry is an Entry on the wire.
type wireEntry struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// KindRaw carries Kind's bytes, base64, when they are not UTF-8 (a
	// path may hold any byte, and JSON strings turn such bytes into
	// U+FFFD, so that two paths could not be told apart).
	KindRaw   []byte `json:"kind_raw,omitempty"`
	Age       int64  `json:"age_ns"`
	ExpiresIn int64  `json:"expires_in_ns,omitempty"`
	UID       int    `json:"uid"`
	GID       int    `json:"gid"`
	PID       int    `json:"pid"`
}

func (w wireEntry) entry() Entry {
	kind := w.Kind
	if w.KindRaw != nil {
		kind = string(w.KindRaw)
	}
	return Entry{
		Name:      w.Name,
		Kind:      kind,
		Age:       time.Duration(w.Age),
		ExpiresIn: time.Duration(w.ExpiresIn),
		StoredBy:  fdsend.Cred{PID: w.PID, UID: w.UID, GID: w.GID},
	}
}

// Entry describes a held descriptor, as List and the holder see it.
type Entry struct {
	// Name is the name it is held under.
	Name string
	// Kind says what the descriptor is, found out by the holder from the
	// descriptor itself: "tcp listener 127.0.0.1:8080", "udp 0.0.0.0:53",
	// "unix stream listener /run/x.sock", "file /var/log/x", "pipe", ...
	// A path in it is as the system gave it: any bytes, not always UTF-8,
	// so print it escaped.
	Kind string
	// Age is how long it has been held.
	Age time.Duration
	// ExpiresIn is the time left before the holder drops it and closes the
	// descriptor; 0 means it never expires.
	ExpiresIn time.Duration
	// StoredBy is the process that stored it, as the kernel reported it
	// for that connection.
	StoredBy fdsend.Cred
}

// Error codes on the wire.
const (
	codeExists   = "exists"
	codeNotHeld  = "not-held"
	codeDenied   = "denied"
	codeFull     = "full"
	codeBusy     = "busy"
	codeInvalid  = "invalid"
	codeInternal = "internal"
	codeClosed   = "closed"
)

// Errors a holder reports, for callers to act on with errors.Is. Each also
// matches the io/fs error of the same meaning where there is one.
var (
	// ErrExists: the name is already held and the store did not ask to
	// replace it. Matches fs.ErrExist.
	ErrExists = fmt.Errorf("name already held: %w", fs.ErrExist)
	// ErrNotHeld: no descriptor is held under the name (never stored,
	// removed, fetched with delete, or expired). Matches fs.ErrNotExist.
	ErrNotHeld = fmt.Errorf("name not held: %w", fs.ErrNotExist)
	// ErrDenied: the holder's rules do not grant this operation to the
	// caller's UID or GID. Matches fs.ErrPermission.
	ErrDenied = fmt.Errorf("operation not allowed for this user: %w", fs.ErrPermission)
	// ErrFull: the holder already holds as many entries as it may.
	ErrFull = errors.New("holder is full")
	// ErrBusy: the holder has as many connections as it serves at once and
	// closed this one.
	ErrBusy = errors.New("holder has too many connections")
	// ErrInvalid: the request was malformed (a bad name, a missing or extra
	// descriptor, an unknown operation).
	ErrInvalid = errors.New("invalid request")
	// ErrServerClosed: the holder is shutting down; Serve returns it after
	// Close.
	ErrServerClosed = errors.New("holder: server closed")
)

// sentinel returns the error a wire code stands for, nil for an unknown one.
func sentinel(code string) error {
	switch code {
	case codeExists:
		return ErrExists
	case codeNotHeld:
		return ErrNotHeld
	case codeDenied:
		return ErrDenied
	case codeFull:
		return ErrFull
	case codeBusy:
		return ErrBusy
	case codeInvalid:
		return ErrInvalid
	case codeClosed:
		return ErrServerClosed
	}
	return nil
}

// Error is a request the holder refused or failed: Op is the operation
// ("store", "fetch", "list", "remove"), Code the holder's error code and
// Msg its explanation. errors.Is matches it against ErrExists, ErrNotHeld,
// ErrDenied, ErrFull, ErrBusy, ErrInvalid and ErrServerClosed as the code
// says.
type Error struct {
	Op   string
	Code string
	Msg  string
}

// Error returns "holder: OP: MSG".
func (e *Error) Error() string {
	return "holder: " + e.Op + ": " + e.Msg
}

// Unwrap returns the sentinel error of the code, if any.
func (e *Error) Unwrap() error { return sentinel(e.Code) }

// failure is an error the server answers with.
type failure struct {
	code string
	msg  string
}

func (f *failure) Error() string { return f.msg }

func fail(code, format string, args ...any) *failure {
	return &failure{code: code, msg: fmt.Sprintf(format, args...)}
}
