package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/fdsend/fdsend/activation/spawn"
	"github.com/fdsend/fdsend/holder"
	"github.com/fdsend/fdsend/internal/ready"
	"github.com/fdsend/fdsend/procfd"
	"golang.org/x/sys/unix"
)

// adoptHook, if not nil, is called after the descriptors are listed
// ("listed") and after each is taken ("took"). Only a binary built with the
// fdsendtest tag sets it (adopt_hook.go): the tests use it to end the
// process at those points.
var adoptHook func(stage string, p *procfd.Process)

// run takes the sockets, runs COMMAND with them and, with --stop, stops the
// process once COMMAND is ready.
func (cfg *adoptConfig) run(c *Command) (int, error) {
	var cl *holder.Client
	if cfg.holder != "" {
		// The holder is trusted or refused before anything is taken.
		var err error
		if cl, err = cfg.uids.dial(cfg.holder); err != nil {
			return 1, err
		}
		defer cl.Close()
	} else if _, err := exec.LookPath(cfg.argv[0]); err != nil {
		return commandStatus(err), errors.New(commandError(cfg.argv[0], err))
	}
	p, err := procfd.Open(cfg.pid)
	if err != nil {
		return 1, err
	}
	defer p.Close()
	list, err := p.List()
	if err != nil {
		return 1, err
	}
	taken, err := cfg.choose(list)
	if err != nil {
		return 1, err
	}
	if adoptHook != nil {
		adoptHook("listed", p)
	}
	defer func() {
		for _, t := range taken {
			if t.file != nil {
				t.file.Close()
			}
		}
	}()
	for i := range taken {
		t := &taken[i]
		if t.file, err = p.TakeFD(t.fd.Num); err != nil {
			// Those taken before are closed on the way out: a process
			// that exits midway leaves nothing behind in this one.
			return 1, fmt.Errorf("%s: %w; nothing was handed over", cfg.args[t.arg], err)
		}
		if adoptHook != nil {
			adoptHook("took", p)
		}
		// The number may have been closed and reused since the list was
		// made: what is taken must be what was chosen.
		if err := sameFile(t.file, t.fd); err != nil {
			return 1, fmt.Errorf("%s: descriptor %d of process %d changed while it was being taken (%v); nothing was handed over", cfg.args[t.arg], t.fd.Num, cfg.pid, err)
		}
	}
	if cl != nil {
		return cfg.store(c, p, cl, taken)
	}
	named := make([]spawn.NamedFile, len(taken))
	for i, t := range taken {
		named[i] = spawn.NamedFile{Name: cfg.names[t.arg], File: t.file}
		c.logf("took %s (descriptor %d of process %d) as fd %d, named %s", t.fd.What, t.fd.Num, cfg.pid, 3+i, cfg.names[t.arg])
	}
	var check ready.Check
	if cfg.probe != nil {
		if check, err = cfg.probe.Start(1); err != nil {
			return 1, fmt.Errorf("--ready=%s: cannot prepare the readiness check of COMMAND: %s", cfg.probe, reason(err))
		}
		defer check.Close()
	}
	cmd, err := spawn.Options{Nonblocking: cfg.nonblocking}.Command(named, cfg.argv[0], cfg.argv[1:]...)
	if err != nil {
		return commandStatus(err), errors.New(commandError(cfg.argv[0], err))
	}
	form, replaced := cfg.formEnv(taken)
	for _, v := range os.Environ() {
		if !replaced(v) {
			cmd.Env = append(cmd.Env, v)
		}
	}
	cmd.Env = append(cmd.Env, form...)
	if check != nil {
		cmd.Env = append(cmd.Env, check.Env()...)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	err = cmd.Start()
	for _, f := range cmd.ExtraFiles {
		f.Close()
	}
	// COMMAND has its copies now, and no error below needs ours.
	for i := range taken {
		taken[i].file.Close()
		taken[i].file = nil
	}
	if err != nil {
		return commandStatus(err), errors.New(commandError(cfg.argv[0], err))
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	readyc := make(chan error, 1)
	if check != nil {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.readyWithin)
		defer cancel()
		go func() { readyc <- check.Wait(ctx, cmd.Process.Pid, exited) }()
	}
	for {
		select {
		case sig := <-sigs:
			cmd.Process.Signal(sig)
		case err := <-readyc:
			check.Close()
			if err != nil {
				why := "was not ready within " + cfg.readyWithin.String()
				if errors.Is(err, ready.ErrExited) {
					why = "exited before it was ready"
				}
				c.logf("%s %s: process %d not signalled", cfg.argv[0], why, cfg.pid)
				continue
			}
			if err := p.Signal(cfg.stop); err != nil {
				if errors.Is(err, syscall.ESRCH) {
					c.logf("%s is ready; process %d has exited already", cfg.argv[0], cfg.pid)
				} else {
					c.logf("%s is ready, but %v", cfg.argv[0], err)
				}
				continue
			}
			c.logf("%s is ready; sent %s to process %d", cfg.argv[0], unix.SignalName(cfg.stop), cfg.pid)
		case <-exited:
			return processStatus(cmd.ProcessState), nil
		}
	}
}

// store stores the taken sockets in the holder under their names and, with
// --stop, then signals the process. Either every socket is stored or, as far
// as the holder lets this client remove them, none is.
func (cfg *adoptConfig) store(c *Command, p *procfd.Process, cl *holder.Client, taken []chosen) (int, error) {
	for i, t := range taken {
		name := cfg.names[t.arg]
		err := cl.Store(name, t.file, 0, false)
		if err == nil {
			continue
		}
		if errors.Is(err, holder.ErrExists) {
			err = fmt.Errorf("%s: %q is already held in %s; nothing was stored", cfg.args[t.arg], name, cfg.holder)
		} else {
			err = fmt.Errorf("%s: %v; nothing was stored", cfg.args[t.arg], requestError(cfg.holder, err))
		}
		for _, u := range taken[:i] {
			if rerr := cl.Remove(cfg.names[u.arg]); rerr != nil {
				err = fmt.Errorf("%w, except %q, which could not be removed again (%s)", err, cfg.names[u.arg], plain(requestError(cfg.holder, rerr)))
			}
		}
		return 1, err
	}
	for _, t := range taken {
		c.logf("took %s (descriptor %d of process %d), stored as %s", t.fd.What, t.fd.Num, cfg.pid, cfg.names[t.arg])
	}
	if cfg.stop == 0 {
		return 0, nil
	}
	if err := p.Signal(cfg.stop); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			c.logf("stored; process %d has exited already", cfg.pid)
			return 0, nil
		}
		return 1, fmt.Errorf("stored, but %w", err)
	}
	c.logf("stored; sent %s to process %d", unix.SignalName(cfg.stop), cfg.pid)
	return 0, nil
}

// sameFile checks that f is the descriptor e was listed as.
func sameFile(f *os.File, e procfd.FD) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	s, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uint64(s.Dev) != e.Dev || uint64(s.Ino) != e.Ino {
		return errors.New("it is another file now")
	}
	return nil
}

// processStatus is the status fdsend exits with for COMMAND's end: its
// exit status, or 128+N if signal N ended it, as a shell reports it.
func processStatus(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
