package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/fdsend/fdsend/internal/addr"
	"github.com/fdsend/fdsend/internal/fdname"
	"github.com/fdsend/fdsend/internal/launch"
	"github.com/spf13/pflag"
)

func init() {
	register(activateCmd)
}

// activateCmd is fdsend activate.
var activateCmd = &Command{
	UsageLine: "activate [OPTIONS] [--] COMMAND [ARGS...]",
	Short:     "listen on sockets and run a program with them (socket activation), restarting it if asked",
	Long: `Listen on the given sockets and run COMMAND at once with them, by systemd's
socket-activation protocol: the sockets are descriptors 3, 4, ... in blocking
mode, with LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES set. Descriptors this
launcher inherited through LISTEN_FDS are passed on first, with their names;
then its own -l sockets, named by --fdname (default "unknown"). The sockets
stay open in the launcher, so with --restart connections made while COMMAND
is being restarted wait in the backlog.

SIGTERM, SIGINT, SIGHUP, SIGUSR1 and SIGUSR2 are forwarded to the child (to
every child with --accept). After SIGTERM or SIGINT nothing is restarted and
the launcher exits with the child's status (128+N if signal N killed it).

With --reload (or --watch) the child runs in generations: SIGHUP (or
--reload-signal, or a change under a --watch PATH after --build succeeds)
starts a new generation beside the serving one, with the same sockets; the
old one is sent --stop-signal only once the new one is ready (--ready), and
one that fails to become ready is stopped while the old one keeps serving.
Each child gets FDSEND_GENERATION; under a service manager (NOTIFY_SOCKET)
the launcher reports READY=1, RELOADING=1 and STATUS= for all of them.

As PID 1 (a container's entry point) it is also the container's init: that
process reaps every orphan, passes signals on and exits with the status of
the launcher proper, which it runs as its child with the same arguments.`,
	Footer: `ADDR is PORT (every address, IPv6 and IPv4), IPv4:PORT, [IPv6]:PORT,
/path (a Unix socket; a stale socket file there is replaced) or @name (an
abstract Unix socket). Host names are not resolved. Port 0 picks a free port;
the log line on standard error says which.

Exit status: the child's; 2 for a usage error (nothing started); 1 if a
socket cannot be opened; 126 or 127 if COMMAND cannot be run.`,
	StopAtArg: true, // options end at COMMAND
	Flags: func(c *Command, fs *pflag.FlagSet) func([]string) (int, error) {
		var f activateFlags
		f.define(fs)
		return func(args []string) (int, error) {
			if f.version {
				io.WriteString(os.Stdout, "fdsend activate "+version()+"\n")
				return 0, nil
			}
			cfg, err := f.config(fs, args)
			if err != nil {
				return 0, err
			}
			return cfg.run(), nil
		}
	},
}

// listValue is a repeatable string option; every occurrence is appended
// (pflag's StringArray would let an aliased flag start the list afresh).
type listValue struct {
	list *[]string
	typ  string
}

func (v listValue) String() string     { return strings.Join(*v.list, " ") }
func (v listValue) Set(s string) error { *v.list = append(*v.list, s); return nil }
func (v listValue) Type() string       { return v.typ }

// activateConfig is the command line of `fdsend activate`, checked.
type activateConfig struct {
	addrs    []addr.Addr
	names    []string // one per addr
	sockType int      // syscall.SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET
	accept   bool
	inetd    bool
	setenv   []string // NAME=VALUE, in order
	restart  launch.Restart
	fdstore  int // -1: no store
	// nonblocking hands the sockets over with O_NONBLOCK set.
	nonblocking bool
	// user, if not nil, is who every child runs as.
	user *launch.User
	// reload runs the child in overlapping generations (activate_reload.go).
	reload bool
	gen    genConfig
	argv   []string
}

