// Command fdsend runs programs with open descriptors handed to them.
//
// Usage:
//
//	fdsend COMMAND [OPTIONS] [ARGS...]
//	fdsend help [COMMAND]
//	fdsend --version
//
// Each subcommand is a Command (command.go) in a file of its own, added to
// the table with register from an init function; main only dispatches.
// Exit status 2 means a usage error: nothing was started. docs/errors.md
// lists every message and status.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strings"
)

// commands is the table of subcommands by name, filled by register.
var commands = map[string]*Command{}

// register adds a subcommand to the table. Each subcommand's file calls it
// from init. A bad or duplicate name is a programming error and panics at
// start-up.
func register(c *Command) {
	name := c.Name()
	if _, dup := commands[name]; dup || name == "" || name == "help" || strings.HasPrefix(name, "-") {
		panic("fdsend: bad or duplicate subcommand name " + name)
	}
	commands[name] = c
}

// seeHelp ends the message of a usage error at the top level.
const seeHelp = "Run 'fdsend help' for the list of commands.\n"

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
			c, ok := commands[args[1]]
			if !ok {
				fmt.Fprintf(stderr, "fdsend: unknown command %q\n%s", args[1], seeHelp)
				return exitUsage
			}
			return c.execute([]string{"--help"}, stdout, stderr)
		}
		usage(stdout)
		return 0
	case "--version":
		return commands["version"].execute(args[1:], stdout, stderr)
	default:
		c, ok := commands[name]
		if !ok {
			if strings.HasPrefix(name, "-") {
				fmt.Fprintf(stderr, "fdsend: unknown flag %s: a COMMAND comes first\n%s", name, seeHelp)
			} else {
				fmt.Fprintf(stderr, "fdsend: unknown command %q\n%s", name, seeHelp)
			}
			return exitUsage
		}
		return c.execute(args[1:], stdout, stderr)
	}
}

// usage prints the list of subcommands.
func usage(w io.Writer) {
	names := make([]string, 0, len(commands))
	width := 0
	for n := range commands {
		names = append(names, n)
		width = max(width, len(n))
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("Usage: fdsend COMMAND [OPTIONS] [ARGS...]\n\nCommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, n, commands[n].Short)
	}
	b.WriteString("\nRun 'fdsend help COMMAND' or 'fdsend COMMAND --help' for a command's options.\n")
	io.WriteString(w, b.String())
}

// version is the module version fdsend was built from ("(devel)" for a
// build from a work tree).
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// versionLine is what fdsend --version and fdsend version print;
// fdsend activate --version names the subcommand, as
// systemd-socket-activate --version names itself.
func versionLine() string { return "fdsend " + version() + "\n" }
