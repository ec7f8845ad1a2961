package fdstore

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdname"
	"github.com/fdsend/fdsend/notify"
)

// Limits of one notification, as systemd's service manager has them.
const (
	// MaxMessage is the longest datagram accepted (PIPE_BUF); longer ones
	// are dropped with their descriptors.
	MaxMessage = 4096
	// MaxFilesPerMessage is the most descriptors one datagram can carry
	// (the kernel's SCM_MAX_FD).
	MaxFilesPerMessage = 253
)

// relayTimeout bounds each send to the outer NOTIFY_SOCKET.
const relayTimeout = time.Second

// Entry is one stored descriptor; the Server owns File until Close.
type Entry struct {
	Name string
	File *os.File
}

// entry is an Entry with its bookkeeping.
type entry struct {
	Entry
	id     uint64 // unique key, also the epoll data
	polled bool   // registered with the watcher
}

// Server is the NOTIFY_SOCKET of one launcher. It owns every stored
// descriptor, the socket and its directory, until Close.
type Server struct {
	conn  *net.UnixConn
	dir   string
	addr  string
	max   int
	logf  func(format string, args ...any)
	relay *relay   // nil without an outer socket
	watch *watcher // nil where stored descriptors are not watched
	wg    sync.WaitGroup

	mu      sync.Mutex
	entries []*entry
	nextID  uint64
	ready   chan struct{}
	isReady bool
	status  string
	closed  bool
}

// New creates a NOTIFY_SOCKET datagram socket in a fresh private 0700 directory and serves it in a
// goroutine. max is the most descriptors stored (FDSTORE beyond that: close the extra fds, log/ignore).
// outer is the launcher's own NOTIFY_SOCKET ("" if none): READY=1 and STATUS= are relayed to it.
// logf (may be nil) receives diagnostics.
//
// logf may be called from several goroutines at once (receiver, hang-up
// watcher, relay), never after Close has returned.
//
// The socket and every descriptor the Server receives are close-on-exec. A
// negative max or an outer address notify.CheckAddr refuses is an error
// before anything is created; on systems without Unix descriptor passing
// the error wraps errors.ErrUnsupported.
func New(max int, outer string, logf func(format string, args ...any)) (*Server, error) {
	if !supported {
		return nil, fmt.Errorf("fdstore: %w", errors.ErrUnsupported)
	}
	if max < 0 {
		return nil, fmt.Errorf("fdstore: max %d is negative: %w", max, syscall.EINVAL)
	}
	if err := notify.CheckAddr(outer); err != nil {
		return nil, fmt.Errorf("fdstore: outer %s: %w", notify.EnvSocket, err)
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	dir, err := privateDir()
	if err != nil {
		return nil, err
	}
	addr := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("fdstore: %w", err)
	}
	// Room for bursts of notifications, as systemd asks for; the kernel caps
	// it at net.core.rmem_max, and the default is fine too.
	_ = conn.SetReadBuffer(8 << 20)
	s := &Server{
		conn:  conn,
		dir:   dir,
		addr:  addr,
		max:   max,
		logf:  logf,
		ready: make(chan struct{}),
	}
	if s.watch, err = newWatcher(); err != nil {
		conn.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("fdstore: %w", err)
	}
	if outer != "" {
		s.relay = newRelay(notify.Client{Addr: outer, Timeout: relayTimeout}, logf)
	}
	s.wg.Add(1)
	go s.serve()
	if s.watch != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.watch.run(s.hangup)
		}()
	}
	return s, nil
}

// privateDir creates a fresh directory of mode 0700 for the socket, short
// enough for a Unix socket path.
func privateDir() (string, error) {
	base := os.TempDir()
	if len(base) > 64 {
		base = "/tmp" // a long $TMPDIR would not fit in sun_path
	}
	dir, err := os.MkdirTemp(base, "fdsend-notify-")
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			// "stat /x: ..." and "mkdir /x/...: ..." say which call
			// failed; the user needs the directory and the reason.
			return "", fmt.Errorf("cannot make a directory for the socket in %s: %w", base, pe.Err)
		}
		return "", fmt.Errorf("cannot make a directory for the socket in %s: %w", base, err)
	}
	// MkdirTemp applied the umask; set 0700 exactly, on the directory it
	// made: through a descriptor opened without following a symlink, never
	// by a chmod of the path, which another user who can write base could
	// swap for a symlink meanwhile.
	if err := chmodDir(dir, 0o700); err != nil {
		os.Remove(dir)
		return "", fmt.Errorf("fdstore: %w", err)
	}
	return dir, nil
}

