// Package addr parses the listen addresses of fdsend's command line, in the
// forms systemd-socket-activate accepts, and opens sockets on them.
//
// The forms are: a port ("8080": every address, IPv6 and IPv4 alike), an
// IPv4 address and port ("127.0.0.1:8080"), a bracketed IPv6 address and port
// ("[::1]:8080", with an optional zone "[fe80::1%eth0]:8080"), a file-system
// path that starts with '/' ("/run/app.sock"), and a Linux abstract name that
// starts with '@' ("@app"). Host names are not resolved: a listen address is
// a literal, as in systemd. Beyond systemd, port 0 is allowed and binds a
// port the kernel picks (Listener.Addr tells which).
package addr

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
)

// Kind is the family of a parsed address.
type Kind int

const (
	// Any is a bare port: every local address, IPv6 and IPv4 on one socket
	// (IPV6_V6ONLY off), or IPv4 alone where the system has no IPv6.
	Any Kind = iota
	// IP is an explicit IPv4 or IPv6 address and a port.
	IP
	// Path is a Unix socket in the file system.
	Path
	// Abstract is a Unix socket in Linux's abstract namespace.
	Abstract
)

// maxUnixPath is the room for a path in sockaddr_un on Linux (108 bytes
// with the terminating NUL); the BSDs have less (104), which the kernel
// reports as an error when the socket is bound.
const maxUnixPath = 107

// Addr is a parsed listen address. The zero value is not valid; get one
// from Parse.
type Addr struct {
	Kind Kind
	// IP is the address of an IP Addr (with its zone, if any); unset for Any.
	IP netip.Addr
	// Port is the port of an Any or IP Addr.
	Port uint16
	// Name is the path of a Path Addr or the name (without '@') of an
	// Abstract one.
	Name string
}

// Error is the error Parse returns: the address as given and why it is not
// valid. Err wraps syscall.EINVAL, or syscall.ENAMETOOLONG for a path that
// does not fit in a socket address.
type Error struct {
	Addr string
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("listen address %q: %v", e.Addr, e.Err) }

func (e *Error) Unwrap() error { return e.Err }

func bad(s, format string, args ...any) error {
	return &Error{Addr: s, Err: fmt.Errorf(format+": %w", append(args, syscall.EINVAL)...)}
}

// Parse parses one listen address. Errors are *Error values that say which
// address and what is wrong with it.
func Parse(s string) (Addr, error) {
	switch {
	case s == "":
		return Addr{}, bad(s, "empty")
	case s[0] == '/':
		if strings.IndexByte(s, 0) >= 0 {
			return Addr{}, bad(s, "path contains a NUL byte")
		}
		if len(s) > maxUnixPath {
			return Addr{}, &Error{Addr: s, Err: fmt.Errorf("path is %d bytes, at most %d fit in a socket address: %w", len(s), maxUnixPath, syscall.ENAMETOOLONG)}
		}
		return Addr{Kind: Path, Name: s}, nil
	case s[0] == '@':
		name := s[1:]
		if name == "" {
			return Addr{}, bad(s, "abstract socket name is empty")
		}
		if len(name) > maxUnixPath {
			return Addr{}, &Error{Addr: s, Err: fmt.Errorf("abstract name is %d bytes, at most %d fit in a socket address: %w", len(name), maxUnixPath, syscall.ENAMETOOLONG)}
		}
		return Addr{Kind: Abstract, Name: name}, nil
	case allDigits(s):
		p, err := parsePort(s)
		if err != nil {
			return Addr{}, bad(s, "%v", err)
		}
		return Addr{Kind: Any, Port: p}, nil
	case s[0] == '[':
		end := strings.Index(s, "]:")
		if end < 0 {
			return Addr{}, bad(s, "want [IPv6]:PORT")
		}
		ip, err := netip.ParseAddr(s[1:end])
		if err != nil || !ip.Is6() || ip.Is4In6() {
			return Addr{}, bad(s, "%q is not an IPv6 address", s[1:end])
		}
		p, err := parsePort(s[end+2:])
		if err != nil {
			return Addr{}, bad(s, "%v", err)
		}
		return Addr{Kind: IP, IP: ip, Port: p}, nil
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return Addr{}, bad(s, "want PORT, IPv4:PORT, [IPv6]:PORT, /path or @abstract")
	}
	host := s[:i]
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Is4() {
		if strings.Contains(host, ":") {
			return Addr{}, bad(s, "an IPv6 address needs brackets: [%s]:PORT", host)
		}
		return Addr{}, bad(s, "%q is not an IPv4 address (host names are not resolved)", host)
	}
	p, err := parsePort(s[i+1:])
	if err != nil {
		return Addr{}, bad(s, "%v", err)
	}
	return Addr{Kind: IP, IP: ip, Port: p}, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

var errPort = errors.New("port must be a decimal number from 0 to 65535 without leading zeros")

// parsePort parses a decimal port. Leading zeros are refused: systemd reads
// "0100" as octal, and guessing either way would surprise someone.
func parsePort(s string) (uint16, error) {
	if !allDigits(s) || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("port %q: %w", s, errPort)
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("port %q: %w", s, errPort)
	}
	return uint16(n), nil
}

// String returns the address in the form Parse reads.
func (a Addr) String() string {
	switch a.Kind {
	case Any:
		return strconv.Itoa(int(a.Port))
	case IP:
		return netip.AddrPortFrom(a.IP, a.Port).String()
	case Path:
		return a.Name
	case Abstract:
		return "@" + a.Name
	}
	return "invalid address"
}
