package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/fdsend/fdsend/holder"
	"github.com/spf13/pflag"
)

func init() {
	register(&Command{
		UsageLine: "hold SOCKET [--max N] [--allow RULE]...",
		Short:     "hold descriptors by name for other processes (a descriptor holder)",
		Long: `Listen on the Unix socket SOCKET (a path, or @name for an abstract socket)
and hold descriptors that clients store there by name, for other processes
to fetch: a listening socket outlives the server that made it, across
restarts. Use fdsend store, fetch, ls, rm and transfer as clients.

The holder's own user may do everything; nobody else may do anything unless
--allow grants it: the holder asks the kernel who each client is and checks
every request against the rules. A socket file is mode 0600, or 0666 when
--allow names other users or groups. An abstract socket (@name) has no file
and no mode: any process may connect to it, and any process may bind the
name first if the holder is not running. What protects it is the rules
check on the holder's side and, on the clients' side, that fdsend store,
fetch, ls, rm and transfer refuse a socket not served by their own user or
root (or the user --holder-uid names) before sending or accepting anything.

On SIGTERM or SIGINT the holder closes everything it holds, removes its
socket file and exits 0. Unlike fdsend activate, whose 128+N reports how
its child ended, a signal is how a holder is meant to stop, and a clean
stop is a success (service managers count exit 0 after SIGTERM as one).`,
		Footer: `Exit status: 0 after a stop by SIGTERM or SIGINT; 1 if SOCKET cannot be
listened on or serving fails; 2 for a usage error.`,
		Flags: holdFlags,
	})
}

// holdFlags defines the options of fdsend hold.
func holdFlags(c *Command, fs *pflag.FlagSet) func([]string) (int, error) {
	max := fs.Int("max", holder.DefaultMax, fmt.Sprintf("hold at most `N` entries (default %d)", holder.DefaultMax))
	allow := fs.StringArray("allow", nil, "let other users in (repeatable): `RULE` is uid=USER[:OPS] or gid=GROUP[:OPS], USER and GROUP by number or name, OPS a comma list of store, fetch, list, delete (default: all of them)")
	return func(pos []string) (int, error) {
		if len(pos) != 1 {
			return 0, usagef("want exactly one SOCKET, got %s", plural(len(pos), "argument"))
		}
		if err := checkSocket(pos[0]); err != nil {
			return 0, err
		}
		if *max < 1 {
			return 0, usagef("--max %d: want at least 1", *max)
		}
		cfg := holder.Config{Max: *max, Logf: c.logf}
		for _, a := range *allow {
			r, err := holder.ParseRule(a)
			if err != nil {
				return 0, usagef("--allow: %s", plain(err))
			}
			cfg.Rules = append(cfg.Rules, r)
		}
		return hold(c, pos[0], cfg)
	}
}

// hold serves until a stop signal.
func hold(c *Command, path string, cfg holder.Config) (int, error) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	srv, err := holder.Listen(path, cfg)
	if err != nil {
		return 1, listenError(path, err)
	}
	var rules []string
	for _, r := range cfg.Rules {
		rules = append(rules, r.String())
	}
	allowed := "its own user only"
	if len(rules) > 0 {
		allowed = "its own user and " + strings.Join(rules, " ")
	}
	maxEntries, _ := srv.Limits()
	// An abstract socket has no file and no mode: anyone may connect, and
	// what keeps others out is the check of every request (and clients
	// check who the holder is).
	access := fmt.Sprintf("mode %04o", uint32(cfg.SocketMode()))
	if strings.HasPrefix(path, "@") {
		access = "abstract: no file mode, every client is checked"
	}
	c.logf("holding at most %s on %s (%s) for %s", plural(maxEntries, "descriptor"), path, access, allowed)
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	select {
	case sig := <-sigs:
		c.logf("%v: closing everything held", sig)
		if err := srv.Close(); err != nil {
			c.logf("closing: %s", reason(err))
		}
		<-served
		return 0, nil
	case err := <-served:
		srv.Close()
		if errors.Is(err, holder.ErrServerClosed) {
			return 0, nil
		}
		return 1, fmt.Errorf("serving: %s", reason(err))
	}
}
