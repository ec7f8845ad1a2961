package main

import (
	"fmt"

	"github.com/fdsend/fdsend/holder"
)

func init() {
	register(&subcommand{
		name:    "transfer",
		summary: "copy everything a holder holds into another holder",
		run:     runTransfer,
	})
}

const transferUsage = `Usage: fdsend transfer FROM TO

Copy every entry of the holder at socket FROM into the holder at socket TO,
each with the time it has left before it expires. A name TO already holds is
reported and skipped (both keep what they had). FROM keeps its entries: to
restart a holder, start the new one on another socket, transfer, then stop
the old one.

Each name is reported on standard output: "copied NAME", "skipped NAME
(already held by TO)", "gone NAME" (dropped by FROM meanwhile); failures on
standard error. Names are escaped as fdsend ls escapes them. Both holders
are checked against --holder-uid.

Options:
` + holderUIDHelp + `  -h, --help      show this help

Exit status: 0 if every name was copied or skipped, 1 otherwise, 2 for a
usage error.
`

// runTransfer is the entry point of `fdsend transfer`.
func runTransfer(args []string) int {
	c := newHolderCmd("transfer", transferUsage)
	c.addHolderUID()
	return c.run(args, func(pos []string) (int, error) {
		if len(pos) != 2 {
			return 0, holderUsagef("want FROM TO, got %d arguments", len(pos))
		}
		for _, p := range pos {
			if err := checkSocket(p); err != nil {
				return 0, err
			}
		}
		from, err := c.dialHolder(pos[0])
		if err != nil {
			return 1, err
		}
		defer from.Close()
		to, err := c.dialHolder(pos[1])
		if err != nil {
			return 1, err
		}
		defer to.Close()
		rep, err := holder.Transfer(from, to)
		for _, n := range rep.Copied {
			fmt.Printf("copied %s\n", escape(n))
		}
		for _, n := range rep.Skipped {
			fmt.Printf("skipped %s (already held by %s)\n", escape(n), escape(pos[1]))
		}
		for _, n := range rep.Gone {
			fmt.Printf("gone %s\n", escape(n))
		}
		if err != nil {
			return 1, err
		}
		return 0, nil
	})
}
