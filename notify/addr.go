package notify

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
)

// dial checks addr and connects a close-on-exec datagram socket to it.
func dial(addr string) (*net.UnixConn, error) {
	if err := CheckAddr(addr); err != nil {
		return nil, err
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	return c, nil
}

// CheckAddr reports whether addr is a notification socket address this
// system can use: an absolute path that fits in a Unix socket address, or
// "@name" for an abstract socket on Linux. An address of another family
// (systemd 254's "vsock:...") or a system without Unix descriptor passing
// gives an error wrapping errors.ErrUnsupported; anything else that is
// not an address gives one wrapping syscall.EINVAL. An empty addr is not an
// error (no manager).
func CheckAddr(addr string) error {
	if addr == "" {
		return nil
	}
	if !supported {
		return fmt.Errorf("notify: socket address %q: notification sockets are not supported on this system: %w", addr, errors.ErrUnsupported)
	}
	switch {
	case addr[0] == '/':
		if len(addr) > maxPathLen {
			return fmt.Errorf("notify: socket address %.40q...: %d bytes, a Unix socket path holds at most %d: %w", addr, len(addr), maxPathLen, syscall.EINVAL)
		}
	case addr[0] == '@':
		if !haveAbstract {
			return fmt.Errorf("notify: socket address %q: abstract sockets exist only on Linux: %w", addr, errors.ErrUnsupported)
		}
		if len(addr) == 1 {
			return fmt.Errorf("notify: socket address %q: empty abstract name: %w", addr, syscall.EINVAL)
		}
		if len(addr) > maxPathLen {
			return fmt.Errorf("notify: socket address %.40q...: %d bytes, an abstract name holds at most %d: %w", addr, len(addr), maxPathLen, syscall.EINVAL)
		}
	case strings.HasPrefix(addr, "vsock:") || strings.HasPrefix(addr, "vsock-"):
		return fmt.Errorf("notify: socket address %q: AF_VSOCK addresses are not supported (only a path or @abstract): %w", addr, errors.ErrUnsupported)
	default:
		return fmt.Errorf("notify: socket address %q: want an absolute path or @abstract name: %w", addr, syscall.EINVAL)
	}
	return nil
}
