package spawn

import (
	"fmt"
	"testing"
)

func TestReplaceListenVars(t *testing.T) {
	env := []string{"A=1", "LISTEN_PID=3", "LISTEN_FDS=2", "LISTEN_FDSX=keep", "LISTEN_FDNAMES=a:b", "LISTEN_PIDFDID=9", "B=2", "LISTEN_FDS"}
	got := replaceListenVars(env, "LISTEN_FDS=1")
	want := []string{"A=1", "LISTEN_FDSX=keep", "B=2", "LISTEN_FDS=1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
