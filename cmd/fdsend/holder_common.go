package main

import (
	"errors"
	"fmt"
	"io"
	"os"
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
	name  string
	usage string
	fs    *pflag.FlagSet
	help  bool
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
	fmt.Fprintf(os.Stderr, "fdsend %s: %v\nRun 'fdsend %s --help' for usage.\n", c.name, err, c.name)
	return exitUsage
}

// logf writes a line to standard error, prefixed with the subcommand.
func (c *holderCmd) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "fdsend "+c.name+": "+format+"\n", args...)
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

// dialHolder connects to the holder at path.
func dialHolder(path string) (*holder.Client, error) {
	c, err := holder.Dial(path)
	if err != nil {
		return nil, fmt.Errorf("cannot reach a holder at %s: %w", path, err)
	}
	return c, nil
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
