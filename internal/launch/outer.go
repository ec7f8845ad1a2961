package launch

import "github.com/fdsend/fdsend/notify"

// Outer is a Notifier that tells an outer service manager through Client,
// as systemd's Type=notify-reload expects: READY=1 once the first
// generation is ready; RELOADING=1 with MONOTONIC_USEC= when a reload
// begins, and READY=1 when it ends, whether the new generation took over
// or not; STOPPING=1 on the way out; STATUS= with each. Errors go to Logf
// (if not nil). Give Client a Timeout: each call blocks while it sends.
type Outer struct {
	Client notify.Client
	Logf   func(format string, args ...any)
}

func (o Outer) send(state string) {
	if _, err := o.Client.Send(state); err != nil && o.Logf != nil {
		o.Logf("telling the service manager %q: %v", state, err)
	}
}

// Ready sends READY=1 and STATUS=status.
func (o Outer) Ready(status string) { o.send("READY=1\nSTATUS=" + status) }

// Reloading sends RELOADING=1 with MONOTONIC_USEC=, then STATUS=status.
func (o Outer) Reloading(status string) {
	if _, err := o.Client.Reloading(); err != nil && o.Logf != nil {
		o.Logf("telling the service manager RELOADING=1: %v", err)
	}
	o.send("STATUS=" + status)
}

// Reloaded sends READY=1 and STATUS=status.
func (o Outer) Reloaded(status string) { o.send("READY=1\nSTATUS=" + status) }

// ReloadFailed sends READY=1 (the reload is over: the old generation
// serves on) and STATUS=status.
func (o Outer) ReloadFailed(status string) { o.send("READY=1\nSTATUS=reload failed; " + status) }

// Stopping sends STOPPING=1 and STATUS=status.
func (o Outer) Stopping(status string) { o.send("STOPPING=1\nSTATUS=" + status) }

// Status sends STATUS=status.
func (o Outer) Status(status string) { o.send("STATUS=" + status) }
