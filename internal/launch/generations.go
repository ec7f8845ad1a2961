package launch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fdsend/fdsend/internal/envvar"
	"github.com/fdsend/fdsend/internal/ready"
)

// Defaults of Generations.
const (
	DefaultReadyTimeout   = 60 * time.Second
	DefaultStopTimeout    = 30 * time.Second
	DefaultMaxGenerations = 3
)

// killWait bounds how long a start waits for a generation killed to make
// room (SIGKILL is not refused, but a process in uninterruptible sleep
// dies only when it wakes).
const killWait = 5 * time.Second

// Notifier is told what an outer service manager should know. Each method
// gets a one-line status naming the generations alive and what each is
// doing, fit for STATUS=. The methods are called from Run's goroutine, one
// at a time, and should not block for long (give the notify.Client a
// Timeout).
type Notifier interface {
	// Ready: the first generation is ready (send READY=1 and STATUS=).
	Ready(status string)
	// Reloading: a reload has begun (send RELOADING=1 with
	// MONOTONIC_USEC=, and STATUS=). Called only after Ready.
	Reloading(status string)
	// Reloaded: the reload's generation is ready and serving (send READY=1
	// and STATUS=).
	Reloaded(status string)
	// ReloadFailed: the reload's generation could not start, exited or did
	// not become ready; the one before keeps serving (send READY=1, which
	// ends the reload for systemd, and STATUS=).
	ReloadFailed(status string)
	// Stopping: a stop signal arrived, or the serving generation exited
	// and is not restarted (send STOPPING=1 and STATUS=).
	Stopping(status string)
	// Status: anything else worth showing, such as a restart after a
	// crash (send STATUS=).
	Status(status string)
}

// Generations runs a child in generations: a reload starts a new
// generation while the old one keeps serving, and the old one is stopped
// only once the new one is ready. A new generation that exits or does not
// become ready in time is stopped and the old one kept; the next reload
// tries again. The serving generation, should it exit, is started again
// as Restart and Backoff say (the new start is held to the same readiness).
//
// The listening sockets are the caller's and stay open the whole time, so
// every generation gets the same ones (NewCmd passes them) and connections
// wait in the kernel's backlog when no generation accepts.
type Generations struct {
	// NewCmd builds the command of generation gen (1, 2, ...). Every
	// descriptor the command is to receive must stay open until release
	// is called, which Run does right after Start, whether or not it
	// succeeded; release may be nil. Run adds the Probe's environment
	// (NOTIFY_SOCKET for notify) to cmd.Env, or to os.Environ() if
	// cmd.Env is nil.
	NewCmd func(gen int) (cmd *exec.Cmd, release func(), err error)
	// Probe decides when a generation is ready; nil means as soon as it
	// has started.
	Probe ready.Probe
	// ReadyTimeout bounds the wait for readiness (DefaultReadyTimeout if
	// zero).
	ReadyTimeout time.Duration
	// StopSignal is sent to a generation that is replaced, or that did not
	// become ready in time, and to every generation when the launcher gets
	// SIGTERM (SIGTERM if zero).
	StopSignal syscall.Signal
	// StopTimeout is how long a generation sent a stop signal has before
	// it gets SIGKILL (DefaultStopTimeout if zero).
	StopTimeout time.Duration
	// MaxGenerations is the most generations alive at once, starting and
	// stopping ones included (DefaultMaxGenerations if zero; at least 2).
	// To start a new one beyond it, the oldest that is not serving is
	// killed.
	MaxGenerations int
	// ReloadSignal, if not nil, is a signal on Run's channel that means
	// "reload" instead of being forwarded.
	ReloadSignal os.Signal
	// Restart and Backoff govern the serving generation's exit, as for
	// Supervisor.
	Restart Restart
	Backoff Backoff
	// Name names the child in log lines (cmd.Path if empty).
	Name string
	// Logf, if not nil, receives one line for each decision. It is called
	// from Run's goroutine only.
	Logf func(format string, args ...any)
	// Notifier, if not nil, is told what an outer service manager should
	// know.
	Notifier Notifier
}

