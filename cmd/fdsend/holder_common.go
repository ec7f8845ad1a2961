package main

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/fdsend/fdsend/holder"
	"github.com/fdsend/fdsend/internal/fdname"
	"github.com/spf13/pflag"
)

// Shared by the holder subcommands: hold, store, fetch, ls, rm, transfer.

// holderUIDs is the --holder-uid option of the client commands: the users
// a holder may run as.
type holderUIDs []string

// addHolderUID gives a client command its --holder-uid option.
func addHolderUID(fs *pflag.FlagSet) *holderUIDs {
	var u holderUIDs
	fs.StringArrayVar((*[]string)(&u), "holder-uid", nil,
		"the holder runs as `USER` (a name or number; repeatable); a socket served by anyone else is refused before anything is sent or received. Default: this user or root")
	return &u
}

// dialConfig returns how to reach holders, from --holder-uid.
func (uids holderUIDs) dialConfig() (holder.DialConfig, error) {
	var cfg holder.DialConfig
	for _, u := range uids {
		id, err := lookupUID(u)
		if err != nil {
			return cfg, usagef("--holder-uid %q: %v", u, err)
		}
		cfg.ServerUIDs = append(cfg.ServerUIDs, id)
	}
	return cfg, nil
}

// lookupUID reads a user name or number.
func lookupUID(s string) (int, error) {
	if s == "" {
		return 0, errors.New("empty")
	}
	if s[0] >= '0' && s[0] <= '9' {
		n, err := strconv.ParseUint(s, 10, 31)
		if err != nil {
			return 0, errors.New("not a user id")
		}
		return int(n), nil
	}
	u, err := user.Lookup(s)
	if err != nil {
		return 0, errors.New("no such user")
	}
	n, err := strconv.ParseUint(u.Uid, 10, 31)
	if err != nil {
		return 0, fmt.Errorf("user id %q is not a number", u.Uid)
	}
	return int(n), nil
}

// checkHolderNames checks descriptor names given on the command line.
func checkHolderNames(names []string) error {
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if err := fdname.Check(n); err != nil {
			return usagef("%s", plain(err))
		}
		if seen[n] {
			return usagef("name %q given twice", n)
		}
		seen[n] = true
	}
	return nil
}

// checkSocket checks a holder socket argument.
func checkSocket(s string) error {
	if s == "" {
		return usagef("SOCKET is empty")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return usagef("SOCKET contains a NUL byte")
	}
	return nil
}

// dialHolder connects to the holder at path, trusting it only if it runs
// as a user --holder-uid names (default this user or root).
func (uids holderUIDs) dial(path string) (*holder.Client, error) {
	cfg, err := uids.dialConfig()
	if err != nil {
		return nil, err
	}
	cl, err := cfg.Dial(path)
	var ue *holder.UntrustedError
	if errors.As(err, &ue) {
		return nil, fmt.Errorf("refusing the holder at %s: it is served by pid %d uid %d, not by %s (if that user runs your holder, say so with --holder-uid %d)", path, ue.Peer.PID, ue.Peer.UID, ue.TrustedText(), ue.Peer.UID)
	}
	if err != nil {
		return nil, dialError(path, err)
	}
	return cl, nil
}

// formatDuration writes a duration as Go does, rounded for reading: to the
// millisecond under a second, to the second above.
func formatDuration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// parseTTL reads a --ttl value: a Go duration, 0 for none.
func parseTTL(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, usagef("--ttl %q: want a duration such as 90s, 15m or 2h30m", s)
	}
	if d < 0 {
		return 0, usagef("--ttl %q: negative", s)
	}
	return d, nil
}
