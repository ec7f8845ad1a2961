//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fdsend/fdsend/activation/spawn"
	"github.com/fdsend/fdsend/internal/envvar"
	"github.com/fdsend/fdsend/internal/fdstore"
	"github.com/fdsend/fdsend/internal/launch"
	"github.com/fdsend/fdsend/internal/ready"
	"github.com/fdsend/fdsend/internal/watch"
	"github.com/fdsend/fdsend/notify"
	"golang.org/x/sys/unix"
)

// generationEnv names the generation in each child's environment.
const generationEnv = "FDSEND_GENERATION"

// parseSignal reads a signal as a name (SIGHUP or HUP, any case) or a
// number.
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || unix.SignalName(syscall.Signal(n)) == "" {
			return 0, fmt.Errorf("%q: no such signal: %w", s, syscall.EINVAL)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	if sig == 0 {
		return 0, fmt.Errorf("%q: no such signal: %w", s, syscall.EINVAL)
	}
	return sig, nil
}

// reloadable reports whether sig may mean "reload": not a signal that
// stops the launcher, nor one no process can catch or that the launcher
// needs for itself.
func reloadable(sig syscall.Signal) bool {
	switch sig {
	case syscall.SIGTERM, syscall.SIGINT, syscall.SIGKILL, syscall.SIGSTOP, syscall.SIGCHLD, syscall.SIGPIPE, syscall.SIGURG:
		return false
	}
	return true
}

