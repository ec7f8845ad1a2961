package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fdsend/fdsend/internal/addr"
	"github.com/fdsend/fdsend/internal/fdname"
	"github.com/fdsend/fdsend/internal/ready"
	"github.com/fdsend/fdsend/procfd"
	"github.com/spf13/pflag"
)

func init() {
	register(&Command{
		UsageLine: "adopt PID [--listen ADDR | --fd N]... [--fdname NAME[:NAME...]] [--stop SIG [--ready HOW]] {-- COMMAND [ARGS...] | --holder SOCKET}",
		Short:     "take the listening sockets of a running process and run a program with them (Linux)",
		Long: `Take listening sockets out of process PID, a server that was never written to
hand them over, and run COMMAND with them by systemd's socket-activation
protocol, as fdsend activate and fdsend fetch do: descriptors 3, 4, ... in the
order of the --listen and --fd options, LISTEN_FDS, LISTEN_PID and
LISTEN_FDNAMES set, every descriptor in blocking mode (unless --nonblocking)
and nothing else open above standard error.

--listen ADDR takes every socket of the process listening at ADDR, written as
fdsend activate -l takes it: a port alone (8080: every TCP listener on that
port, IPv4 and IPv6 alike, whatever its address), IPv4:PORT, [IPv6]:PORT, a
/path or an @abstract name. --fd N takes descriptor N, whatever it is. fdsend
ps PID shows what there is. Nothing is taken if an ADDR matches no listening
socket, a Unix ADDR matches two different sockets, or two options name the
same socket.

The sockets are duplicated with pidfd_getfd(2) (Linux 5.6 and later): the
process keeps its own, and until it closes them both it and COMMAND accept
from the same queues. With --stop, once COMMAND is ready the process gets
signal SIG (SIGTERM, TERM, 15; SIGQUIT is nginx's graceful stop), through a
pidfd, so never another process that reused the PID. --ready says how
COMMAND is known to be ready, as fdsend activate --reload's --ready does:
notify (the default: COMMAND is given a NOTIFY_SOCKET and sends READY=1,
sd_notify(3)), tcp:HOST:PORT (a connection succeeds), http:URL (a GET is
answered 2xx) or delay:DURATION (COMMAND has run that long); {pid} in the
address or URL is COMMAND's process ID. The adopted sockets themselves are
answered by both processes, so a tcp: or http: probe must reach something
only COMMAND answers: a port of its own, or a URL with {pid} that only the
process with that ID answers 2xx. Connections the process has already
accepted stay with it. fdsend then stays COMMAND's parent: it passes on
SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 and exits as COMMAND
does. It holds no socket of its own once COMMAND has started.

--as nginx or --as einhorn also hands the sockets over in that server's own
form, for a COMMAND that does not read LISTEN_FDS: NGINX="3;4;" (a fresh
nginx master takes those descriptors as the listening sockets its
configuration names, matched by address, and does not daemonise), or
EINHORN_FD_COUNT, EINHORN_FD_0=3, EINHORN_FD_1=4, ..., EINHORN_FD_FAMILY_0,
... and EINHORN_FDS="3 4" as einhorn sets them for its workers. Variables
of that form already in the environment are replaced. Neither nginx nor an
einhorn worker sends READY=1: with them, give --stop a --ready tcp: or
http: probe of something only COMMAND answers, or leave out --stop and
stop the process yourself once COMMAND answers.

With --holder SOCKET, no COMMAND is run: the sockets are stored in the
holder (fdsend hold) at SOCKET under the --fdname names, as fdsend store
stores them, for fdsend fetch or any holder client to take later. Each
socket needs a name of its own there, so each --listen must take one socket
(give [::]:PORT and 0.0.0.0:PORT apart rather than PORT alone) and the names
must differ. If one cannot be stored, those stored already are removed and
nothing is left in the holder. With --stop, the process gets the signal as
soon as every socket is stored. The holder is trusted as fdsend store
trusts it (--holder-uid).

Taking another process's descriptors needs ptrace rights over it: the same
user as the process (and, where Yama's ptrace_scope is 1, being its
ancestor) or CAP_SYS_PTRACE, which root has.`,
		Footer: `Exit status: COMMAND's (128+N if a signal N ended it); 1 if a socket
cannot be taken or COMMAND cannot be started; 126 if COMMAND is not
executable, 127 if it is not found; 2 for a usage error. With --holder: 0
once stored, 1 if refused or failed, 2 for a usage error.`,
		Flags: adoptFlags,
	})
}

// adoptArg is one --listen or --fd option, in command-line order.
type adoptArg struct {
	flag  string // "--listen" or "--fd"
	value string
	addr  addr.Addr // for --listen
	fd    int       // for --fd
}

