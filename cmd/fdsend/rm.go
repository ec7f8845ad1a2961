package main

func init() {
	register(&subcommand{
		name:    "rm",
		summary: "remove names from a holder, closing their descriptors",
		run:     runRm,
	})
}

const rmUsage = `Usage: fdsend rm SOCKET NAME...

Remove each NAME from the holder at SOCKET; the holder closes its
descriptor. A name that is not held is an error; the other names are still
removed.

Options:
` + holderUIDHelp + `  -h, --help      show this help

Exit status: 0 if every name was removed, 1 otherwise, 2 for a usage error.
`

// runRm is the entry point of `fdsend rm`.
func runRm(args []string) int {
	c := newHolderCmd("rm", rmUsage)
	c.addHolderUID()
	return c.run(args, func(pos []string) (int, error) {
		if len(pos) < 2 {
			return 0, holderUsagef("want SOCKET NAME..., got %d arguments", len(pos))
		}
		if err := checkSocket(pos[0]); err != nil {
			return 0, err
		}
		if err := checkHolderNames(pos[1:]); err != nil {
			return 0, err
		}
		cl, err := c.dialHolder(pos[0])
		if err != nil {
			return 1, err
		}
		defer cl.Close()
		status := 0
		for _, name := range pos[1:] {
			if err := cl.Remove(name); err != nil {
				c.logf("%v", err)
				status = 1
			}
		}
		return status, nil
	})
}
