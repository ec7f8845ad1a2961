package spawn

import (
	"strings"

	"github.com/fdsend/fdsend/internal/fdname"
)

// The environment variables of the protocol.
const (
	envPID      = fdname.EnvPID
	envPIDFDID  = fdname.EnvPIDFDID
	envFDs      = fdname.EnvFDs
	envFDNames  = fdname.EnvFDNames
	listenStart = 3 // SD_LISTEN_FDS_START: the first descriptor handed over
)

// listenVars lists every variable of the protocol, for replacing in a
// child's environment.
var listenVars = fdname.ListenVars

// replaceListenVars returns env without any LISTEN_* variable, followed by
// extra.
func replaceListenVars(env []string, extra ...string) []string {
	out := make([]string, 0, len(env)+len(extra))
	for _, kv := range env {
		if isListenVar(kv) {
			continue
		}
		out = append(out, kv)
	}
	return append(out, extra...)
}

// isListenVar reports whether the NAME=VALUE entry kv sets one of the
// protocol's variables.
func isListenVar(kv string) bool {
	name, _, _ := strings.Cut(kv, "=")
	for _, v := range listenVars {
		if name == v {
			return true
		}
	}
	return false
}

// joinNames joins names into a LISTEN_FDNAMES value.
func joinNames(names []string) string { return strings.Join(names, ":") }
