package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/fdsend/fdsend/activation"
	"github.com/fdsend/fdsend/holder"
	"github.com/spf13/pflag"
)

// Shared by the holder subcommands: hold, store, fetch, ls, rm, transfer.

// holderUsageError is a command-line error of a holder subcommand: exit
// status 2, nothing done.
type holderUsageError struct{ msg string }

func (e *holderUsageError) Error() string { return e.msg }

func holderUsagef(format string, args ...any) error {
	return &holderUsageError{msg: fmt.Sprintf(format, args...)}
}

// holderCmd is what every holder subcommand has: its name, its help text,
// and its flag set.
type holderCmd struct {
	name       string
	usage      string
	fs         *pflag.FlagSet
	help       bool
	holderUIDs []string // --holder-uid, for the clients
}

// newHolderCmd returns a flag set for subcommand name with -h/--help.
func newHolderCmd(name, usage string) *holderCmd {
	c := &holderCmd{name: name, usage: usage}
	c.fs = pflag.NewFlagSet(name, pflag.ContinueOnError)
	c.fs.SetOutput(io.Discard) // errors are reported by run
	c.fs.BoolVarP(&c.help, "help", "h", false, "show this help")
	return c
}

// run parses args, calls body with the positional arguments, and turns its
// outcome into an exit status: a usage error prints the error and a hint
// (status 2), another error prints it (status 1, unless body chose one).
func (c *holderCmd) run(args []string, body func(pos []string) (int, error)) int {
	if err := c.fs.Parse(args); err != nil {
		return c.usageFailed(err)
	}
	if c.help {
		io.WriteString(os.Stdout, c.usage)
		return 0
	}
	status, err := body(c.fs.Args())
	var ue *holderUsageError
	if errors.As(err, &ue) {
		return c.usageFailed(err)
	}
	if err != nil {
		c.logf("%v", err)
		if status == 0 {
			status = 1
		}
	}
	return status
}

func (c *holderCmd) usageFailed(err error) int {
	fmt.Fprintf(os.Stderr, "fdsend %s: %s\nRun 'fdsend %s --help' for usage.\n", c.name, escape(err.Error()), c.name)
	return exitUsage
}

// logf writes a line to standard error, prefixed with the subcommand. The
// line is escaped: names, paths and descriptions in it may come from other
// users.
func (c *holderCmd) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "fdsend %s: %s\n", c.name, escape(fmt.Sprintf(format, args...)))
}

// holderUIDHelp is the help text of --holder-uid, for the client commands.
const holderUIDHelp = `      --holder-uid=USER
                      the holder runs as USER (a name or number;
                      repeatable); a socket served by anyone else is
                      refused before anything is sent or received.
                      Default: this user or root
`

// addHolderUID gives a client subcommand its --holder-uid flag.
func (c *holderCmd) addHolderUID() {
	c.fs.StringArrayVar(&c.holderUIDs, "holder-uid", nil, "user the holder runs as")
}

// dialConfig returns how to reach holders, from --holder-uid.
func (c *holderCmd) dialConfig() (holder.DialConfig, error) {
	var cfg holder.DialConfig
	for _, u := range c.holderUIDs {
		id, err := lookupUID(u)
		if err != nil {
			return cfg, holderUsagef("--holder-uid %q: %v", u, err)
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

// checkNames checks descriptor names given on the command line.
func checkHolderNames(names []string) error {
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if err := activation.ValidateName(n); err != nil {
			return holderUsagef("%v", err)
		}
		if seen[n] {
			return holderUsagef("name %q given twice", n)
		}
		seen[n] = true
	}
	return nil
}

// checkSocket checks a holder socket argument.
func checkSocket(s string) error {
	if s == "" {
		return holderUsagef("SOCKET is empty")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return holderUsagef("SOCKET contains a NUL byte")
	}
	return nil
}

// dialHolder connects to the holder at path, trusting it only if it runs
// as a user --holder-uid names (default this user or root).
func (c *holderCmd) dialHolder(path string) (*holder.Client, error) {
	cfg, err := c.dialConfig()
	if err != nil {
		return nil, err
	}
	cl, err := cfg.Dial(path)
	var ue *holder.UntrustedError
	if errors.As(err, &ue) {
		return nil, fmt.Errorf("refusing the holder at %s: it is served by pid %d uid %d, not by %s (if that user runs your holder, say so with --holder-uid %d)", path, ue.Peer.PID, ue.Peer.UID, ue.TrustedText(), ue.Peer.UID)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot reach a holder at %s: %w", path, err)
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
		return 0, holderUsagef("--ttl %q: want a duration such as 90s, 15m or 2h30m", s)
	}
	if d < 0 {
		return 0, holderUsagef("--ttl %q: negative", s)
	}
	return d, nil
}
