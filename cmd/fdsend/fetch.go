package main

import (
	"errors"
	"os/exec"

	"github.com/fdsend/fdsend/activation/spawn"
	"github.com/spf13/pflag"
)

func init() {
	register(&Command{
		UsageLine: "fetch SOCKET NAME... [--delete] -- COMMAND [ARGS...]",
		Short:     "fetch descriptors from a holder and run a program with them (socket activation)",
		Long: `Fetch the descriptors held under the NAMEs from the holder at SOCKET and run
COMMAND with them by systemd's socket-activation protocol, in place of this
process (same PID): descriptors 3, 4, ... in the order of the NAMEs,
LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES set (the names are the NAMEs),
every descriptor in blocking mode and nothing else open above standard
error, so that any socket-activated program can take them. The holder keeps
its copies unless --delete is given.`,
		Footer: `Exit status: COMMAND's; 1 if the holder refuses or fails; 126 if COMMAND is
not executable, 127 if it is not found; 2 for a usage error.`,
		Flags: fetchFlags,
	})
}

// fetchFlags defines the options of fdsend fetch.
func fetchFlags(c *Command, fs *pflag.FlagSet) func([]string) (int, error) {
	del := fs.Bool("delete", false, "drop the NAMEs from the holder as they are fetched (needs the fetch and delete rights); if COMMAND is not found or cannot be executed they are stored back, but a COMMAND that execve(2) itself rejects later (a corrupt binary, a missing interpreter) loses them")
	uids := addHolderUID(fs)
	return func(pos []string) (int, error) {
		dash := fs.ArgsLenAtDash()
		if dash < 0 {
			return 0, usagef("want SOCKET NAME... -- COMMAND [ARGS...]: the -- and COMMAND are missing")
		}
		if dash < 2 {
			return 0, usagef("want SOCKET and at least one NAME before --")
		}
		argv := pos[dash:]
		if len(argv) == 0 || argv[0] == "" {
			return 0, usagef("COMMAND after -- is missing")
		}
		if err := checkSocket(pos[0]); err != nil {
			return 0, err
		}
		names := pos[1:dash]
		if err := checkHolderNames(names); err != nil {
			return 0, err
		}
		return fetch(c, pos[0], names, argv, *del, *uids)
	}
}

// fetch fetches names from the holder at sock and executes argv with them.
// It returns only if argv could not be run.
func fetch(c *Command, sock string, names, argv []string, del bool, uids holderUIDs) (int, error) {
	// Find COMMAND before anything is fetched (and, with --delete, taken
	// out of the holder).
	if _, err := exec.LookPath(argv[0]); err != nil {
		return commandStatus(err), errors.New(commandError(argv[0], err))
	}
	cl, err := uids.dial(sock)
	if err != nil {
		return 1, err
	}
	defer cl.Close()
	entries, files, err := cl.FetchEntries(names, del)
	if err != nil {
		return 1, requestError(sock, err)
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
	if del {
		for i, f := range files {
			if serr := cl.Store(names[i], f, entries[i].ExpiresIn, false); serr != nil {
				c.logf("cannot put %q back into the holder: %v", names[i], requestError(sock, serr))
			}
		}
	}
	return commandStatus(err), errors.New(commandError(argv[0], err))
}
