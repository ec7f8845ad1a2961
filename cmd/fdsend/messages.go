package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"strings"
	"syscall"

	"github.com/fdsend/fdsend/holder"
)

// The functions here turn the errors of the packages fdsend is built on
// into the lines a Unix tool writes: what failed, on what, and the
// system's reason, without Go's operation names ("dial unix", "lstat"),
// package prefixes, or an errno's text after a message that already says
// what is wrong. docs/errors.md lists what comes out.

// reason returns why err happened, for the end of a message: the text of
// the system error at its root ("permission denied"), else err's own text
// (trimmed by plain).
func reason(err error) string {
	var pe *fs.PathError
	var se *os.SyscallError
	var oe *net.OpError
	switch {
	case errors.As(err, &pe) && pe.Op != "listen":
		// sockfile's "listen" PathErrors carry a sentence of their own.
		return reason(pe.Err)
	case errors.As(err, &se):
		return reason(se.Err)
	case errors.As(err, &oe):
		return reason(oe.Err)
	}
	var errno syscall.Errno
	if errors.As(err, &errno) && err.Error() == errno.Error() {
		return errno.Error()
	}
	if errors.As(err, &pe) {
		// internal/sockfile's refusals to replace what is at a path.
		switch {
		case errors.Is(err, syscall.EEXIST):
			return "a file that is not a socket is there (left alone)"
		case errors.Is(err, syscall.EADDRINUSE):
			return "a process is serving on it"
		}
		return plain(pe.Err)
	}
	return plain(err)
}

// plain returns err's text without a leading package name ("holder: ",
// "activation: ") and without ": invalid argument" at the end: the
// messages that wrap EINVAL already say what is invalid.
func plain(err error) string {
	s := err.Error()
	for _, op := range []string{"store", "fetch", "list", "remove"} {
		// holder.Error's "holder: OP: ".
		s = strings.ReplaceAll(s, "holder: "+op+": ", "")
	}
	for _, p := range []string{"holder: ", "activation: ", "notify: ", "fdsend: "} {
		s = strings.TrimPrefix(s, p)
		s = strings.ReplaceAll(s, ": "+p, ": ")
	}
	var uu user.UnknownUserError
	var ug user.UnknownGroupError
	switch {
	case errors.As(err, &uu):
		s = strings.TrimSuffix(s, uu.Error()) + "no such user"
	case errors.As(err, &ug):
		s = strings.TrimSuffix(s, ug.Error()) + "no such group"
	}
	if errors.Is(err, syscall.EINVAL) {
		s = strings.TrimSuffix(s, ": "+syscall.EINVAL.Error())
	}
	return s
}

// commandError describes why COMMAND cannot be run, as a shell does:
// "x: command not found", "/etc: is a directory", "/etc/passwd:
// permission denied".
func commandError(name string, err error) string {
	switch {
	case errors.Is(err, exec.ErrNotFound):
		return name + ": command not found"
	case errors.Is(err, syscall.EISDIR):
		return name + ": is a directory"
	case errors.Is(err, fs.ErrPermission):
		return name + ": permission denied"
	}
	var ee *exec.Error
	if errors.As(err, &ee) {
		return name + ": " + reason(ee.Err)
	}
	return name + ": " + reason(err)
}

// commandStatus is the exit status for a COMMAND that cannot be run: 127
// when it is not there, 126 otherwise, as in a shell.
func commandStatus(err error) int {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, exec.ErrNotFound) {
		return 127
	}
	return 126
}

// listenError describes a socket that cannot be made at address a.
func listenError(a string, err error) error {
	return errors.New("cannot listen on " + a + ": " + reason(err))
}

// dialError describes why the holder at sock cannot be reached.
func dialError(sock string, err error) error {
	why := reason(err)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		// connect(2) says the same of a file that is not a socket.
		if st, serr := os.Stat(sock); serr == nil && st.Mode().Type() != fs.ModeSocket {
			why = "not a socket"
		} else {
			why = "no holder is listening there (connection refused)"
		}
	case errors.Is(err, syscall.EAGAIN):
		why = "its listen backlog stayed full: the holder is not accepting connections"
	}
	return errors.New("cannot reach a holder at " + sock + ": " + why)
}

// requestError describes a request the holder at sock refused or failed.
func requestError(sock string, err error) error {
	var he *holder.Error
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &he) && errors.Is(err, holder.ErrDenied):
		return errors.New("permission denied: " + he.Msg)
	case errors.As(err, &he):
		return errors.New(he.Msg)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%s: no answer within %v (is it a holder?)", sock, holder.DefaultTimeout)
	case errors.As(err, &se), errors.As(err, &te):
		return errors.New(sock + ": the answer is not the holder protocol (is it a holder?)")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return errors.New(sock + ": the connection was closed without an answer (is it a holder?)")
	}
	return errors.New(plain(err))
}

// each returns the errors errors.Join joined in err, or err alone.
func each(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
