package holder

import (
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"
)

// Defaults of a Config.
const (
	// DefaultMax is the most entries a holder keeps when Config.Max is 0.
	DefaultMax = 1024
	// DefaultMaxConns is the most connections a holder serves at once when
	// Config.MaxConns is 0.
	DefaultMaxConns = 1024
	// DefaultTimeout bounds each request and response when Config.Timeout
	// is 0.
	DefaultTimeout = 30 * time.Second
)

// maxRequestBytes is the largest request the server reads; a fetch of
// DefaultMax names of 255 bytes fits with room to spare.
const maxRequestBytes = 1 << 20

// busyTimeout bounds writing the "busy" answer to a connection over
// MaxConns; it goes into an empty socket buffer and never waits in practice.
const busyTimeout = 100 * time.Millisecond

// Config is how a Server behaves. The zero value holds up to DefaultMax
// entries for the server's own user only.
type Config struct {
	// Max is the most entries held at once (0: DefaultMax). A store beyond
	// it fails with ErrFull; replacing a held name always works.
	Max int
	// Rules grant operations to other users and groups. The effective UID
	// of the server's process always has every right; any other peer has
	// the union of the operations of the rules that match its UID or
	// primary GID, and none if no rule matches.
	Rules []Rule
	// MaxConns is the most connections served at once (0: DefaultMaxConns).
	// A connection beyond it gets an ErrBusy answer and is closed at once.
	//
	// Entries and connections each take a descriptor: if Max plus MaxConns
	// do not fit in the process's limit on open descriptors
	// (RLIMIT_NOFILE) with a few to spare, they are lowered (connections to
	// a quarter of what is left at most, entries to the rest; Logf is told), so that a full holder can still accept the
	// connections that would empty it. Server.Limits says what applies.
	MaxConns int
	// Timeout bounds how long a connection may take to send each whole
	// request (counted from the end of the previous one, so it is also how
	// long an idle connection is kept) and to take each response (0:
	// DefaultTimeout). A connection that exceeds it is closed.
	Timeout time.Duration
	// Logf, if not nil, is told about refused requests, hostile or broken
	// clients, expiries and the like, one line each.
	Logf func(format string, args ...any)
}

// SocketMode is the mode Listen gives the socket file: 0600 when every rule
// is about the server's own UID (or there are none), 0666 when rules let
// other users or groups in. The server enforces the rules itself on every
// request; the mode only lets those peers reach it.
func (cfg Config) SocketMode() os.FileMode {
	uid := os.Geteuid()
	for _, r := range cfg.Rules {
		if r.GID >= 0 || (r.UID >= 0 && r.UID != uid) {
			return 0o666
		}
	}
	return 0o600
}

// checked returns cfg with defaults filled in, or what is wrong with it.
func (cfg Config) checked() (Config, error) {
	if cfg.Max < 0 {
		return cfg, fmt.Errorf("holder: Config.Max %d is negative: %w", cfg.Max, syscall.EINVAL)
	}
	if cfg.MaxConns < 0 {
		return cfg, fmt.Errorf("holder: Config.MaxConns %d is negative: %w", cfg.MaxConns, syscall.EINVAL)
	}
	if cfg.Timeout < 0 {
		return cfg, fmt.Errorf("holder: Config.Timeout %v is negative: %w", cfg.Timeout, syscall.EINVAL)
	}
	for _, r := range cfg.Rules {
		if err := r.valid(); err != nil {
			return cfg, err
		}
	}
	if cfg.Max == 0 {
		cfg.Max = DefaultMax
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	cfg.Rules = slices.Clone(cfg.Rules)
	return cfg, nil
}
