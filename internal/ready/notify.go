package ready

import (
	"os"
	"slices"
	"strings"
)

// Notify is the probe notify: a generation is ready when its process, or
// one of its descendants, sends READY=1 on the NOTIFY_SOCKET its Check
// gives it. Linux only (see Parse).
//
// Each Check owns one close-on-exec datagram socket, in a directory of its
// own of mode 0700 under os.TempDir() (or /tmp), with SO_PASSCRED set: the
// kernel attaches the sender's pid to every datagram, and only a datagram
// from the generation's process or a live descendant of it is accepted.
// Others are logged and dropped with any descriptors they carry.
type Notify struct {
	// Owner, if not nil, makes the socket belong to this user and group
	// (mode 0600) and its directory searchable (0711, still the
	// launcher's), for children that run as another user than the
	// launcher: only they and root can reach it, and they cannot replace
	// it.
	Owner *Owner
	// Forward, if not nil, receives every accepted notification, READY=1
	// and STATUS= included, from the goroutine that reads the socket (in
	// arrival order, one at a time). It owns the message's Files and must
	// close them. Without Forward the files are closed at once, which also
	// answers BARRIER=1.
	Forward func(Message)
	// Logf, if not nil, receives a line for each notification dropped and
	// each READY=1 and STATUS= accepted. It is called from the reading
	// goroutine.
	Logf func(format string, args ...any)
}

// Owner is a user and group id.
type Owner struct{ UID, GID int }

func (p *Notify) String() string { return "notify" }

// Message is one notification accepted on a generation's socket.
type Message struct {
	Gen           int      // the generation whose socket received it
	PID, UID, GID int      // the sender, as the kernel tells
	Fields        []string // the VARIABLE=VALUE lines, in order, without empty lines
	Files         []*os.File
}

// Has reports whether the message holds the exact assignment a, such as
// "READY=1".
func (m Message) Has(a string) bool { return slices.Contains(m.Fields, a) }

// Value returns the value of the first assignment to key.
func (m Message) Value(key string) (string, bool) {
	for _, f := range m.Fields {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v, true
		}
	}
	return "", false
}

// fields splits a datagram into its lines. As with systemd, which reads it
// as a C string, a NUL byte ends it.
func fields(b []byte) []string {
	if i := slices.Index(b, 0); i >= 0 {
		b = b[:i]
	}
	var out []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if line != "" {
			out = append(out, line)
		}
	}
	return out
}

func (p *Notify) logf(format string, args ...any) {
	if p.Logf != nil {
		p.Logf(format, args...)
	}
}