// genState is where a generation stands.
type genState int

const (
	starting genState = iota // started, not yet ready
	serving                  // ready, the newest such
	retiring                 // replaced: sent the stop signal
	failing                  // not ready in time: sent the stop signal
	stopping                 // the whole supervisor is stopping
)

func (s genState) String() string {
	return [...]string{"starting", "serving", "stopping (replaced)", "stopping (not ready)", "stopping"}[s]
}

// generation is one started child.
type generation struct {
	n       int
	cmd     *exec.Cmd
	pid     int
	started time.Time
	check   ready.Check
	cancel  context.CancelFunc // ends the readiness wait
	done    chan struct{}      // closed once reaped; status is set then
	status  int
	state   genState
	killAt  time.Time // when to send SIGKILL; zero: not due
	killed  bool
}

// event comes from a generation's goroutines to Run's.
type event struct {
	g      *generation
	exited bool  // else a readiness result
	err    error // the readiness result
}

// run is the state of one Run.
type run struct {
	*Generations
	stopSig     syscall.Signal
	stopTimeout time.Duration
	readyTime   time.Duration
	max         int

	events    chan event
	wg        sync.WaitGroup // the generations' goroutines
	gens      []*generation  // alive (not yet reaped), oldest first
	serving   *generation
	candidate *generation
	next      int  // number of the next generation
	pending   bool // a reload asked while a candidate was starting
	restartAt time.Time
	announced bool // Notifier.Ready was called
	reloading bool // Notifier.Reloading was called, not yet answered

	ending     bool        // no more starts; Run returns once all are reaped
	final      *generation // whose status Run returns, if set
	finalState int
}

// Run starts the first generation and supervises the generations until
// the end: a stop signal (IsStop), forwarded to every generation alive
// (SIGKILL after StopTimeout), or an exit of the serving generation that
// Restart does not restart. It returns the status to exit with: that of the
// serving generation at a stop signal (the newest one if none was ready),
// 128+N if none was alive, or the status of the serving generation that
// exited.
//
// A receive on reloads, or ReloadSignal on signals, starts a new
// generation; one asked for while a new generation is starting is started
// once that one is ready or has failed. Other signals are forwarded to the
// serving generation (the newest started while none is). An error is
// returned only when the very first start fails; Run has started nothing
// then.
func (g *Generations) Run(signals <-chan os.Signal, reloads <-chan struct{}) (int, error) {
	if g.NewCmd == nil {
		return 0, errors.New("launch: Generations.NewCmd is nil")
	}
	r := &run{
		Generations: g,
		stopSig:     g.StopSignal,
		stopTimeout: g.StopTimeout,
		readyTime:   g.ReadyTimeout,
		max:         g.MaxGenerations,
		events:      make(chan event),
		next:        1,
	}
	if r.stopSig == 0 {
		r.stopSig = syscall.SIGTERM
	}
	if r.stopTimeout <= 0 {
		r.stopTimeout = DefaultStopTimeout
	}
	if r.readyTime <= 0 {
		r.readyTime = DefaultReadyTimeout
	}
	if r.max == 0 {
		r.max = DefaultMaxGenerations
	}
	if r.max < 2 {
		return 0, fmt.Errorf("launch: at most %d generations: at least 2 are needed to overlap: %w", r.max, syscall.EINVAL)
	}
	if err := r.start(startFirst); err != nil {
		return 0, err
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for !(r.ending && len(r.gens) == 0) {
		var due <-chan time.Time
		if at := r.nextDeadline(); !at.IsZero() {
			timer.Reset(time.Until(at))
			due = timer.C
		}
		select {
		case ev := <-r.events:
			if ev.exited {
				r.exited(ev.g)
			} else {
				r.readiness(ev.g, ev.err)
			}
		case sig := <-signals:
			r.signal(sig)
		case <-reloads:
			r.reload()
		case <-due:
			r.deadlines()
		}
		timer.Stop()
	}
	// Every generation is reaped; let the readiness waits finish.
	finished := make(chan struct{})
	go func() { r.wg.Wait(); close(finished) }()
	for {
		select {
		case <-r.events:
		case <-finished:
			return r.finalState, nil
		}
	}
}

func (r *run) logf(format string, args ...any) {
	if r.Logf != nil {
		r.Logf(format, args...)
	}
}

// startKind says why a generation starts.
type startKind int

const (
	startFirst startKind = iota
	startReload
	startRestart
)

// start starts a new generation as the candidate. Only the first start's
// error is returned; later ones are logged and dealt with here.
func (r *run) start(kind startKind) error {
	r.makeRoom()
	n := r.next
	check, cmd, err := r.build(n)
	if err != nil {
		if kind == startFirst {
			return err
		}
		r.logf("generation %d: start failed: %v", n, err)
		r.startFailed(kind)
		return nil
	}
	r.next++
	g := &generation{n: n, cmd: cmd, pid: cmd.Process.Pid, started: time.Now(), check: check, done: make(chan struct{})}
	r.gens = append(r.gens, g)
	r.candidate = g
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		cmd.Wait() // the status is in cmd.ProcessState
		g.status = ExitStatus(cmd.ProcessState)
		close(g.done)
		r.events <- event{g: g, exited: true}
	}()
	if r.Probe == nil {
		r.logf("generation %d: started %s as pid %d", n, r.name(cmd), g.pid)
		r.becameReady(g)
		return nil
	}
	r.logf("generation %d: started %s as pid %d; waiting up to %v for readiness (%s)", n, r.name(cmd), g.pid, r.readyTime, r.Probe)
	ctx, cancel := context.WithTimeout(context.Background(), r.readyTime)
	g.cancel = cancel
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		err := check.Wait(ctx, g.pid, g.done)
		r.events <- event{g: g, err: err}
	}()
	if kind != startFirst {
		r.status()
	}
	return nil
}