// activateFlags holds the options as pflag parses them.
type activateFlags struct {
	listen, setenv, fdnames            []string
	datagram, seqpacket, accept, inetd bool
	nonblocking                        bool
	version                            bool
	restart                            string
	fdstore                            int
	user                               string
	gen                                genFlags
}

// define defines the options of fdsend activate on fs, storing into f.
func (f *activateFlags) define(fs *pflag.FlagSet) {
	fs.VarP(listValue{&f.listen, "ADDR"}, "listen", "l", "listen on `ADDR` (repeatable)")
	fs.BoolVarP(&f.datagram, "datagram", "d", false, "datagram sockets instead of stream sockets")
	fs.BoolVar(&f.seqpacket, "seqpacket", false, "SOCK_SEQPACKET sockets instead of stream sockets")
	fs.BoolVarP(&f.accept, "accept", "a", false, "one child per connection, the connection as fd 3")
	fs.BoolVar(&f.inetd, "inetd", false, "the socket (with -a, the connection) as stdin and stdout instead, without LISTEN_* variables")
	fs.VarP(listValue{&f.setenv, "NAME[=VALUE]"}, "setenv", "E", "set NAME for the child; NAME alone passes the launcher's value (repeatable)")
	fs.Var(listValue{&f.setenv, "NAME[=VALUE]"}, "environment", "old name of --setenv")
	fs.MarkHidden("environment") // as in systemd-socket-activate
	fs.Var(listValue{&f.fdnames, "NAME[:NAME...]"}, "fdname", `names of the -l sockets: one name for all, or one per -l (default "unknown")`)
	fs.StringVar(&f.restart, "restart", "no", "restart the child when it exits: `POLICY` is no (default), on-failure or always; a clean exit restarts at once, but at most one start per 100\u00a0ms; a failure within 1\u00a0s of the start waits 100\u00a0ms, doubling with each such failure in a row up to 5\u00a0s")
	fs.IntVar(&f.fdstore, "fdstore", -1, "give the child a NOTIFY_SOCKET that keeps up to `N` descriptors it stores (FDSTORE=1) and passes them back, named, after a restart")
	fs.BoolVar(&f.nonblocking, "nonblocking", false, "hand the sockets over in non-blocking mode (systemd's NonBlocking=yes) instead of blocking mode")
	fs.StringVar(&f.user, "user", "", "run every child as `USER[:GROUP]` (names or numbers) with USER's groups; the launcher opens the sockets first, as itself")
	f.gen.define(fs)
	fs.BoolVar(&f.version, "version", false, "show fdsend's version")
}

// config checks the parsed options and the arguments left (COMMAND and
// its arguments).
func (f *activateFlags) config(fs *pflag.FlagSet, argv []string) (cfg *activateConfig, err error) {
	listen, setenv, fdnames := f.listen, f.setenv, f.fdnames
	datagram, seqpacket, accept, inetd := f.datagram, f.seqpacket, f.accept, f.inetd
	restart, fdstore := f.restart, f.fdstore
	cfg = &activateConfig{sockType: syscall.SOCK_STREAM, accept: accept, inetd: inetd, fdstore: -1, nonblocking: f.nonblocking, argv: argv}
	if len(cfg.argv) == 0 {
		return nil, usagef("COMMAND is missing")
	}
	if cfg.argv[0] == "" {
		return nil, usagef("COMMAND is empty")
	}
	switch {
	case datagram && seqpacket:
		return nil, usagef("--datagram and --seqpacket exclude each other")
	case datagram:
		cfg.sockType = syscall.SOCK_DGRAM
	case seqpacket:
		cfg.sockType = syscall.SOCK_SEQPACKET
	}
	if datagram && accept {
		return nil, usagef("--accept needs connections: not with --datagram")
	}
	if cfg.restart, err = launch.ParseRestart(restart); err != nil {
		return nil, usagef("--restart: %s", plain(err))
	}
	if accept && cfg.restart != launch.RestartNo {
		return nil, usagef("--restart does not apply to --accept (every connection gets a new child)")
	}
	if fs.Changed("fdstore") {
		if fdstore < 0 {
			return nil, usagef("--fdstore=%d: want a number of descriptors, 0 or more", fdstore)
		}
		if accept || inetd {
			return nil, usagef("--fdstore does not combine with --accept or --inetd")
		}
		cfg.fdstore = fdstore
	}
	if f.nonblocking && inetd {
		return nil, usagef("--nonblocking does not apply to --inetd: standard input and output stay blocking")
	}
	if fs.Changed("user") {
		if cfg.user, err = launch.LookupUser(f.user); err != nil {
			return nil, usagef("--user: %s", plain(err))
		}
	}
	if err := f.gen.config(fs, cfg); err != nil {
		return nil, err
	}
	for _, s := range listen {
		a, err := addr.Parse(s)
		if err != nil {
			return nil, usagef("--listen: %s", plain(err))
		}
		cfg.addrs = append(cfg.addrs, a)
	}
	if cfg.names, err = expandNames(fdnames, len(cfg.addrs)); err != nil {
		return nil, err
	}
	for _, s := range setenv {
		kv, err := envAssignment(s)
		if err != nil {
			return nil, err
		}
		cfg.setenv = append(cfg.setenv, kv)
	}
	return cfg, nil
}