// Addr returns the value for the child's NOTIFY_SOCKET: the socket's path.
func (s *Server) Addr() string { return s.addr }

// Entries returns the current store, in the order stored. The Server keeps
// ownership of every File: the caller must not close them, and a File may
// be closed by the Server at any moment after Entries returns (FDSTOREREMOVE,
// a hang-up, Close). To pass them to a child safely, use Dup.
func (s *Server) Entries() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Entry, len(s.entries))
	for i, e := range s.entries {
		out[i] = e.Entry
	}
	return out
}

// Dup returns the current store like Entries, but each File is a new
// close-on-exec duplicate that the caller owns and must close; the Server
// cannot close it under the caller's feet. On error nothing is left open.
func (s *Server) Dup() ([]Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Entry, 0, len(s.entries))
	for _, e := range s.entries {
		f, err := dupFile(e.File)
		if err != nil {
			for _, d := range out {
				d.File.Close()
			}
			return nil, fmt.Errorf("fdstore: duplicating %q: %w", e.Name, err)
		}
		out = append(out, Entry{Name: e.Name, File: f})
	}
	return out, nil
}

// Ready returns a channel that is closed on the first READY=1 since New or
// the last ResetReady.
func (s *Server) Ready() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready
}

// ResetReady makes Ready return a fresh, open channel until the next
// READY=1: call it before starting the child again. Channels returned
// before stay closed.
func (s *Server) ResetReady() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isReady {
		s.ready = make(chan struct{})
		s.isReady = false
	}
}

// Status returns the text of the last STATUS= received ("" if none).
func (s *Server) Status() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Close stops serving, closes every stored descriptor and the socket, and
// removes the directory. It waits for the Server's goroutines to finish (a
// relay in progress for at most a second). Calling it again does nothing.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()

	err := s.conn.Close()
	if s.watch != nil {
		s.watch.close()
	}
	s.wg.Wait()
	if s.relay != nil {
		s.relay.stop()
	}
	s.mu.Lock()
	for _, e := range s.entries {
		e.File.Close() // the watcher's epoll descriptor is gone with its registrations
	}
	s.entries = nil
	s.mu.Unlock()
	if rerr := os.RemoveAll(s.dir); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("fdstore: close: %w", err)
	}
	return nil
}

// serve receives notifications until the socket is closed.
func (s *Server) serve() {
	defer s.wg.Done()
	buf := make([]byte, MaxMessage)
	for {
		n, files, err := fdsend.Recv(s.conn, buf, MaxFilesPerMessage)
		if err != nil {
			switch {
			case errors.Is(err, net.ErrClosed):
				return
			case errors.Is(err, fdsend.ErrTruncated):
				// Recv has closed every descriptor of the message.
				s.logf("fdstore: notification dropped: %v", err)
			default:
				s.logf("fdstore: receive: %v", err)
				time.Sleep(10 * time.Millisecond) // no busy loop on a persistent error
			}
			continue
		}
		s.handle(buf[:n], files)
	}
}

// message is a parsed notification: its assignments in order.
type message []string

// parse splits a datagram into its assignments. As with systemd, which
// reads the datagram as a C string, a NUL byte ends it; empty lines are
// skipped.
func parse(b []byte) message {
	if i := slices.Index(b, 0); i >= 0 {
		b = b[:i]
	}
	var m message
	for line := range strings.SplitSeq(string(b), "\n") {
		if line != "" {
			m = append(m, line)
		}
	}
	return m
}

// has reports whether the message contains the exact assignment a.
func (m message) has(a string) bool { return slices.Contains(m, a) }

// value returns the value of the first assignment to key.
func (m message) value(key string) (string, bool) {
	for _, a := range m {
		if v, ok := strings.CutPrefix(a, key+"="); ok {
			return v, true
		}
	}
	return "", false
}