// build prepares the check and builds and starts the command of
// generation n. On error nothing is left running or open.
func (r *run) build(n int) (ready.Check, *exec.Cmd, error) {
	var check ready.Check
	if r.Probe != nil {
		c, err := r.Probe.Start(n)
		if err != nil {
			return nil, nil, err
		}
		check = c
	}
	cmd, release, err := r.NewCmd(n)
	if err == nil {
		if check != nil && len(check.Env()) > 0 {
			env := cmd.Env
			if env == nil {
				env = os.Environ()
			}
			for _, kv := range check.Env() {
				env = envvar.Set(env, kv)
			}
			cmd.Env = env
		}
		err = cmd.Start()
		if err != nil {
			err = fmt.Errorf("starting %s: %w", cmd.Path, err)
		}
	}
	if release != nil {
		release()
	}
	if err != nil {
		if check != nil {
			check.Close()
		}
		return nil, nil, err
	}
	return check, cmd, nil
}

func (r *run) name(cmd *exec.Cmd) string {
	if r.Name != "" {
		return r.Name
	}
	return cmd.Path
}

// startFailed deals with a start that failed before a process ran.
func (r *run) startFailed(kind startKind) {
	switch {
	case kind == startReload && r.serving != nil:
		r.logf("reload failed; generation %d (pid %d) keeps serving", r.serving.n, r.serving.pid)
		r.answerReload(false)
	case r.serving == nil:
		// Nothing serves: retry as after a quick failure.
		d := r.Backoff.Delay(0, true)
		r.logf("no generation is serving; trying again in %v", d.Round(time.Millisecond))
		r.answerReload(false)
		r.restartAt = time.Now().Add(d)
	}
}

// makeRoom kills the oldest generations that are not serving until a new
// one fits under the maximum, and waits (boundedly) for them to die.
func (r *run) makeRoom() {
	for {
		alive := r.alive()
		if len(alive)+1 <= r.max {
			return
		}
		var victim *generation
		for _, g := range alive {
			if g != r.serving {
				victim = g
				break
			}
		}
		if victim == nil {
			return
		}
		r.logf("%d generations alive, at most %d: killing generation %d (pid %d, %s), the oldest", len(alive), r.max, victim.n, victim.pid, victim.state)
		r.kill(victim)
		select {
		case <-victim.done:
		case <-time.After(killWait):
			r.logf("generation %d (pid %d) still alive %v after SIGKILL; starting the new one anyway", victim.n, victim.pid, killWait)
			return
		}
	}
}