// expandNames turns the --fdname values into one name per -l socket.
func expandNames(fdnames []string, n int) ([]string, error) {
	var names []string
	for _, v := range fdnames {
		for _, name := range strings.Split(v, ":") {
			if err := fdname.Check(name); err != nil {
				return nil, usagef("--fdname: %s", plain(err))
			}
			names = append(names, name)
		}
	}
	out := make([]string, n)
	switch {
	case len(names) == 0:
		for i := range out {
			out[i] = fdname.Unknown
		}
	case n == 0:
		return nil, usagef("--fdname names -l sockets, and there is none")
	case len(names) == 1:
		for i := range out {
			out[i] = names[0]
		}
	case len(names) == n:
		copy(out, names)
	default:
		return nil, usagef("--fdname gives %s for %s: give one for all or one each", plural(len(names), "name"), plural(n, "-l socket"))
	}
	return out, nil
}

// envAssignment checks one -E value and returns it as NAME=VALUE: a NAME
// alone takes the launcher's value of NAME, empty if unset, as
// systemd-socket-activate does.
func envAssignment(s string) (string, error) {
	name, value, hasValue := strings.Cut(s, "=")
	if !validEnvName(name) {
		return "", usagef("--setenv %q: %q is not a valid variable name (letters, digits and '_', not starting with a digit)", s, name)
	}
	if fdname.IsListenVar(name) {
		return "", usagef("--setenv %q: %s is set by fdsend activate", s, name)
	}
	if strings.IndexByte(value, 0) >= 0 {
		return "", usagef("--setenv %q: the value contains a NUL byte", s)
	}
	if !hasValue {
		value = os.Getenv(name)
	}
	return name + "=" + value, nil
}

// validEnvName reports whether name is a portable environment variable
// name, as systemd's env_name_is_valid requires.
func validEnvName(name string) bool {
	if name == "" || (name[0] >= '0' && name[0] <= '9') {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// lookCommand checks that COMMAND can be run: the status is 127 when it is
// not found and 126 when it is not executable, as in a shell.
func lookCommand(name string) (int, error) {
	if _, err := exec.LookPath(name); err != nil {
		return commandStatus(err), errors.New(commandError(name, err))
	}
	return 0, nil
}

// logf writes one line of the launcher's log to standard error.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "fdsend activate: "+format+"\n", args...)
}

// usageFailed reports a usage error found once the options are parsed,
// with the pointer to the help that every usage error has, and returns the
// usage status: nothing was started.
func usageFailed(format string, args ...any) int {
	logf(format, args...)
	fmt.Fprintln(os.Stderr, "Run 'fdsend activate --help' for usage.")
	return exitUsage
}
