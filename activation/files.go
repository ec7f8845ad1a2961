package activation

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/fdsend/fdsend/internal/fdkind"
)

// File is one inherited descriptor and the name the launcher gave it.
type File struct {
	// Name is the descriptor's entry in LISTEN_FDNAMES, or UnknownName when
	// the launcher set no names. It may be empty.
	Name string
	// File is the descriptor itself (3 for the first, 4 for the next, ...),
	// close-on-exec and still in the blocking mode the launcher left it in.
	// Its Name method gives the number and the name, for messages.
	File *os.File
}

// ErrNotInherited is wrapped by the error of Listener, PacketConn, Conn,
// TakeFile and their plural forms when no inherited descriptor has the name
// asked for, including when nothing at all was inherited.
// ListenOrInherit and ListenPacketOrInherit act on it by listening afresh.
var ErrNotInherited = errors.New("activation: no inherited descriptor has that name")

// Files returns the descriptors this process inherited through the socket
// activation protocol, in order, with their names. Nothing inherited is
// (nil, nil): LISTEN_PID absent, or naming another process (another process
// with the same PID, when LISTEN_PIDFDID says so on Linux). Malformed
// variables, a name count that differs from LISTEN_FDS, names with control
// characters or longer than 255 bytes, and descriptors that are not open or
// were not inherited (close-on-exec ones were opened by this process) are an
// *EnvError naming the variable; nothing is then adopted, and the
// descriptors are left as they were.
//
// The first call of Files or of any other function of this package that
// reads the inherited descriptors parses the variables and makes every
// inherited descriptor close-on-exec, so that no child inherits it by
// accident; every later call returns the same result. Files then unsets
// LISTEN_PID, LISTEN_PIDFDID, LISTEN_FDS and LISTEN_FDNAMES (as
// sd_listen_fds(3) does when asked to), so that children do not see them;
// FilesKeepEnv leaves them.
//
// The *os.File values are shared by every caller: the package keeps them
// until one of the taking functions (Listener, PacketConn, Conn, TakeFile and
// their plural forms) takes one, which closes the shared *os.File (its
// methods then return os.ErrClosed) and hands the caller a new object of its
// own. A program that uses an entry directly rather than through a taking
// function owns it and closes it when done. The files are left in the mode
// the launcher passed them in (normally blocking, so not pollable); the
// taking functions return pollable objects.
func Files() ([]File, error) { return inherited.list(true) }

// FilesKeepEnv is Files without unsetting the LISTEN_* variables, for a
// program that wants to read them itself. The parse is shared with Files: if
// Files or a taking function has already run, the variables are gone.
func FilesKeepEnv() ([]File, error) { return inherited.list(false) }

// Listener takes the one inherited listening socket (stream or seqpacket, in
// the listening state) named name and returns it as a net.Listener
// (*net.TCPListener or *net.UnixListener) that the caller owns and closes. It
// is registered with the network poller, so deadlines and Close work as for
// any listener; the descriptor it holds is a close-on-exec duplicate, and the
// inherited one is closed.
//
// It is an error wrapping ErrNotInherited if no descriptor has that name, and
// an error naming the descriptors if several do (use Listeners), if one of
// them has been taken already (each descriptor can be taken once), or if it
// is not a listening socket. On error nothing is taken.
func Listener(name string) (net.Listener, error) {
	ls, err := takeAs(&inherited, name, kindListener, takeOne, net.FileListener, closeListener)
	if err != nil {
		return nil, err
	}
	return ls[0], nil
}

// Listeners takes every inherited listening socket named name, as Listener
// does for one: systemd gives one name to the IPv4 and the IPv6 socket of a
// unit, for example. It errs as Listener does, and if any of them is not a
// listening socket or has been taken; then nothing is taken.
func Listeners(name string) ([]net.Listener, error) {
	return takeAs(&inherited, name, kindListener, takeAll, net.FileListener, closeListener)
}

// PacketConn takes the one inherited datagram socket named name and returns
// it as a net.PacketConn (*net.UDPConn, *net.UnixConn or *net.IPConn) that
// the caller owns and closes, registered with the network poller so that
// deadlines work. Errors and ownership are as for Listener.
func PacketConn(name string) (net.PacketConn, error) {
	cs, err := takeAs(&inherited, name, kindPacket, takeOne, net.FilePacketConn, closePacketConn)
	if err != nil {
		return nil, err
	}
	return cs[0], nil
}

