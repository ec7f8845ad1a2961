package activation

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"syscall"

	"github.com/fdsend/fdsend/internal/fdname"
)

// The environment variables of the protocol.
const (
	envPID      = fdname.EnvPID
	envPIDFDID  = fdname.EnvPIDFDID
	envFDs      = fdname.EnvFDs
	envFDNames  = fdname.EnvFDNames
	listenStart = 3 // SD_LISTEN_FDS_START: the first inherited descriptor
)

// listenVars lists every variable of the protocol, for unsetting.
var listenVars = fdname.ListenVars

// EnvError reports a malformed LISTEN_* variable, or descriptors that do not
// match what the variables say. Var names the variable, Value is its value
// and Err the cause; errors.Is sees through it (to syscall.EINVAL for a
// malformed value, syscall.EBADF for a descriptor that is not open).
type EnvError struct {
	Var   string
	Value string
	Err   error
}

func (e *EnvError) Error() string {
	return "activation: " + e.Var + "=" + quoteShort(e.Value) + ": " + e.Err.Error()
}

func (e *EnvError) Unwrap() error { return e.Err }

// envErr builds the EnvError for a malformed value: the cause wraps
// syscall.EINVAL.
func envErr(name, value, format string, args ...any) *EnvError {
	return &EnvError{Var: name, Value: value, Err: fmt.Errorf(format+": %w", append(args, syscall.EINVAL)...)}
}

// parseDecimal parses a non-negative decimal number with no sign, no
// spaces and no leading zeros (systemd's parser would read "010" as octal, so
// such a value is refused rather than guessed at).
func parseDecimal(s string, max uint64) (uint64, error) {
	if s == "" {
		return 0, errors.New("empty, want a decimal number")
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, errors.New("leading zero, want a plain decimal number")
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("byte %d is %q, want a decimal number", i, c)
		}
		d := uint64(c - '0')
		if v > (max-d)/10 {
			return 0, fmt.Errorf("out of range, at most %d", max)
		}
		v = v*10 + d
	}
	return v, nil
}

// vars is what the LISTEN_* variables say, once checked.
type vars struct {
	n     int      // descriptors listenStart .. listenStart+n-1
	names []string // one per descriptor, or nil when LISTEN_FDNAMES is unset
}

// name returns the name of descriptor listenStart+i: UnknownName when the
// launcher set no names. (No slice of n names is made for unnamed
// descriptors: n comes from the environment and may be huge.)
func (v vars) name(i int) string {
	if v.names == nil {
		return UnknownName
	}
	return v.names[i]
}

// parseVars reads the LISTEN_* variables through lookup for the process pid.
// pidfdID returns the pidfs inode number of this process and whether the
// system has one to compare with LISTEN_PIDFDID. It touches no descriptor.
//
// A LISTEN_PID that is absent or not pid, or a LISTEN_PIDFDID that names
// another process, means nothing was inherited: vars{} and no error, as
// sd_listen_fds(3) has it. A malformed value is an *EnvError naming it.
func parseVars(lookup func(string) (string, bool), pid int, pidfdID func() (uint64, bool)) (vars, error) {
	pidStr, ok := lookup(envPID)
	if !ok {
		return vars{}, nil
	}
	p, err := parseDecimal(pidStr, math.MaxInt32)
	if err != nil {
		return vars{}, envErr(envPID, pidStr, "%v", err)
	}
	if p == 0 {
		return vars{}, envErr(envPID, pidStr, "not a process ID")
	}
	if int(p) != pid {
		return vars{}, nil // meant for another process (our parent, say)
	}
	if idStr, ok := lookup(envPIDFDID); ok {
		id, err := parseDecimal(idStr, math.MaxUint64)
		if err != nil {
			return vars{}, envErr(envPIDFDID, idStr, "%v", err)
		}
		if own, ok := pidfdID(); ok && own != id {
			// Same PID, another process: the PID was recycled.
			return vars{}, nil
		}
	}
	fdsStr, ok := lookup(envFDs)
	if !ok {
		return vars{}, nil
	}
	n64, err := parseDecimal(fdsStr, math.MaxInt32-listenStart)
	if err != nil {
		return vars{}, envErr(envFDs, fdsStr, "%v", err)
	}
	n := int(n64)
	namesStr, named := lookup(envFDNames)
	if !named {
		return vars{n: n}, nil
	}
	if n == 0 {
		if namesStr != "" {
			return vars{}, envErr(envFDNames, namesStr, "names given, but %s=0", envFDs)
		}
		return vars{}, nil
	}
	// Count before splitting: a huge value must not allocate a huge slice.
	if c := strings.Count(namesStr, ":") + 1; c != n {
		return vars{}, envErr(envFDNames, namesStr, "%d names for %s=%d", c, envFDs, n)
	}
	names := strings.Split(namesStr, ":")
	for i, name := range names {
		if err := fdname.CheckReceived(name); err != nil {
			return vars{}, envErr(envFDNames, namesStr, "name %d (descriptor %d) %s %v", i, listenStart+i, quoteShort(name), err)
		}
	}
	return vars{n: n, names: names}, nil
}