// alive returns the generations not yet dead, oldest first.
func (r *run) alive() []*generation {
	var out []*generation
	for _, g := range r.gens {
		select {
		case <-g.done:
		default:
			out = append(out, g)
		}
	}
	return out
}

func (r *run) kill(g *generation) {
	g.killed = true
	if err := g.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		r.logf("killing generation %d (pid %d): %v", g.n, g.pid, err)
	}
}

// stop sends sig to g and sets its SIGKILL deadline.
func (r *run) stop(g *generation, sig os.Signal, state genState) {
	g.state = state
	if g.cancel != nil {
		g.cancel()
	}
	if err := g.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		r.logf("sending %s to generation %d (pid %d): %v", sigName(sig), g.n, g.pid, err)
	}
	if g.killAt.IsZero() {
		g.killAt = time.Now().Add(r.stopTimeout)
	}
}

// readiness acts on the outcome of g's readiness wait.
func (r *run) readiness(g *generation, err error) {
	if g != r.candidate || g.state != starting {
		return // already dealt with (it exited, or everything is stopping)
	}
	if err == nil {
		r.becameReady(g)
		return
	}
	if errors.Is(err, ready.ErrExited) {
		return // the exit event follows and says how
	}
	why := err.Error()
	if errors.Is(err, context.DeadlineExceeded) {
		why = fmt.Sprintf("not ready within %v", r.readyTime)
		if _, last, ok := strings.Cut(err.Error(), "(last attempt: "); ok {
			why += " (last attempt: " + last
		}
	}
	r.candidate = nil
	r.logf("generation %d (pid %d) %s: stopping it with %s%s", g.n, g.pid, why, sigName(r.stopSig), r.keeping())
	r.stop(g, r.stopSig, failing)
	r.candidateFailed()
}

// keeping says which generation keeps serving, for a log line.
func (r *run) keeping() string {
	if r.serving == nil {
		return ""
	}
	return fmt.Sprintf("; generation %d (pid %d) keeps serving", r.serving.n, r.serving.pid)
}

// candidateFailed follows a new generation's failure, once it is no longer
// the candidate. Without a serving generation, the restart policy decides
// when the failed one has exited (exited does that).
func (r *run) candidateFailed() {
	if r.serving == nil {
		return
	}
	r.answerReload(false)
	if r.pending && !r.ending {
		r.pending = false
		r.logf("reloading again, as asked meanwhile")
		r.beginReload()
	}
}

// becameReady makes g the serving generation and retires the others.
func (r *run) becameReady(g *generation) {
	r.candidate = nil
	if g.cancel != nil {
		g.cancel()
	}
	g.state = serving
	old := r.serving
	r.serving = g
	if old == nil {
		r.logf("generation %d (pid %d) is ready after %v", g.n, g.pid, time.Since(g.started).Round(time.Millisecond))
	} else {
		r.logf("generation %d (pid %d) is ready after %v; stopping generation %d (pid %d) with %s, SIGKILL after %v", g.n, g.pid, time.Since(g.started).Round(time.Millisecond), old.n, old.pid, sigName(r.stopSig), r.stopTimeout)
		r.stop(old, r.stopSig, retiring)
	}
	switch {
	case !r.announced:
		r.announced = true
		r.reloading = false
		if r.Notifier != nil {
			r.Notifier.Ready(r.statusText())
		}
	case r.reloading:
		r.answerReload(true)
	default:
		r.status()
	}
	if r.pending && !r.ending {
		r.pending = false
		r.logf("reloading again, as asked meanwhile")
		r.beginReload()
	}
}

// answerReload tells the Notifier how a reload ended, if one was
// announced.
func (r *run) answerReload(ok bool) {
	if !r.reloading {
		r.status()
		return
	}
	r.reloading = false
	if r.Notifier == nil {
		return
	}
	if ok {
		r.Notifier.Reloaded(r.statusText())
	} else {
		r.Notifier.ReloadFailed(r.statusText())
	}
}