// PacketConns takes every inherited datagram socket named name, as
// PacketConn does for one.
func PacketConns(name string) ([]net.PacketConn, error) {
	return takeAs(&inherited, name, kindPacket, takeAll, net.FilePacketConn, closePacketConn)
}

// Conn takes the one inherited connected stream or seqpacket socket named
// name (what systemd passes, named "connection", to a service of a socket
// with Accept=yes) and returns it as a net.Conn that the caller owns and
// closes, registered with the network poller so that deadlines work. Errors
// and ownership are as for Listener.
func Conn(name string) (net.Conn, error) {
	cs, err := takeAs(&inherited, name, kindConn, takeOne, net.FileConn, closeConn)
	if err != nil {
		return nil, err
	}
	return cs[0], nil
}

// Conns takes every inherited connected socket named name, as Conn does for
// one.
func Conns(name string) ([]net.Conn, error) {
	return takeAs(&inherited, name, kindConn, takeAll, net.FileConn, closeConn)
}

// TakeFile takes the one inherited descriptor named name, of any kind (a
// pipe, a regular file, a terminal, a socket, ...), and returns it as an
// *os.File that the caller owns and closes. The file holds a close-on-exec
// duplicate and the inherited descriptor is closed. Pipes, FIFOs, sockets and
// character devices are put in non-blocking mode (on the open file
// description they share with the launcher, as net.FileListener does) so
// that the file is pollable and its deadlines work; regular files and
// directories are left as they are. Errors are as for Listener, without the
// kind check.
func TakeFile(name string) (*os.File, error) {
	fs, err := takeAs(&inherited, name, kindFile, takeOne, pollableCopy, closeFile)
	if err != nil {
		return nil, err
	}
	return fs[0], nil
}

// TakeFiles takes every inherited descriptor named name, as TakeFile does
// for one.
func TakeFiles(name string) ([]*os.File, error) {
	return takeAs(&inherited, name, kindFile, takeAll, pollableCopy, closeFile)
}

// ListenOrInherit returns the inherited listening socket named name when
// there is one, as Listener does, and otherwise a new listener from
// net.Listen(network, address): the same program then runs under a launcher
// (fdsend activate, systemd-socket-activate, a systemd socket unit) and
// without one. The caller owns the listener either way.
//
// When no descriptor has that name but exactly one untaken listening socket
// is named UnknownName — the launcher named nothing, as
// systemd-socket-activate without --fdname — that one is used. Errors other
// than "not inherited" (malformed variables, a descriptor of the wrong kind,
// several descriptors with the name, several unnamed listeners) are returned
// rather than papered over by listening afresh.
func ListenOrInherit(name, network, address string) (net.Listener, error) {
	ls, err := takeAs(&inherited, name, kindListener, takeOneOrUnnamed, net.FileListener, closeListener)
	if err == nil {
		return ls[0], nil
	}
	if !errors.Is(err, ErrNotInherited) {
		return nil, err
	}
	return net.Listen(network, address)
}

// ListenPacketOrInherit is ListenOrInherit for datagram sockets: the
// inherited datagram socket named name (or the single unnamed one), else
// net.ListenPacket(network, address).
func ListenPacketOrInherit(name, network, address string) (net.PacketConn, error) {
	cs, err := takeAs(&inherited, name, kindPacket, takeOneOrUnnamed, net.FilePacketConn, closePacketConn)
	if err == nil {
		return cs[0], nil
	}
	if !errors.Is(err, ErrNotInherited) {
		return nil, err
	}
	return net.ListenPacket(network, address)
}

func closeListener(l net.Listener)     { l.Close() }
func closePacketConn(c net.PacketConn) { c.Close() }
func closeConn(c net.Conn)             { c.Close() }
func closeFile(f *os.File)             { f.Close() }

// kind is what a taking function wants a descriptor to be, and fdInfo what
// one turned out to be (package internal/fdkind, whose other rendering is
// the holder's; the tests of activation/spawn use it too).
type (
	kind   = fdkind.Kind
	fdInfo = fdkind.Info
)

const (
	kindFile     = fdkind.File
	kindListener = fdkind.Listener
	kindPacket   = fdkind.Packet
	kindConn     = fdkind.Conn
)

// classify reports what the descriptor of f is, without changing it.
func classify(f *os.File) (fdInfo, error) { return fdkind.Of(f) }

// entry is one inherited descriptor.
type entry struct {
	fd    int
	name  string
	file  *os.File
	taken bool
}

func (e *entry) label() string { return fmt.Sprintf("descriptor %d %s", e.fd, quoteShort(e.name)) }

