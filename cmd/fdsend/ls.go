package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

func init() {
	register(&subcommand{
		name:    "ls",
		summary: "list what a holder holds",
		run:     runLs,
	})
}

const lsUsage = `Usage: fdsend ls SOCKET

List what the holder at SOCKET holds, a line per entry sorted by name, with
four fields separated by tabs: the name; what the descriptor is ("tcp
listener 127.0.0.1:8080", "udp 0.0.0.0:53", "unix stream listener
/run/x.sock", "file /var/log/x", "pipe", ...); how long it has been held;
and the time left before it expires, or "-" for never. Durations are written
as Go writes them (1h2m3s, 250ms).

Options:
  -h, --help      show this help
`

// runLs is the entry point of `fdsend ls`.
func runLs(args []string) int {
	c := newHolderCmd("ls", lsUsage)
	return c.run(args, func(pos []string) (int, error) {
		if len(pos) != 1 {
			return 0, holderUsagef("want exactly one SOCKET, got %d arguments", len(pos))
		}
		if err := checkSocket(pos[0]); err != nil {
			return 0, err
		}
		cl, err := dialHolder(pos[0])
		if err != nil {
			return 1, err
		}
		defer cl.Close()
		entries, err := cl.List()
		if err != nil {
			return 1, err
		}
		w := bufio.NewWriter(os.Stdout)
		for _, e := range entries {
			expiry := "-"
			if e.ExpiresIn > 0 {
				expiry = formatDuration(e.ExpiresIn)
			}
			// A kind never holds a tab or a newline from us, but a path
			// may: keep one entry on one line.
			kind := strings.NewReplacer("\t", `\t`, "\n", `\n`).Replace(e.Kind)
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", e.Name, kind, formatDuration(e.Age), expiry)
		}
		return 0, w.Flush()
	})
}