func (r *run) status() {
	if r.Notifier != nil {
		r.Notifier.Status(r.statusText())
	}
}

// exited acts on the death of g.
func (r *run) exited(g *generation) {
	for i, x := range r.gens {
		if x == g {
			r.gens = append(r.gens[:i], r.gens[i+1:]...)
			break
		}
	}
	if g.cancel != nil {
		g.cancel()
	}
	if g.check != nil {
		if err := g.check.Close(); err != nil {
			r.logf("generation %d: %v", g.n, err)
		}
	}
	lived := time.Since(g.started)
	if r.final == g {
		r.finalState = g.status
	}
	switch g.state {
	case starting:
		r.candidate = nil
		r.logf("generation %d (pid %d) exited with status %d before it was ready%s", g.n, g.pid, g.status, r.keeping())
		r.candidateFailed()
		if r.serving == nil {
			r.decide(g, lived)
		}
	case failing:
		r.logf("generation %d (pid %d), not ready, exited with status %d", g.n, g.pid, g.status)
		if r.serving == nil && r.candidate == nil {
			r.decide(g, lived)
		}
	case retiring:
		r.logf("generation %d (pid %d), replaced, exited with status %d", g.n, g.pid, g.status)
	case stopping:
		r.logf("generation %d (pid %d) exited with status %d; stopping", g.n, g.pid, g.status)
	case serving:
		r.serving = nil
		if r.candidate != nil {
			r.logf("generation %d (pid %d), serving, exited with status %d after %v; generation %d (pid %d) is starting", g.n, g.pid, g.status, lived.Round(time.Millisecond), r.candidate.n, r.candidate.pid)
			r.status()
			return
		}
		r.decide(g, lived)
	}
	if !r.ending {
		r.status()
	}
}

// decide applies the restart policy to g, the last generation, which
// exited with nothing else serving or starting.
func (r *run) decide(g *generation, lived time.Duration) {
	if r.ending {
		return
	}
	status := g.status
	if g.state != serving && status == 0 {
		// Never ready and nothing serving: a failure, however it exited
		// (a clean exit on the stop signal after the ready timeout, say),
		// for the restart policy and for the status Run returns.
		status = 1
		r.logf("generation %d (pid %d) never became ready, and no generation serves: counted as a failure (status 1)", g.n, g.pid)
	}
	if !r.Restart.restarts(status) {
		r.logf("generation %d (pid %d) exited with status %d after %v; not restarting", g.n, g.pid, g.status, lived.Round(time.Millisecond))
		r.end(status)
		if r.Notifier != nil {
			r.Notifier.Stopping(r.statusText())
		}
		return
	}
	failed := g.status != 0 || g.state != serving
	d := r.Backoff.Delay(lived, failed)
	if diedOfStop(g.status) && d < stopGrace {
		d = stopGrace
	}
	r.logf("generation %d (pid %d) exited with status %d after %v; restarting in %v", g.n, g.pid, g.status, lived.Round(time.Millisecond), d.Round(time.Millisecond))
	r.restartAt = time.Now().Add(d)
}

// end stops any further start; Run returns status once every generation
// alive has exited.
func (r *run) end(status int) {
	r.ending = true
	r.pending = false
	r.restartAt = time.Time{}
	r.finalState = status
}

// signal acts on a signal received by the launcher.
func (r *run) signal(sig os.Signal) {
	switch {
	case IsStop(sig):
		r.stopAll(sig)
	case r.ReloadSignal != nil && sig == r.ReloadSignal:
		r.reload()
	default:
		g := r.serving
		if g == nil && len(r.gens) > 0 {
			g = r.gens[len(r.gens)-1]
		}
		if g == nil {
			r.logf("%s: no generation running; dropped", sigName(sig))
			return
		}
		r.logf("%s: forwarded to generation %d (pid %d)", sigName(sig), g.n, g.pid)
		if err := g.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			r.logf("forwarding %s to generation %d (pid %d): %v", sigName(sig), g.n, g.pid, err)
		}
	}
}