func (a adoptArg) String() string { return a.flag + " " + a.value }

// adoptArgs collects --listen and --fd in the order given.
type adoptArgs struct {
	list *[]adoptArg
	flag string
}

func (v adoptArgs) String() string { return "" }
func (v adoptArgs) Type() string {
	if v.flag == "--fd" {
		return "N"
	}
	return "ADDR"
}

func (v adoptArgs) Set(s string) error {
	a := adoptArg{flag: v.flag, value: s}
	if v.flag == "--fd" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || s[0] == '+' {
			return fmt.Errorf("%q is not a descriptor number", s)
		}
		a.fd = n
	} else {
		ad, err := addr.Parse(s)
		if err != nil {
			var ae *addr.Error
			if errors.As(err, &ae) {
				return errors.New(plain(ae.Err))
			}
			return err
		}
		a.addr = ad
	}
	*v.list = append(*v.list, a)
	return nil
}

// adoptConfig is a parsed fdsend adopt command line.
type adoptConfig struct {
	pid         int
	args        []adoptArg
	names       []string // one per arg
	stop        syscall.Signal
	probe       ready.Probe // --ready, with --stop
	readyWithin time.Duration
	nonblocking bool
	argv        []string
	as          string     // --as: systemd, nginx or einhorn
	holder      string     // --holder: store in this holder instead of running argv
	uids        holderUIDs // --holder-uid
}

// adoptFlags defines the options of fdsend adopt.
func adoptFlags(c *Command, fs *pflag.FlagSet) func([]string) (int, error) {
	var cfg adoptConfig
	fs.VarP(adoptArgs{&cfg.args, "--listen"}, "listen", "l", "take every socket of the process listening at `ADDR` (PORT, IPv4:PORT, [IPv6]:PORT, /path, @name); repeatable")
	fs.Var(adoptArgs{&cfg.args, "--fd"}, "fd", "take the process's descriptor `N`, whatever it is; repeatable")
	var fdnames []string
	fs.Var(listValue{&fdnames, "NAME[:NAME...]"}, "fdname", `names of the sockets: one name for all, or one per --listen or --fd, in their order (default "unknown"); every socket an option takes gets its name`)
	stop := fs.String("stop", "", "once COMMAND is ready (see --ready), send signal `SIG` to the process")
	readyHow := fs.String("ready", "notify", "with --stop, `HOW` COMMAND is known to be ready: notify (READY=1 on its NOTIFY_SOCKET), tcp:HOST:PORT, http:URL (a 2xx answer) or delay:DURATION; {pid} in an address is COMMAND's")
	fs.DurationVar(&cfg.readyWithin, "ready-timeout", time.Minute, "with --stop, how long to wait for COMMAND to be ready (`DURATION`); if it is not, the process is not signalled and both go on serving")
	fs.BoolVar(&cfg.nonblocking, "nonblocking", false, "hand the sockets over in non-blocking mode (systemd's NonBlocking=yes); the mode is shared with the process")
	fs.StringVar(&cfg.as, "as", "systemd", "also hand the sockets over in the `FORM` nginx reads (nginx: NGINX=\"3;4;\") or einhorn workers read (einhorn: EINHORN_FD_COUNT, EINHORN_FD_0, ...), besides systemd's LISTEN_FDS")
	fs.StringVar(&cfg.holder, "holder", "", "store the sockets in the holder (fdsend hold) at `SOCKET` under the --fdname names instead of running a COMMAND")
	uids := addHolderUID(fs)
	return func(pos []string) (int, error) {
		cfg.uids = *uids
		if fs.Changed("holder") {
			return cfg.parseHolder(c, fs, pos, fdnames, *stop)
		}
		if fs.Changed("holder-uid") {
			return 0, usagef("--holder-uid goes with --holder")
		}
		switch cfg.as {
		case "systemd", "nginx", "einhorn":
		default:
			return 0, usagef("--as %q: want systemd, nginx or einhorn", cfg.as)
		}
		dash := fs.ArgsLenAtDash()
		if dash < 0 {
			return 0, usagef("want PID [--listen ADDR | --fd N]... -- COMMAND [ARGS...] (or --holder SOCKET): the -- and COMMAND are missing")
		}
		if dash != 1 {
			return 0, usagef("want exactly one PID before --, got %s", plural(dash, "argument"))
		}
		var err error
		if cfg.pid, err = parsePID(pos[0]); err != nil {
			return 0, err
		}
		cfg.argv = pos[dash:]
		if len(cfg.argv) == 0 || cfg.argv[0] == "" {
			return 0, usagef("COMMAND after -- is missing")
		}
		if len(cfg.args) == 0 {
			return 0, usagef("nothing to take: give at least one --listen ADDR or --fd N")
		}
		if cfg.names, err = adoptNames(fdnames, len(cfg.args)); err != nil {
			return 0, err
		}
		if *stop != "" {
			if cfg.stop, err = parseSignal(*stop); err != nil {
				return 0, usagef("--stop: %s", plain(err))
			}
			if cfg.probe, err = ready.Parse(*readyHow); err != nil {
				return 0, usagef("%s", plain(err))
			}
		} else {
			for _, f := range []string{"ready", "ready-timeout"} {
				if fs.Changed(f) {
					return 0, usagef("--%s needs --stop: it says when to send the signal", f)
				}
			}
		}
		if cfg.readyWithin <= 0 {
			return 0, usagef("--ready-timeout must be positive")
		}
		return cfg.run(c)
	}
}

