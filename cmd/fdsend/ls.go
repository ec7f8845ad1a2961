package main

import (
	"bufio"
	"fmt"
	"os"

	"github.com/spf13/pflag"
)

func init() {
	register(&Command{
		UsageLine: "ls SOCKET",
		Short:     "list what a holder holds",
		Long: `List what the holder at SOCKET holds, a line per entry sorted by name, with
four fields separated by tabs: the name; what the descriptor is ("tcp
listener 127.0.0.1:8080", "udp 0.0.0.0:53", "unix stream listener
/run/x.sock", "file /var/log/x", "pipe", ...); how long it has been held;
and the time left before it expires, or "-" for never. Durations are written
as Go writes them (1h2m3s, 250ms).

Names and descriptions are escaped so that each entry stays on one line and
nothing reaches the terminal raw: a backslash is written \\, a tab \t, a
newline \n, a carriage return \r, another control byte or a byte that is not
valid UTF-8 \xHH, and another unprintable character \u{HHHH} (also U+FFFD,
\u{fffd}, which marks bytes of a path that were not valid UTF-8: the holder
cannot send those). Every other printable character stands for itself.`,
		Footer: "Exit status: 0 listed, 1 refused or failed, 2 usage error.",
		Flags:  lsFlags,
	})
}

// lsFlags defines the options of fdsend ls.
func lsFlags(c *Command, fs *pflag.FlagSet) func([]string) (int, error) {
	uids := addHolderUID(fs)
	return func(pos []string) (int, error) {
		if len(pos) != 1 {
			return 0, usagef("want exactly one SOCKET, got %s", plural(len(pos), "argument"))
		}
		if err := checkSocket(pos[0]); err != nil {
			return 0, err
		}
		cl, err := uids.dial(pos[0])
		if err != nil {
			return 1, err
		}
		defer cl.Close()
		entries, err := cl.List()
		if err != nil {
			return 1, requestError(pos[0], err)
		}
		w := bufio.NewWriter(os.Stdout)
		for _, e := range entries {
			expiry := "-"
			if e.ExpiresIn > 0 {
				expiry = formatDuration(e.ExpiresIn)
			}
			// A kind may show a path with any byte in it, stored by
			// another user, and a name comes from the holder.
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", escape(e.Name), escape(e.Kind), formatDuration(e.Age), expiry)
		}
		if err := w.Flush(); err != nil {
			return 1, fmt.Errorf("writing the list: %s", reason(err))
		}
		return 0, nil
	}
}
