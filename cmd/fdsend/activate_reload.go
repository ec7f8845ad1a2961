package main

import (
	"strings"
	"syscall"
	"time"

	"github.com/fdsend/fdsend/internal/launch"
	"github.com/fdsend/fdsend/internal/ready"
	"github.com/spf13/pflag"
)

// genFlags are the options of overlapping reloads and of the development
// loop, as pflag parses them.
type genFlags struct {
	reload         bool
	reloadSignal   string
	ready          string
	readyTimeout   time.Duration
	stopSignal     string
	stopTimeout    time.Duration
	maxGenerations int
	watch          []string
	watchIgnore    []string
	build          string
}

// genConfig is what they say, checked.
type genConfig struct {
	reloadSignal   syscall.Signal
	probe          ready.Probe // nil: notify is the default, made per run
	readyName      string
	readyTimeout   time.Duration
	stopSignal     syscall.Signal
	stopTimeout    time.Duration
	maxGenerations int
	watch          []string
	watchIgnore    []string
	build          string
}

func (f *genFlags) define(fs *pflag.FlagSet) {
	fs.BoolVar(&f.reload, "reload", false, "run COMMAND in generations: the reload signal starts a new one beside the old, which is stopped once the new one is ready")
	fs.StringVar(&f.reloadSignal, "reload-signal", "SIGHUP", "with --reload, the signal `SIG` (a name or number) that reloads")
	fs.StringVar(&f.ready, "ready", "notify", "with --reload, `HOW` a generation is known to be ready: notify (READY=1 on its NOTIFY_SOCKET), tcp:HOST:PORT, http:URL (a 2xx answer) or delay:DURATION; {pid} and {gen} in an address are the generation's")
	fs.DurationVar(&f.readyTimeout, "ready-timeout", launch.DefaultReadyTimeout, "a new generation not ready within `DURATION` is stopped and the old one kept")
	fs.StringVar(&f.stopSignal, "stop-signal", "SIGTERM", "the signal `SIG` a replaced generation gets, and every generation when the launcher gets SIGTERM")
	fs.DurationVar(&f.stopTimeout, "stop-timeout", launch.DefaultStopTimeout, "a generation sent the stop signal gets SIGKILL after `DURATION`")
	fs.IntVar(&f.maxGenerations, "max-generations", launch.DefaultMaxGenerations, "at most `N` generations alive at once (2 or more); the oldest not serving is killed to make room")
	fs.Var(listValue{&f.watch, "PATH"}, "watch", "reload when anything under `PATH` changes (repeatable; implies --reload)")
	fs.Var(listValue{&f.watchIgnore, "PATTERN"}, "watch-ignore", "with --watch, ignore paths whose name or path below PATH matches `PATTERN` (repeatable; .git and editors' temporary files always are)")
	fs.StringVar(&f.build, "build", "", "with --watch, run `CMD` (by /bin/sh -c) first and after each change, and reload only when it succeeds")
}

// genOnly are the options that mean something only with --reload.
var genOnly = []string{"reload-signal", "ready", "ready-timeout", "stop-signal", "stop-timeout", "max-generations"}

// config checks the options into cfg.
func (f *genFlags) config(fs *pflag.FlagSet, cfg *activateConfig) error {
	cfg.reload = f.reload || len(f.watch) > 0
	if !cfg.reload {
		for _, name := range append(genOnly, "watch-ignore", "build") {
			if fs.Changed(name) {
				return usagef("--%s needs --reload (or --watch)", name)
			}
		}
		return nil
	}
	if fs.Changed("watch-ignore") && len(f.watch) == 0 {
		return usagef("--watch-ignore needs --watch")
	}
	if fs.Changed("build") && len(f.watch) == 0 {
		return usagef("--build needs --watch: it runs after each change")
	}
	if fs.Changed("build") && strings.TrimSpace(f.build) == "" {
		return usagef("--build: the command is empty")
	}
	if cfg.accept || cfg.inetd {
		return usagef("--reload does not combine with --accept or --inetd (they start a child per connection, or pass one socket as stdin)")
	}
	g := genConfig{
		readyTimeout:   f.readyTimeout,
		stopTimeout:    f.stopTimeout,
		maxGenerations: f.maxGenerations,
		watch:          f.watch,
		watchIgnore:    f.watchIgnore,
		build:          f.build,
		readyName:      f.ready,
	}
	var err error
	if g.reloadSignal, err = parseSignal(f.reloadSignal); err != nil {
		return usagef("--reload-signal: %s", plain(err))
	}
	if !reloadable(g.reloadSignal) {
		return usagef("--reload-signal=%s: that signal cannot mean reload (SIGTERM and SIGINT stop; SIGKILL, SIGSTOP and SIGCHLD cannot be taken)", f.reloadSignal)
	}
	if g.stopSignal, err = parseSignal(f.stopSignal); err != nil {
		return usagef("--stop-signal: %s", plain(err))
	}
	if g.stopSignal == g.reloadSignal {
		return usagef("--stop-signal and --reload-signal are both %s", f.stopSignal)
	}
	if g.probe, err = ready.Parse(f.ready); err != nil {
		return usagef("%s", plain(err))
	}
	if g.readyTimeout <= 0 {
		return usagef("--ready-timeout=%v: want a positive duration", g.readyTimeout)
	}
	if g.stopTimeout <= 0 {
		return usagef("--stop-timeout=%v: want a positive duration", g.stopTimeout)
	}
	if g.maxGenerations < 2 {
		return usagef("--max-generations=%d: at least 2, or generations cannot overlap", g.maxGenerations)
	}
	cfg.gen = g
	return nil
}
