package main

import "github.com/spf13/pflag"

func init() {
	register(&Command{
		UsageLine: "rm SOCKET NAME...",
		Short:     "remove names from a holder, closing their descriptors",
		Long: `Remove each NAME from the holder at SOCKET; the holder closes its
descriptor. A name that is not held is an error; the other names are still
removed.`,
		Footer: "Exit status: 0 if every name was removed, 1 otherwise, 2 for a usage error.",
		Flags:  rmFlags,
	})
}

// rmFlags defines the options of fdsend rm.
func rmFlags(c *Command, fs *pflag.FlagSet) func([]string) (int, error) {
	uids := addHolderUID(fs)
	return func(pos []string) (int, error) {
		if len(pos) < 2 {
			return 0, usagef("want SOCKET NAME..., got %s", plural(len(pos), "argument"))
		}
		if err := checkSocket(pos[0]); err != nil {
			return 0, err
		}
		if err := checkHolderNames(pos[1:]); err != nil {
			return 0, err
		}
		cl, err := uids.dial(pos[0])
		if err != nil {
			return 1, err
		}
		defer cl.Close()
		status := 0
		for _, name := range pos[1:] {
			if err := cl.Remove(name); err != nil {
				c.logf("%v", requestError(pos[0], err))
				status = 1
			}
		}
		return status, nil
	}
}
