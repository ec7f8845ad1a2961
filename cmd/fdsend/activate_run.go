//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/fdsend/fdsend/activation"
	"github.com/fdsend/fdsend/activation/spawn"
	"github.com/fdsend/fdsend/internal/addr"
	"github.com/fdsend/fdsend/internal/envvar"
	"github.com/fdsend/fdsend/internal/fdname"
	"github.com/fdsend/fdsend/internal/fdstore"
	"github.com/fdsend/fdsend/internal/launch"
	"github.com/fdsend/fdsend/internal/ready"
	"golang.org/x/sys/unix"
)

// connectionFDName is the name of an accepted connection (--accept) whose
// listener has no name of its own, as systemd names Accept=yes connections.
const connectionFDName = "connection"

// forwarded are the signals the launcher passes on to its children.
var forwarded = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2}

// run opens the sockets and runs the child (or children) until done, and
// returns the exit status.
func (cfg *activateConfig) run() int {
	// With --build, COMMAND may be what the first build makes: it is looked
	// for once that build has succeeded.
	if cfg.gen.build == "" {
		if status, err := lookCommand(cfg.argv[0]); err != nil {
			logf("%v", err)
			return status
		}
	}
	if os.Getpid() == 1 {
		// A container's first process: stay a minimal init and run the
		// launcher proper as its child.
		return runAsInit()
	}

	// From here on a signal no longer kills the launcher before it has
	// cleaned up (socket files): it is queued, and a stop signal that
	// arrives before the first start ends the launcher there.
	sigs := make(chan os.Signal, 16)
	handled := forwarded
	if cfg.reload {
		handled = append(append([]os.Signal(nil), forwarded...), cfg.gen.reloadSignal)
	}
	// A launcher about to exec itself with fewer capabilities (--user,
	// below) asks for signals only if that fails: the program it execs
	// asks for them again, and one received here would be lost.
	lateSignals := willDropCapabilities(cfg.user != nil)
	if !lateSignals {
		signal.Notify(sigs, handled...)
	}
	defer signal.Stop(sigs)

	// Descriptors inherited through LISTEN_FDS come first, names kept. A
	// launcher that has exec'd itself with fewer capabilities (see
	// dropCapabilities) takes them, and its own sockets, from before.
	h, handed, err := takeHandover()
	if err != nil {
		logf("%s", plain(err))
		return 1
	}
	var inherited []activation.File
	if handed {
		inherited = h.inherited()
		if len(h.Listeners) != len(cfg.addrs) {
			logf("handed %d sockets for %d -l options", len(h.Listeners), len(cfg.addrs))
			return 1
		}
	} else if inherited, err = inheritedFiles(); err != nil {
		logf("inherited descriptors: %s", plain(err))
		return 1
	}
	var sockets []spawn.NamedFile
	var closers []func() error
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	for _, f := range inherited {
		sockets = append(sockets, spawn.NamedFile{Name: f.Name, File: f.File})
		closers = append(closers, f.File.Close)
	}
	total := len(inherited) + len(cfg.addrs)
	if total == 0 && cfg.fdstore < 0 {
		return usageFailed("no sockets: give -l ADDR or run under a launcher that passes LISTEN_FDS")
	}
	if cfg.inetd && !cfg.accept && total != 1 {
		return usageFailed("--inetd without --accept passes exactly one socket as stdin and stdout; there are %d", total)
	}
	for i, f := range inherited {
		if !handed {
			logf("passing inherited %s as fd %d (name %s)", describe(f.File), 3+i, f.Name)
		}
	}
	var listeners []*addr.Listener
	for i, a := range cfg.addrs {
		var l *addr.Listener
		if handed {
			l = addr.Adopt(h.Listeners[i])
		} else if l, err = addr.Listen(a, cfg.sockType); err != nil {
			logf("%v", listenError(a.String(), err))
			return 1
		}
		listeners = append(listeners, l)
		closers = append(closers, l.Close)
		sockets = append(sockets, spawn.NamedFile{Name: cfg.names[i], File: l.File})
		if !handed {
			logf("listening on %s as fd %d (name %s)", l.Bound, 3+len(inherited)+i, cfg.names[i])
		}
	}

	if u := cfg.user; u != nil && !handed {
		logf("children run as user %s (uid %d, gid %d, groups %s)", u.Name, u.UID, u.GID, idList(u.Groups))
		// Its sockets open, the launcher needs root's powers only to start
		// children as the user, signal them and lend them sockets: it
		// execs itself with the rest dropped. Nothing returns on success.
		if lateSignals {
			if err := dropCapabilities(inherited, listeners); err != nil {
				logf("keeping every capability: %s", plain(err))
			}
			signal.Notify(sigs, handled...)
		}
	}
	if handed {
		logf("running with the capabilities %s", capsNow())
	}

	env := childEnv(os.Environ(), cfg.setenv)
	var store *fdstore.Server
	if cfg.fdstore >= 0 {
		outer := os.Getenv("NOTIFY_SOCKET")
		if cfg.reload {
			// The generations' readiness goes to the launcher, which
			// speaks to an outer manager for all of them.
			outer = ""
		}
		store, err = fdstore.New(cfg.fdstore, outer, logf)
		if err != nil {
			logf("descriptor store: %s", plain(err))
			return 1
		}
		defer store.Close()
		// With --reload and the notify probe the generations reach the
		// store only through their own sockets (forwarded): it is lent to
		// no one, so no process of the user but a generation's own can
		// store or remove anything.
		_, viaGenerations := cfg.gen.probe.(*ready.Notify)
		if cfg.user != nil && !(cfg.reload && viaGenerations) {
			if err := lendSocket(store.Addr(), cfg.user); err != nil {
				logf("descriptor store: letting user %s reach %s: %s", cfg.user.Name, store.Addr(), plain(err))
				return 1
			}
		}
		env = envvar.Set(env, "NOTIFY_SOCKET="+store.Addr())
		env = applySetenv(env, cfg.setenv) // -E still wins
		logf("descriptor store for %s at NOTIFY_SOCKET=%s", plural(cfg.fdstore, "descriptor"), store.Addr())
	}

	for pending := true; pending; {
		select {
		case sig := <-sigs:
			if launch.IsStop(sig) {
				logf("%v before the start; stopping", sig)
				return 128 + int(sig.(syscall.Signal))
			}
			logf("%v before the start: no child to forward it to", sig)
		default:
			pending = false
		}
	}

	var status int
	switch {
	case cfg.accept:
		status, err = cfg.runAccept(sockets, env, sigs)
	case cfg.reload:
		status, err = cfg.runGenerations(sockets, env, store, sigs)
	default:
		status, err = cfg.runSupervised(sockets, env, store, sigs)
	}
	if err != nil {
		logf("%s", plain(err))
		if status == 0 {
			status = 1
		}
	}
	return status
}

