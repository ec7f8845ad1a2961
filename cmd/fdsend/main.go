// Command fdsend runs programs with open descriptors handed to them.
//
// Usage:
//
//	fdsend COMMAND [OPTIONS] [ARGS...]
//	fdsend help [COMMAND]
//
// Each subcommand lives in a file of its own and adds itself to the table
// of subcommands with register from an init function; main only dispatches.
// Exit status 2 means a usage error: nothing was started.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// subcommand is one entry of the table of subcommands.
type subcommand struct {
	// name is the word on the command line: "activate".
	name string
	// summary is one line for `fdsend help`.
	summary string
	// run executes the subcommand with the arguments after its name and
	// returns the process's exit status. It handles -h/--help itself.
	run func(args []string) int
}

// subcommands is the table of subcommands, filled by register.
var subcommands = map[string]*subcommand{}

// register adds a subcommand to the table. Each subcommand's file calls it
// from init. Registering a name twice is a programming error and panics at
// start-up.
func register(c *subcommand) {
	if _, dup := subcommands[c.name]; dup || c.name == "" || c.name == "help" {
		panic("fdsend: bad or duplicate subcommand name " + c.name)
	}
	subcommands[c.name] = c
}

// exitUsage is the status for a usage error: nothing was started.
const exitUsage = 2

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

// dispatch runs the subcommand args[0] names and returns the exit status.
func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch name := args[0]; name {
	case "help", "-h", "--help":
		if len(args) > 1 && name == "help" {
			c, ok := subcommands[args[1]]
			if !ok {
				fmt.Fprintf(stderr, "fdsend: unknown command %q\n", args[1])
				usage(stderr)
				return exitUsage
			}
			return c.run([]string{"--help"})
		}
		usage(stdout)
		return 0
	default:
		c, ok := subcommands[name]
		if !ok {
			fmt.Fprintf(stderr, "fdsend: unknown command %q\n", name)
			usage(stderr)
			return exitUsage
		}
		return c.run(args[1:])
	}
}

// usage prints the list of subcommands.
func usage(w io.Writer) {
	names := make([]string, 0, len(subcommands))
	width := 0
	for n := range subcommands {
		names = append(names, n)
		width = max(width, len(n))
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("Usage: fdsend COMMAND [OPTIONS] [ARGS...]\n\nCommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, n, subcommands[n].summary)
	}
	b.WriteString("\nRun 'fdsend help COMMAND' or 'fdsend COMMAND --help' for a command's options.\n")
	io.WriteString(w, b.String())
}
