package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// A Command is one subcommand of fdsend: its help, its options and what it
// does, in one value, so that a new subcommand is one file and its help
// cannot drift from its options (the Options section is written from the
// flag set). cmd/go's base.Command is the model.
type Command struct {
	// UsageLine is the synopsis after "fdsend ", its first word the name:
	// "hold SOCKET [--max N] [--allow RULE]...".
	UsageLine string
	// Short is the line `fdsend help` shows.
	Short string
	// Long is the help between the usage line and the options.
	Long string
	// Footer follows the options: notes, then the exit statuses.
	Footer string
	// StopAtArg ends the options at the first argument (fdsend activate's
	// COMMAND has options of its own); otherwise options may come anywhere
	// before "--".
	StopAtArg bool
	// Flags defines the options on fs and returns what runs the command
	// with the arguments left once they are parsed. It is called afresh for
	// every run and for the help text, so each run has its own values. A
	// flag's usage string is its help: a word in back quotes names its
	// value (`ADDR`), and setGroup lists it under a heading of its own.
	// -h/--help is added to every command.
	//
	// run returns the exit status and an error to report: a *usageError
	// is reported with a pointer to --help and exits 2; another error
	// exits with status, or 1 if status is 0.
	Flags func(c *Command, fs *pflag.FlagSet) (run func(args []string) (status int, err error))
}

// Name returns the command's name, the first word of its usage line.
func (c *Command) Name() string {
	name, _, _ := strings.Cut(c.UsageLine, " ")
	return name
}

// usageError is a command-line error: exit status 2, nothing started.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// flagSet returns c's flags, defined afresh, and the run function bound to
// them.
func (c *Command) flagSet() (*pflag.FlagSet, func([]string) (int, error), *bool) {
	fs := pflag.NewFlagSet(c.Name(), pflag.ContinueOnError)
	fs.SortFlags = false // the help lists them as defined
	fs.SetInterspersed(!c.StopAtArg)
	fs.SetOutput(io.Discard) // errors are reported by execute
	var run func([]string) (int, error)
	if c.Flags != nil {
		run = c.Flags(c, fs)
	}
	help := fs.BoolP("help", "h", false, "show this help")
	return fs, run, help
}

// parse parses args into a fresh flag set. done is true when the help has
// been written to stdout instead.
func (c *Command) parse(args []string, stdout io.Writer) (fs *pflag.FlagSet, run func([]string) (int, error), done bool, err error) {
	fs, run, help := c.flagSet()
	if err := fs.Parse(args); err != nil {
		return nil, nil, false, flagError(err)
	}
	if *help {
		c.writeHelp(stdout)
		return fs, nil, true, nil
	}
	return fs, run, false, nil
}

// execute runs c with the arguments after its name and returns the exit
// status.
func (c *Command) execute(args []string, stdout, stderr io.Writer) int {
	fs, run, done, err := c.parse(args, stdout)
	if done {
		return 0
	}
	status := 0
	if err == nil {
		status, err = run(fs.Args())
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "fdsend %s: %s\nRun 'fdsend %s --help' for usage.\n", c.Name(), escape(ue.msg), c.Name())
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(stderr, "fdsend %s: %s\n", c.Name(), escape(err.Error()))
		if status == 0 {
			status = 1
		}
	}
	return status
}

// logf writes a line to standard error, prefixed with the command's name.
// The line is escaped: names, paths and descriptions in it may come from
// other users.
func (c *Command) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "fdsend %s: %s\n", c.Name(), escape(fmt.Sprintf(format, args...)))
}

// flagError rewrites an error of pflag's parser: the option named as it is
// typed, no Go-internal text.
func flagError(err error) error {
	var (
		missing *pflag.ValueRequiredError
		invalid *pflag.InvalidValueError
	)
	switch {
	case errors.As(err, &missing):
		name := "--" + missing.GetSpecifiedName()
		if group := missing.GetSpecifiedShortnames(); group != "" {
			name = "-" + missing.GetSpecifiedName()
			if len(group) > 1 {
				name += " (in -" + group + ")"
			}
		}
		return usagef("flag needs an argument: %s", name)
	case errors.As(err, &invalid):
		why := "not valid"
		if cause := errors.Unwrap(invalid); cause != nil {
			why = cause.Error()
		}
		return usagef("invalid argument %q for --%s: %s", invalid.GetValue(), invalid.GetFlag().Name, why)
	}
	// Unknown flags ("unknown flag: --x", "unknown shorthand flag: 'x' in
	// -x") and bad syntax ("bad flag syntax: ---x") read well as they are.
	return usagef("%v", err)
}