// parseHolder checks a command line with --holder and runs it.
func (cfg *adoptConfig) parseHolder(c *Command, fs *pflag.FlagSet, pos []string, fdnames []string, stop string) (int, error) {
	if fs.ArgsLenAtDash() >= 0 {
		return 0, usagef("--holder stores the sockets: give no -- COMMAND with it")
	}
	if len(pos) != 1 {
		return 0, usagef("want exactly one PID, got %s", plural(len(pos), "argument"))
	}
	if err := checkSocket(cfg.holder); err != nil {
		return 0, usagef("--holder: %s", plain(err))
	}
	for _, f := range []string{"ready", "ready-timeout", "nonblocking", "as"} {
		if fs.Changed(f) {
			return 0, usagef("--%s goes with a COMMAND, not with --holder", f)
		}
	}
	var err error
	if cfg.pid, err = parsePID(pos[0]); err != nil {
		return 0, err
	}
	if len(cfg.args) == 0 {
		return 0, usagef("nothing to take: give at least one --listen ADDR or --fd N")
	}
	if len(fdnames) == 0 {
		return 0, usagef("--holder needs --fdname: the names to store the sockets under, one per --listen or --fd")
	}
	if cfg.names, err = adoptNames(fdnames, len(cfg.args)); err != nil {
		return 0, err
	}
	if err := checkHolderNames(cfg.names); err != nil {
		return 0, usagef("--fdname: %s: the holder needs a name for each socket", plain(err))
	}
	if stop != "" {
		if cfg.stop, err = parseSignal(stop); err != nil {
			return 0, usagef("--stop: %s", plain(err))
		}
	}
	return cfg.run(c)
}

// formEnv returns the variables --as adds for the sockets handed over as
// descriptors 3 to 3+len(taken)-1, and whether v is one it replaces.
func (cfg *adoptConfig) formEnv(taken []chosen) (vars []string, replaces func(v string) bool) {
	replaces = func(string) bool { return false }
	switch cfg.as {
	case "nginx":
		// nginx reads NGINX as descriptor numbers each followed by ';'
		// (or ':') and, finding it, takes them as the listening sockets
		// of its configuration (matched by address) and does not
		// daemonise.
		var b strings.Builder
		for i := range taken {
			fmt.Fprintf(&b, "%d;", 3+i)
		}
		vars = append(vars, "NGINX="+b.String())
		replaces = func(v string) bool { return strings.HasPrefix(v, "NGINX=") }
	case "einhorn":
		// As einhorn sets them for its workers: a count, one variable per
		// socket in order, the socket's family, and the deprecated
		// space-separated list.
		nums := make([]string, len(taken))
		vars = append(vars, "EINHORN_FD_COUNT="+strconv.Itoa(len(taken)))
		for i, t := range taken {
			nums[i] = strconv.Itoa(3 + i)
			vars = append(vars, fmt.Sprintf("EINHORN_FD_%d=%d", i, 3+i))
			if fam := einhornFamily(t.fd.Network); fam != "" {
				vars = append(vars, fmt.Sprintf("EINHORN_FD_FAMILY_%d=%s", i, fam))
			}
		}
		vars = append(vars, "EINHORN_FDS="+strings.Join(nums, " "))
		replaces = func(v string) bool { return strings.HasPrefix(v, "EINHORN_FD") }
	}
	return vars, replaces
}

// einhornFamily names the address family of a socket of network n as
// einhorn's EINHORN_FD_FAMILY_N does.
func einhornFamily(n string) string {
	switch n {
	case "tcp4", "udp4":
		return "AF_INET"
	case "tcp6", "udp6":
		return "AF_INET6"
	case "unix", "unixgram", "unixpacket":
		return "AF_UNIX"
	}
	return ""
}