// stopAll stops every generation alive: SIGTERM to the launcher (what a
// service manager sends) becomes the stop signal, a server's own graceful
// stop; SIGINT (a Ctrl-C, which the whole process group gets) is passed on
// as it is.
func (r *run) stopAll(sig os.Signal) {
	send := sig
	if sig == syscall.SIGTERM {
		send = r.stopSig
	}
	if !r.ending {
		alive := r.alive()
		if len(alive) == 0 {
			r.logf("%s: no generation running; stopping", sigName(sig))
			r.end(signalStatus(sig))
			return
		}
		final := r.serving
		if final == nil {
			final = alive[len(alive)-1]
		}
		r.end(signalStatus(sig))
		r.final = final
		r.candidate = nil
		with := ""
		if send != sig {
			with = " with " + sigName(send)
		}
		r.logf("%s: stopping %s%s, SIGKILL after %v", sigName(sig), names(alive), with, r.stopTimeout)
		for _, g := range alive {
			r.stop(g, send, stopping)
		}
		if r.Notifier != nil {
			r.Notifier.Stopping(r.statusText())
		}
		return
	}
	r.logf("%s: forwarded again", sigName(sig))
	for _, g := range r.alive() {
		r.stop(g, sig, stopping)
	}
}

// names lists generations for a log line.
func names(gens []*generation) string {
	var s []string
	for _, g := range gens {
		s = append(s, fmt.Sprintf("generation %d (pid %d)", g.n, g.pid))
	}
	return strings.Join(s, ", ")
}

// reload acts on a reload request.
func (r *run) reload() {
	switch {
	case r.ending:
		r.logf("reload: stopping; ignored")
	case r.candidate != nil:
		if !r.pending {
			r.logf("reload: generation %d (pid %d) is still starting; reloading again once it is ready or has failed", r.candidate.n, r.candidate.pid)
		}
		r.pending = true
	default:
		r.beginReload()
	}
}

// beginReload starts a new generation for a reload.
func (r *run) beginReload() {
	kind := startReload
	if r.serving == nil {
		// Waiting to restart after an exit: start now.
		r.restartAt = time.Time{}
		kind = startRestart
	}
	r.logf("reload: starting generation %d", r.next)
	if r.announced && r.Notifier != nil {
		r.reloading = true
		r.Notifier.Reloading(fmt.Sprintf("reloading: starting generation %d; %s", r.next, r.statusText()))
	}
	r.start(kind)
}

// nextDeadline returns the earliest SIGKILL or restart due (zero if none).
func (r *run) nextDeadline() time.Time {
	at := r.restartAt
	for _, g := range r.gens {
		if !g.killAt.IsZero() && !g.killed && (at.IsZero() || g.killAt.Before(at)) {
			at = g.killAt
		}
	}
	return at
}

// deadlines sends SIGKILL and restarts that are due.
func (r *run) deadlines() {
	now := time.Now()
	for _, g := range r.alive() {
		if !g.killAt.IsZero() && !g.killed && !now.Before(g.killAt) {
			r.logf("generation %d (pid %d) still running %v after the stop signal: sending SIGKILL", g.n, g.pid, r.stopTimeout)
			r.kill(g)
		}
	}
	if !r.restartAt.IsZero() && !now.Before(r.restartAt) && !r.ending {
		r.restartAt = time.Time{}
		r.start(startRestart)
	}
}

// statusText names the generations alive and what each does.
func (r *run) statusText() string {
	var s []string
	for i := len(r.gens) - 1; i >= 0; i-- {
		g := r.gens[i]
		t := fmt.Sprintf("generation %d (pid %d) %s", g.n, g.pid, g.state)
		if g.state == serving {
			if c, ok := g.check.(interface{ Status() string }); ok && c.Status() != "" {
				t += ": " + c.Status()
			}
		}
		s = append(s, t)
	}
	if len(s) == 0 {
		return "no generation running"
	}
	return strings.Join(s, "; ")
}