// groupKey is the annotation setGroup puts on a flag.
const groupKey = "fdsend-help-group"

// setGroup lists the named flags of fs under heading in the help, before
// the Options section.
func setGroup(fs *pflag.FlagSet, heading string, names ...string) {
	for _, n := range names {
		if err := fs.SetAnnotation(n, groupKey, []string{heading}); err != nil {
			panic("fdsend: " + err.Error()) // a flag name misspelt in the code
		}
	}
}

// writeHelp writes c's help: usage line, Long, the options by group, then
// Footer.
func (c *Command) writeHelp(w io.Writer) {
	io.WriteString(w, c.help())
}

// helpWidth is the width the options' help is wrapped to.
const helpWidth = 79

// help returns c's help text.
func (c *Command) help() string {
	fs, _, _ := c.flagSet()
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: fdsend %s\n", c.UsageLine)
	if c.Long != "" {
		b.WriteString("\n" + strings.Trim(c.Long, "\n") + "\n")
	}
	var headings []string
	groups := map[string][]*pflag.Flag{}
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		h := "Options"
		if g := f.Annotations[groupKey]; len(g) > 0 {
			h = g[0]
		}
		if _, ok := groups[h]; !ok && h != "Options" {
			headings = append(headings, h)
		}
		groups[h] = append(groups[h], f)
	})
	headings = append(headings, "Options")
	col := column(groups)
	for _, h := range headings {
		fmt.Fprintf(&b, "\n%s:\n", h)
		b.WriteString(renderFlags(groups[h], col))
	}
	if c.Footer != "" {
		b.WriteString("\n" + strings.Trim(c.Footer, "\n") + "\n")
	}
	return b.String()
}

// flagLeft is the left part of a flag's entry: "  -l, --listen=ADDR".
func flagLeft(f *pflag.Flag) string {
	left := "      --" + f.Name
	if f.Shorthand != "" {
		left = "  -" + f.Shorthand + ", --" + f.Name
	}
	if name, _ := pflag.UnquoteUsage(f); name != "" {
		left += "=" + name
	}
	return left
}

// column returns where the flags' usage starts: two spaces after the
// longest left part, unless that is too long (its usage then goes on the
// next line).
func column(groups map[string][]*pflag.Flag) int {
	const maxCol = 32
	col := 0
	for _, flags := range groups {
		for _, f := range flags {
			if n := len(flagLeft(f)) + 2; n <= maxCol {
				col = max(col, n)
			}
		}
	}
	return col
}

// renderFlags writes one entry per flag: its left part, then its usage
// wrapped in a column from col.
func renderFlags(flags []*pflag.Flag, col int) string {
	var b strings.Builder
	for _, f := range flags {
		_, usage := pflag.UnquoteUsage(f)
		left := flagLeft(f)
		b.WriteString(left)
		pad := col - len(left)
		if pad < 2 {
			b.WriteString("\n")
			pad = col
		}
		for j, line := range wrap(usage, helpWidth-col) {
			if j > 0 {
				pad = col
			}
			b.WriteString(strings.Repeat(" ", pad) + line + "\n")
		}
	}
	return b.String()
}

// wrap breaks s into lines of at most width bytes at spaces (a longer word
// stands alone). A no-break space (U+00A0) keeps two words together ("100
// ms") and is written as a space.
func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Split(s, " ") {
		word = strings.ReplaceAll(word, "\u00a0", " ")
		switch {
		case line == "":
			line = word
		case len(line)+1+len(word) <= width:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	return append(lines, line)
}

// plural returns "1 argument", "2 arguments".
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