// handle acts on one notification. It consumes files: each one is stored or
// closed before it returns.
func (s *Server) handle(b []byte, files []*os.File) {
	defer func() { closeAll(files) }()
	m := parse(b)

	if m.has("BARRIER=1") {
		if len(m) != 1 {
			s.logf("fdstore: BARRIER=1 with other assignments; ignoring the whole message")
		}
		if len(files) != 1 {
			s.logf("fdstore: BARRIER=1 with %d descriptors (want 1); closing them", len(files))
		}
		return
	}

	ready := m.has("READY=1")
	status, hasStatus := m.value("STATUS")
	if ready || hasStatus {
		s.mu.Lock()
		if ready && !s.isReady {
			s.isReady = true
			close(s.ready)
		}
		if hasStatus {
			s.status = status
		}
		s.mu.Unlock()
		if s.relay != nil {
			s.relay.post(ready, status, hasStatus)
		}
	}

	if m.has("FDSTOREREMOVE=1") {
		name, ok := m.value("FDNAME")
		switch {
		case !ok:
			s.logf("fdstore: FDSTOREREMOVE=1 without FDNAME=; ignored")
		case fdname.Check(name) != nil:
			s.logf("fdstore: FDSTOREREMOVE=1: %v; ignored", fdname.Check(name))
		default:
			s.remove(name)
		}
	}

	if m.has("FDSTORE=1") {
		name, ok := m.value("FDNAME")
		if !ok {
			name = notify.DefaultName
		}
		switch {
		case len(files) == 0:
			s.logf("fdstore: FDSTORE=1 without descriptors; ignored")
		case fdname.Check(name) != nil:
			what := fmt.Sprintf("the %d descriptors", len(files))
			if len(files) == 1 {
				what = "the descriptor"
			}
			s.logf("fdstore: FDSTORE=1: %v; closing %s it carried", fdname.Check(name), what)
		default:
			s.store(name, files, !m.has("FDPOLL=0"))
			files = nil
		}
		return
	}
	if len(files) > 0 {
		s.logf("fdstore: %d descriptors in a message without FDSTORE=1; closed", len(files))
	}
}

// store adds files under name, consuming them: duplicates of stored files
// and those beyond the maximum are closed.
func (s *Server) store(name string, files []*os.File, poll bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var dups, over int
	for _, f := range files {
		if s.closed {
			f.Close()
			continue
		}
		if s.stored(f) {
			dups++
			f.Close()
			continue
		}
		if len(s.entries) >= s.max {
			over++
			f.Close()
			continue
		}
		s.nextID++
		e := &entry{Entry: Entry{Name: name, File: f}, id: s.nextID}
		if poll && s.watch != nil {
			ok, err := s.watch.add(f, e.id)
			if err != nil {
				s.logf("fdstore: watching %q: %v; stored without watching", name, err)
			}
			e.polled = ok
		}
		s.entries = append(s.entries, e)
	}
	if dups > 0 {
		if dups == 1 {
			s.logf("fdstore: a descriptor named %q is already stored; the duplicate closed", name)
		} else {
			s.logf("fdstore: %d descriptors named %q are already stored; duplicates closed", dups, name)
		}
	}
	if over > 0 {
		s.logf("fdstore: store is full (%d descriptors); %d named %q closed", s.max, over, name)
	}
}

// stored reports whether f refers to the same open file as a stored entry.
// s.mu is held.
func (s *Server) stored(f *os.File) bool {
	for _, e := range s.entries {
		if sameFile(e.File, f) {
			return true
		}
	}
	return false
}

// remove closes and forgets every entry named name.
func (s *Server) remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = slices.DeleteFunc(s.entries, func(e *entry) bool {
		if e.Name != name {
			return false
		}
		s.drop(e)
		return true
	})
}

// hangup drops the entry with the given id, which reported EPOLLHUP or
// EPOLLERR. It returns false once the Server is closing: the watcher must
// stop, since the entry stays registered (and reporting) until Close.
func (s *Server) hangup(id uint64, events uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	i := slices.IndexFunc(s.entries, func(e *entry) bool { return e.id == id })
	if i < 0 {
		return true // removed meanwhile, and unregistered before its close
	}
	e := s.entries[i]
	s.logf("fdstore: stored descriptor %q reported %s; closed", e.Name, eventNames(events))
	s.drop(e)
	s.entries = slices.Delete(s.entries, i, i+1)
	return true
}

// drop stops watching an entry and closes its file. s.mu is held.
func (s *Server) drop(e *entry) {
	if e.polled {
		s.watch.del(e.File)
	}
	e.File.Close()
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}