// runGenerations runs the child in overlapping generations (--reload): see
// launch.Generations. A reload is the reload signal, or with --watch a
// change (after a successful --build). sigs must carry the reload signal.
func (cfg *activateConfig) runGenerations(sockets []spawn.NamedFile, env []string, store *fdstore.Server, sigs <-chan os.Signal) (int, error) {
	g := cfg.gen
	probe := g.probe
	if n, ok := probe.(*ready.Notify); ok {
		n.Logf = logf
		if u := cfg.user; u != nil {
			n.Owner = &ready.Owner{UID: int(u.UID), GID: int(u.GID)}
		}
		if store != nil {
			n.Forward = forwardToStore(store)
		}
	} else if store == nil {
		// A child's READY=1 must not reach an outer manager directly:
		// the launcher speaks for the generations.
		env = envvar.Without(env, func(name string) bool { return name == "NOTIFY_SOCKET" })
	}
	gens := &launch.Generations{
		Probe:          probe,
		ReadyTimeout:   g.readyTimeout,
		StopSignal:     g.stopSignal,
		StopTimeout:    g.stopTimeout,
		MaxGenerations: g.maxGenerations,
		ReloadSignal:   g.reloadSignal,
		Restart:        cfg.restart,
		Name:           cfg.argv[0],
		Logf:           logf,
		NewCmd: func(gen int) (*exec.Cmd, func(), error) {
			files := sockets
			if store != nil {
				stored := storedFiles(store)
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
			cmd.Env = envvar.Set(env, generationEnv+"="+strconv.Itoa(gen))
			cmd.Env = applySetenv(cmd.Env, cfg.setenv) // -E still wins
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
			return cmd, closeExtraFiles(cmd), nil
		},
	}
	if outer := os.Getenv("NOTIFY_SOCKET"); outer != "" {
		gens.Notifier = launch.Outer{Client: notify.Client{Addr: outer, Timeout: time.Second}, Logf: logf}
	}
	logf("generations: reload on %s, ready by %s (within %v), stop with %s (SIGKILL after %v), at most %d at once",
		unix.SignalName(g.reloadSignal), probe, g.readyTimeout, unix.SignalName(g.stopSignal), g.stopTimeout, g.maxGenerations)

	if len(g.watch) == 0 {
		return gens.Run(sigs, nil)
	}
	w, err := watch.New(watch.Options{Paths: g.watch, Ignore: g.watchIgnore})
	if err != nil {
		return 2, fmt.Errorf("--watch: %s", plain(err))
	}
	defer w.Close()
	logf("watching %s for changes", strings.Join(g.watch, ", "))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A stop ends the watching and any build at once; the signal goes on
	// to the generations.
	in, relay := sigs, make(chan os.Signal, 16)
	go func() {
		for sig := range in {
			if launch.IsStop(sig) {
				cancel()
			}
			relay <- sig
		}
	}()
	sigs = relay
	reloads := make(chan struct{})
	if g.build == "" {
		go func() {
			for ev := range w.Events() {
				logChange(ev)
				select {
				case reloads <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		}()
		return gens.Run(sigs, reloads)
	}

	// With --build the first generation starts once a build has succeeded.
	built := make(chan struct{})
	loopDone := make(chan error, 1)
	first := true
	b := &watch.Build{Command: g.build}
	go func() {
		loopDone <- watch.Loop(ctx, w, b, func(r watch.Result, ev watch.Event) {
			if len(ev.Paths) > 0 || ev.Rescan {
				logChange(ev)
			}
			if !r.OK() {
				logBuildFailed(r, first)
				return
			}
			logf("build succeeded in %v: %s", r.Duration.Round(time.Millisecond), g.build)
			if first {
				first = false
				close(built)
				return
			}
			select {
			case reloads <- struct{}{}:
			case <-ctx.Done():
			}
		})
	}()
	for {
		select {
		case <-built:
			if status, err := lookCommand(cfg.argv[0]); err != nil {
				return status, err
			}
			status, err := gens.Run(sigs, reloads)
			// A build still running is stopped (its process group
			// killed) before the launcher exits.
			cancel()
			select {
			case <-loopDone:
			case <-time.After(10 * time.Second):
			}
			return status, err
		case err := <-loopDone:
			return 1, fmt.Errorf("--watch: %s", plain(err))
		case sig := <-sigs:
			if launch.IsStop(sig) {
				logf("%v before the first successful build; stopping", sig)
				return 128 + int(sig.(syscall.Signal)), nil
			}
			logf("%v before the first successful build: no child to forward it to", sig)
		}
	}
}

// logChange logs what changed under --watch.
func logChange(ev watch.Event) {
	what := strings.Join(ev.Paths, ", ")
	if ev.More > 0 {
		what += fmt.Sprintf(" and %d more", ev.More)
	}
	if ev.Rescan {
		what = strings.TrimPrefix(what+", and the kernel lost track of some (rescanned)", ", ")
	}
	logf("changed: %s", what)
	for _, err := range ev.Errs {
		logf("watch: %s", plain(err))
	}
}

// logBuildFailed logs a failed build and its output.
func logBuildFailed(r watch.Result, first bool) {
	keeps := "the serving generation keeps serving"
	if first {
		keeps = "nothing is started until a build succeeds"
	}
	why := plain(r.Err)
	if r.ExitCode > 0 {
		why = "exit status " + strconv.Itoa(r.ExitCode)
	}
	logf("build failed (%s); %s. Its output:", why, keeps)
	if r.Dropped > 0 {
		fmt.Fprintf(os.Stderr, "[first %d bytes not shown]\n", r.Dropped)
	}
	os.Stderr.Write(r.Output)
	if len(r.Output) > 0 && r.Output[len(r.Output)-1] != '\n' {
		os.Stderr.WriteString("\n")
	}
}

// forwardToStore passes the store's messages a generation sends on its own
// NOTIFY_SOCKET (FDSTORE=1, FDSTOREREMOVE=1, BARRIER=1) on to the store,
// with their descriptors.
func forwardToStore(store *fdstore.Server) func(ready.Message) {
	return func(m ready.Message) {
		defer func() {
			for _, f := range m.Files {
				f.Close()
			}
		}()
		if !(m.Has("FDSTORE=1") || m.Has("FDSTOREREMOVE=1") || m.Has("BARRIER=1")) {
			return
		}
		files := make([]any, len(m.Files))
		for i, f := range m.Files {
			files[i] = f
		}
		c := notify.Client{Addr: store.Addr(), Timeout: time.Second}
		if _, err := c.Send(strings.Join(m.Fields, "\n"), files...); err != nil {
			logf("generation %d: passing its message on to the descriptor store: %s", m.Gen, plain(err))
		}
	}
}