// set holds the inherited descriptors: loaded once, each taken at most once.
type set struct {
	mu      sync.Mutex
	load    func() ([]entry, error)
	loaded  bool
	entries []entry
	err     error
}

// inherited is this process's set, read from its environment.
var inherited = set{load: loadInherited}

// ensure loads the set once. s.mu must be held.
func (s *set) ensure() {
	if !s.loaded {
		s.entries, s.err = s.load()
		s.loaded = true
	}
}

func (s *set) list(unset bool) ([]File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ensure()
	if unset {
		unsetListenVars()
	}
	if s.err != nil {
		return nil, s.err
	}
	if len(s.entries) == 0 {
		return nil, nil
	}
	out := make([]File, len(s.entries))
	for i, e := range s.entries {
		out[i] = File{Name: e.name, File: e.file}
	}
	return out, nil
}

// unsetListenVars removes the protocol's variables from the environment.
func unsetListenVars() {
	for _, v := range listenVars {
		os.Unsetenv(v)
	}
}

// take says how takeAs picks descriptors.
type take uint8

const (
	// takeAll takes every descriptor of the name.
	takeAll take = 0
	// takeOne takes exactly one: several of the name are an error.
	takeOne take = 1 << iota
	// takeOneOrUnnamed is takeOne, and a name that matches nothing falls
	// back to the single untaken descriptor of the kind named UnknownName.
	takeOneOrUnnamed
)

// takeAs takes the descriptors named name as how says, checks that each is
// of kind k and converts each with conv. Either everything asked for is
// taken, or nothing is.
func takeAs[T any](s *set, name string, k kind, how take, conv func(*os.File) (T, error), closeT func(T)) ([]T, error) {
	single, fallback := how != takeAll, how == takeOneOrUnnamed
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ensure()
	unsetListenVars()
	if s.err != nil {
		return nil, s.err
	}
	var idx []int
	for i := range s.entries {
		if s.entries[i].name == name {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 && fallback {
		for i := range s.entries {
			e := &s.entries[i]
			if e.name != UnknownName || e.taken {
				continue
			}
			if info, err := classify(e.file); err == nil && info.Kind == k {
				idx = append(idx, i)
			}
		}
		if len(idx) > 1 {
			return nil, fmt.Errorf("activation: no descriptor is named %s, and %d unnamed ones are %s (%s): name them (--fdname) to choose", quoteShort(name), len(idx), k, s.labels(idx))
		}
	}
	if len(idx) == 0 {
		return nil, fmt.Errorf("%w: %s (%s)", ErrNotInherited, quoteShort(name), s.inventory())
	}
	for _, i := range idx {
		if e := &s.entries[i]; e.taken {
			return nil, fmt.Errorf("activation: %s has been taken already (each inherited descriptor can be taken once)", e.label())
		}
	}
	if single && len(idx) > 1 {
		return nil, fmt.Errorf("activation: %d descriptors are named %s (%s): take them all with the plural form", len(idx), quoteShort(name), s.labels(idx))
	}
	if k != kindFile {
		for _, i := range idx {
			e := &s.entries[i]
			info, err := classify(e.file)
			if err != nil {
				return nil, fmt.Errorf("activation: %s: %w", e.label(), err)
			}
			if info.Kind != k {
				return nil, fmt.Errorf("activation: %s is %s, not %s", e.label(), info.Desc, k)
			}
		}
	}
	out := make([]T, 0, len(idx))
	for _, i := range idx {
		e := &s.entries[i]
		v, err := conv(e.file)
		if err != nil {
			for _, done := range out {
				closeT(done)
			}
			return nil, fmt.Errorf("activation: %s: %w", e.label(), err)
		}
		out = append(out, v)
	}
	for _, i := range idx {
		e := &s.entries[i]
		e.file.Close()
		e.taken = true
	}
	return out, nil
}

// labels describes the entries at idx for a message.
func (s *set) labels(idx []int) string {
	var b strings.Builder
	for j, i := range idx {
		if j > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s.entries[i].label())
	}
	return b.String()
}

// inventory lists what was inherited, for a "not inherited" message.
func (s *set) inventory() string {
	if len(s.entries) == 0 {
		return "nothing was inherited"
	}
	const max = 8
	var b strings.Builder
	b.WriteString("inherited: ")
	for i := range s.entries {
		if i == max {
			fmt.Fprintf(&b, ", and %d more", len(s.entries)-max)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s.entries[i].label())
		if s.entries[i].taken {
			b.WriteString(" (taken)")
		}
	}
	return b.String()
}
