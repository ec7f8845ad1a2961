package main

import (
	"fmt"

	"github.com/fdsend/fdsend/holder"
	"github.com/spf13/pflag"
)

func init() {
	register(&Command{
		UsageLine: "transfer FROM TO",
		Short:     "copy everything a holder holds into another holder",
		Long: `Copy every entry of the holder at socket FROM into the holder at socket TO,
each with the time it has left before it expires. A name TO already holds is
reported and skipped (both keep what they had). FROM keeps its entries: to
restart a holder, start the new one on another socket, transfer, then stop
the old one.

Each name is reported on standard output: "copied NAME", "skipped NAME
(already held by TO)", "gone NAME" (dropped by FROM meanwhile); failures on
standard error. Names are escaped as fdsend ls escapes them. Both holders
are checked against --holder-uid.`,
		Footer: `Exit status: 0 if every name was copied or skipped, 1 otherwise, 2 for a
usage error.`,
		Flags: transferFlags,
	})
}

// transferFlags defines the options of fdsend transfer.
func transferFlags(c *Command, fs *pflag.FlagSet) func([]string) (int, error) {
	uids := addHolderUID(fs)
	return func(pos []string) (int, error) {
		if len(pos) != 2 {
			return 0, usagef("want FROM TO, got %s", plural(len(pos), "argument"))
		}
		for _, p := range pos {
			if err := checkSocket(p); err != nil {
				return 0, err
			}
		}
		from, err := uids.dial(pos[0])
		if err != nil {
			return 1, err
		}
		defer from.Close()
		to, err := uids.dial(pos[1])
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
			// A line per name that failed.
			for _, e := range each(err) {
				c.logf("%s", plain(e))
			}
			return 1, nil
		}
		return 0, nil
	}
}