// runAsInit runs when the launcher is PID 1 (a container's entry point):
// this process reaps orphans and passes signals on (launch.Init), and runs
// the same command line again as its child, PID 2, which does the work. The
// descriptors this process inherited through LISTEN_FDS (with LISTEN_PID=1)
// are handed on to it, names kept. It returns the child's status.
func runAsInit() int {
	inherited, err := inheritedFiles()
	if err != nil {
		logf("inherited descriptors: %s", plain(err))
		return 1
	}
	closeInherited := func() {
		for _, f := range inherited {
			f.File.Close()
		}
	}
	self, err := os.Executable()
	if err != nil {
		closeInherited()
		logf("cannot find this executable to run the launcher: %s", plain(err))
		return 1
	}
	in := &launch.Init{
		Logf: logf,
		NewCmd: func() (*exec.Cmd, func(), error) {
			files := make([]spawn.NamedFile, len(inherited))
			for i, f := range inherited {
				files[i] = spawn.NamedFile{Name: f.Name, File: f.File}
			}
			cmd, err := spawn.Command(files, self, os.Args[1:]...)
			if err != nil {
				return nil, closeInherited, err
			}
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
			release := closeExtraFiles(cmd)
			return cmd, func() { release(); closeInherited() }, nil
		},
	}
	status, err := in.Run()
	if err != nil {
		logf("%s", plain(err))
		return 1
	}
	return status
}

// inheritedFiles returns the descriptors passed to the launcher by
// LISTEN_FDS, as package activation reads them. A name that may not be sent
// on (systemd lets an empty one through) is replaced by "unknown".
func inheritedFiles() ([]activation.File, error) {
	files, err := activation.Files()
	if err != nil {
		return nil, err
	}
	for i := range files {
		if err := fdname.Check(files[i].Name); err != nil {
			logf("inherited fd %d: name %q cannot be passed on (%s); calling it %q", 3+i, files[i].Name, plain(err), fdname.Unknown)
			files[i].Name = fdname.Unknown
		}
	}
	return files, nil
}

// runSupervised runs one child at a time, as --restart says.
func (cfg *activateConfig) runSupervised(sockets []spawn.NamedFile, env []string, store *fdstore.Server, sigs <-chan os.Signal) (int, error) {
	s := &launch.Supervisor{
		Restart: cfg.restart,
		Name:    cfg.argv[0],
		Logf:    logf,
		NewCmd: func() (*exec.Cmd, func(), error) {
			if cfg.inetd {
				cmd, err := inetdCmd(cfg.argv, env, sockets[0].File.(*os.File), cfg.user)
				return cmd, nil, err
			}
			files := sockets
			if store != nil {
				store.ResetReady()
				stored := storedFiles(store)
				// Command duplicates what it passes: our copies can go now.
				defer func() {
					for _, e := range stored {
						e.File.(*os.File).Close()
					}
				}()
				files = append(append([]spawn.NamedFile(nil), sockets...), stored...)
			}
			cmd, err := cfg.spawnOptions().Command(files, cfg.argv[0], cfg.argv[1:]...)
			if err != nil {
				return nil, nil, err
			}
			cmd.Env = env
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
			return cmd, closeExtraFiles(cmd), nil
		},
	}
	return s.Run(sigs)
}

