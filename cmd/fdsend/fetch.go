package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/fdsend/fdsend/activation/spawn"
)

func init() {
	register(&subcommand{
		name:    "fetch",
		summary: "fetch descriptors from a holder and run a program with them (socket activation)",
		run:     runFetch,
	})
}

const fetchUsage = `Usage: fdsend fetch SOCKET NAME... [--delete] -- COMMAND [ARGS...]

Fetch the descriptors held under the NAMEs from the holder at SOCKET and run
COMMAND with them by systemd's socket-activation protocol, in place of this
process (same PID): descriptors 3, 4, ... in the order of the NAMEs,
LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES set (the names are the NAMEs),
every descriptor in blocking mode and nothing else open above standard
error, so that any socket-activated program can take them. The holder keeps
its copies unless --delete is given.

Options:
      --delete    drop the NAMEs from the holder as they are fetched (needs
                  the fetch and delete rights); if COMMAND is not found or
                  cannot be executed they are stored back, but a COMMAND
                  that execve(2) itself rejects later (a corrupt binary, a
                  missing interpreter) loses them
` + holderUIDHelp + `  -h, --help      show this help

Exit status: COMMAND's; 1 if the holder refuses or fails; 126 if COMMAND is
not executable, 127 if it is not found; 2 for a usage error.
`

// runFetch is the entry point of `fdsend fetch`.
func runFetch(args []string) int {
	c := newHolderCmd("fetch", fetchUsage)
	c.addHolderUID()
	var del bool
	c.fs.BoolVar(&del, "delete", false, "drop the names from the holder")
	return c.run(args, func(pos []string) (int, error) {
		dash := c.fs.ArgsLenAtDash()
		if dash < 0 {
			return 0, holderUsagef("want SOCKET NAME... -- COMMAND [ARGS...]: the -- and COMMAND are missing")
		}
		if dash < 2 {
			return 0, holderUsagef("want SOCKET and at least one NAME before --")
		}
		argv := pos[dash:]
		if len(argv) == 0 || argv[0] == "" {
			return 0, holderUsagef("COMMAND after -- is missing")
		}
		if err := checkSocket(pos[0]); err != nil {
			return 0, err
		}
		names := pos[1:dash]
		if err := checkHolderNames(names); err != nil {
			return 0, err
		}
		// Find COMMAND before anything is fetched (and, with --delete,
		// taken out of the holder).
		if _, err := exec.LookPath(argv[0]); err != nil {
			if errors.Is(err, os.ErrNotExist) || errors.Is(err, exec.ErrNotFound) {
				return 127, err
			}
			return 126, err
		}
		cl, err := c.dialHolder(pos[0])
		if err != nil {
			return 1, err
		}
		defer cl.Close()
		entries, files, err := cl.FetchEntries(names, del)
		if err != nil {
			return 1, err
		}
		defer func() {
			for _, f := range files {
				f.Close()
			}
		}()
		named := make([]spawn.NamedFile, len(files))
		for i, f := range files {
			named[i] = spawn.NamedFile{Name: names[i], File: f}
		}
		err = spawn.Exec(named, argv[0], argv, nil)
		// Still here: COMMAND did not start.
		status := 126
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, exec.ErrNotFound) {
			status = 127
		}
		if del {
			for i, f := range files {
				if serr := cl.Store(names[i], f, entries[i].ExpiresIn, false); serr != nil {
					c.logf("putting %q back into the holder: %v", names[i], serr)
				}
			}
		}
		return status, fmt.Errorf("running %s: %w", argv[0], err)
	})
}
