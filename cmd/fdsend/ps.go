package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"

	"github.com/fdsend/fdsend/procfd"
	"github.com/spf13/pflag"
)

func init() {
	register(&Command{
		UsageLine: "ps PID",
		Short:     "list the descriptors of a running process (Linux)",
		Long: `List the open descriptors of process PID, a line per descriptor in increasing
order, with two fields separated by a tab: the descriptor's number and what it
is, in the words of fdsend ls ("tcp listener 127.0.0.1:8080", "unix stream
listener /run/x.sock", "udp 0.0.0.0:53", "tcp connected 10.0.0.1:5000 ->
10.0.0.2:80", "file /var/log/x", "pipe", "eventfd", ...), escaped as fdsend
ls escapes it. These are the addresses fdsend adopt --listen takes.

To say what a descriptor is, fdsend duplicates it out of the process with
pidfd_getfd(2) (Linux 5.6 and later), looks at it and closes it at once. That
needs ptrace rights over the process: the same user as the process (and,
where Yama's ptrace_scope is 1, being its ancestor) or CAP_SYS_PTRACE, which
root has.`,
		Footer: "Exit status: 0 listed, 1 refused or failed, 2 usage error.",
		Flags:  psFlags,
	})
}

// psFlags defines the options of fdsend ps.
func psFlags(c *Command, fs *pflag.FlagSet) func([]string) (int, error) {
	return func(pos []string) (int, error) {
		if len(pos) != 1 {
			return 0, usagef("want exactly one PID, got %s", plural(len(pos), "argument"))
		}
		pid, err := parsePID(pos[0])
		if err != nil {
			return 0, err
		}
		p, err := procfd.Open(pid)
		if err != nil {
			return 1, err
		}
		defer p.Close()
		list, err := p.List()
		if err != nil {
			return 1, err
		}
		w := bufio.NewWriter(os.Stdout)
		for _, e := range list {
			fmt.Fprintf(w, "%d\t%s\n", e.Num, escape(e.What))
		}
		if err := w.Flush(); err != nil {
			return 1, fmt.Errorf("writing the list: %s", reason(err))
		}
		return 0, nil
	}
}

// parsePID reads a process ID argument.
func parsePID(s string) (int, error) {
	pid, err := strconv.Atoi(s)
	if err != nil || pid <= 0 || s[0] == '+' {
		return 0, usagef("PID %q is not a process ID (a positive decimal number)", s)
	}
	return pid, nil
}