// adoptNames turns the --fdname values into one name per option.
func adoptNames(fdnames []string, n int) ([]string, error) {
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
	switch len(names) {
	case 0:
		for i := range out {
			out[i] = fdname.Unknown
		}
	case 1:
		for i := range out {
			out[i] = names[0]
		}
	case n:
		copy(out, names)
	default:
		return nil, usagef("--fdname gives %s for %s: give one for all or one each", plural(len(names), "name"), plural(n, "--listen or --fd option"))
	}
	return out, nil
}

// chosen is a descriptor of the process that an option takes.
type chosen struct {
	fd   procfd.FD
	arg  int // index in cfg.args
	file *os.File
}

// matches reports whether the listening socket e is at a.
func matches(a addr.Addr, e procfd.FD) bool {
	if e.Kind != procfd.Listener {
		return false
	}
	switch a.Kind {
	case addr.Path:
		return (e.Network == "unix" || e.Network == "unixpacket") && e.Local == a.Name
	case addr.Abstract:
		return (e.Network == "unix" || e.Network == "unixpacket") && e.Local == "@"+a.Name
	}
	if e.Network != "tcp4" && e.Network != "tcp6" {
		return false
	}
	ap, err := netip.ParseAddrPort(e.Local)
	if err != nil || ap.Port() != a.Port {
		return false
	}
	if a.Kind == addr.Any {
		return true
	}
	// Zones are compared by neither name nor number: an address with a
	// zone is link-local and seldom listened on twice.
	return ap.Addr().WithZone("") == a.IP.WithZone("")
}

// choose picks the descriptors the options take from list, or says why
// nothing may be taken.
func (cfg *adoptConfig) choose(list []procfd.FD) ([]chosen, error) {
	type ident struct{ dev, ino uint64 }
	owner := map[ident]int{} // which option took a socket
	var out []chosen
	for i, a := range cfg.args {
		var found []procfd.FD
		seen := map[ident]bool{}
		for _, e := range list {
			ok := false
			if a.flag == "--fd" {
				ok = e.Num == a.fd
			} else {
				ok = matches(a.addr, e)
			}
			id := ident{e.Dev, e.Ino}
			if !ok || seen[id] {
				continue // a duplicate of a socket found already: taken once
			}
			seen[id] = true
			found = append(found, e)
		}
		if len(found) == 0 {
			if a.flag == "--fd" {
				return nil, fmt.Errorf("%s: process %d has no descriptor %d", a, cfg.pid, a.fd)
			}
			return nil, fmt.Errorf("%s: process %d has no socket listening there%s", a, cfg.pid, listening(list))
		}
		if len(found) > 1 && (a.addr.Kind == addr.Path || a.addr.Kind == addr.Abstract) && a.flag == "--listen" {
			return nil, fmt.Errorf("%s is ambiguous: process %d has %d different sockets bound there (descriptors %s); only one can be reached at that name: take the right one with --fd", a, cfg.pid, len(found), fdNums(found))
		}
		if len(found) > 1 && cfg.holder != "" {
			return nil, fmt.Errorf("%s takes %d sockets (%s), and a holder needs a name for each: take them one by one (--listen with each address, or --fd) with a --fdname each", a, len(found), addrsOf(found))
		}
		for _, e := range found {
			id := ident{e.Dev, e.Ino}
			if j, ok := owner[id]; ok {
				return nil, fmt.Errorf("%s and %s both take descriptor %d (%s): give it once", cfg.args[j], a, e.Num, e.What)
			}
			owner[id] = i
			out = append(out, chosen{fd: e, arg: i})
		}
	}
	return out, nil
}

// listening lists the addresses of the listening sockets in list, for a
// refusal: " (it listens on 0.0.0.0:80, /run/x.sock)".
func listening(list []procfd.FD) string {
	var addrs []string
	for _, e := range list {
		if e.Kind == procfd.Listener && e.Local != "" {
			addrs = append(addrs, e.Local)
		}
	}
	if len(addrs) == 0 {
		return " (it listens on nothing)"
	}
	return " (it listens on " + strings.Join(addrs, ", ") + ")"
}

// addrsOf lists where the sockets in list listen, for a refusal.
func addrsOf(list []procfd.FD) string {
	s := make([]string, len(list))
	for i, e := range list {
		s[i] = fmt.Sprintf("descriptor %d on %s", e.Num, e.Local)
	}
	return strings.Join(s, ", ")
}

func fdNums(list []procfd.FD) string {
	s := make([]string, len(list))
	for i, e := range list {
		s[i] = strconv.Itoa(e.Num)
	}
	return strings.Join(s, ", ")
}