// storedFiles returns duplicates of the descriptors in the store, which
// the caller closes, as NamedFiles to pass after the listeners. An entry
// whose name cannot be passed on is left out (and logged).
func storedFiles(store *fdstore.Server) []spawn.NamedFile {
	entries, err := store.Dup()
	if err != nil {
		logf("descriptor store: %s; starting without the stored descriptors", plain(err))
		return nil
	}
	var files []spawn.NamedFile
	var names []string
	for _, e := range entries {
		if err := fdname.Check(e.Name); err != nil {
			logf("stored descriptor %q not passed: %s", e.Name, plain(err))
			e.File.Close()
			continue
		}
		files = append(files, spawn.NamedFile{Name: e.Name, File: e.File})
		names = append(names, e.Name)
	}
	if len(files) > 0 {
		logf("passing %s (%s)", plural(len(files), "stored descriptor"), strings.Join(names, ", "))
	}
	return files
}

// closeExtraFiles returns what closes the duplicates spawn.Command
// put in cmd.ExtraFiles, once Start has returned.
func closeExtraFiles(cmd *exec.Cmd) func() {
	return func() {
		for _, f := range cmd.ExtraFiles {
			f.Close()
		}
	}
}

// inetdCmd builds a command with sock as its standard input and output, in
// blocking mode, and no LISTEN_* variables, run as u if not nil. There is no
// trampoline here: the forked child itself sets the groups, group ID and
// user ID (in that order) before it execs the program.
func inetdCmd(argv, env []string, sock *os.File, u *launch.User) (*exec.Cmd, error) {
	rc, err := sock.SyscallConn()
	if err != nil {
		return nil, err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetNonblock(int(fd), false) }); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, fmt.Errorf("clearing O_NONBLOCK: %w", os.NewSyscallError("fcntl", serr))
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = sock, sock, os.Stderr
	if u != nil {
		groups := make([]uint32, len(u.Groups))
		copy(groups, u.Groups)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: groups}}
	}
	return cmd, nil
}

// spawnOptions returns how spawn hands the sockets over and whom it runs
// the child as.
func (cfg *activateConfig) spawnOptions() spawn.Options {
	o := spawn.Options{Nonblocking: cfg.nonblocking}
	if u := cfg.user; u != nil {
		o.User = &spawn.Credential{UID: u.UID, GID: u.GID, Groups: u.Groups}
	}
	return o
}

// lendSocket lets user u, and no one else, connect to the Unix socket at
// path, which the launcher made in a directory of its own (mode 0700): the
// socket file becomes u's with mode 0600, and the directory searchable
// (0711) but still readable and writable by the launcher alone. The
// directory's name cannot be swapped meanwhile: it is the launcher's, in a
// sticky temporary directory.
func lendSocket(path string, u *launch.User) error {
	if err := os.Chown(path, int(u.UID), int(u.GID)); err != nil {
		return err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return err
	}
	return os.Chmod(filepath.Dir(path), 0o711)
}

// idList formats IDs for the log: "65534,100".
func idList(ids []uint32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatUint(uint64(id), 10)
	}
	return strings.Join(s, ",")
}

// runAccept starts a child per connection.
func (cfg *activateConfig) runAccept(sockets []spawn.NamedFile, env []string, sigs <-chan os.Signal) (int, error) {
	a := &launch.Acceptor{Logf: logf}
	for _, s := range sockets {
		name := s.Name
		if name == fdname.Unknown {
			name = connectionFDName
		}
		a.Listeners = append(a.Listeners, launch.Listener{File: s.File.(*os.File), Name: name})
	}
	a.NewCmd = func(conn *os.File, name string) (*exec.Cmd, func(), error) {
		if cfg.inetd {
			cmd, err := inetdCmd(cfg.argv, env, conn, cfg.user)
			return cmd, nil, err
		}
		cmd, err := cfg.spawnOptions().Command([]spawn.NamedFile{{Name: name, File: conn}}, cfg.argv[0], cfg.argv[1:]...)
		if err != nil {
			return nil, nil, err
		}
		cmd.Env = env
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		return cmd, closeExtraFiles(cmd), nil
	}
	return a.Run(sigs)
}

// childEnv returns the child's environment: the launcher's without the
// LISTEN_* variables (each child gets its own), then the -E assignments.
func childEnv(environ, setenv []string) []string {
	return applySetenv(envvar.Without(environ, fdname.IsListenVar), setenv)
}

// applySetenv sets each NAME=VALUE of setenv in env, in order.
func applySetenv(env, setenv []string) []string {
	for _, kv := range setenv {
		env = envvar.Set(env, kv)
	}
	return env
}

// describe names an inherited descriptor for the log: its local address if
// it is a socket.
func describe(f *os.File) string {
	if a, err := addr.Local(f); err == nil {
		return "socket " + a
	}
	return f.Name()
}
