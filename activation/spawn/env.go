package spawn

import (
	"strings"

	"github.com/fdsend/fdsend/internal/envvar"
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

// replaceListenVars returns env without any LISTEN_* variable, followed by
// extra.
func replaceListenVars(env []string, extra ...string) []string {
	return append(envvar.Without(env, fdname.IsListenVar), extra...)
}

// joinNames joins names into a LISTEN_FDNAMES value.
func joinNames(names []string) string { return strings.Join(names, ":") }
