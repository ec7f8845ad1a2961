package spawn

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/fdsend/fdsend"
)

// Options changes how Options.Command and Options.Exec hand the descriptors
// over and run the program. The zero value is what Command and Exec do.
type Options struct {
	// Nonblocking hands every descriptor over in non-blocking mode
	// (O_NONBLOCK set, systemd's NonBlocking=yes) instead of blocking mode,
	// for programs whose runtime wants that, such as Rust's Tokio. As with
	// the default, the flag is set on the open file description the caller
	// shares with the program.
	Nonblocking bool

	// User, if not nil, is the user the program runs as. The trampoline,
	// still running as the caller, puts the descriptors in place, then sets
	// the supplementary groups, the group ID and the user ID, in that
	// order, checks that the user ID cannot be changed back, and execs the
	// program: the caller (root, say, having bound port 80) needs the
	// privilege to do so, and only the program, not this executable, must be
	// executable by the user.
	User *Credential
}

// Credential is a user to run a program as.
type Credential struct {
	UID, GID uint32
	// Groups are the supplementary groups, replacing the caller's; none
	// (nil or empty) leaves the program with no supplementary group.
	Groups []uint32
}

// Command is like the package's Command with the options o.
func (o Options) Command(files []NamedFile, name string, arg ...string) (*exec.Cmd, error) {
	return command(o, files, name, arg...)
}

// Exec is like the package's Exec with the options o.
func (o Options) Exec(files []NamedFile, path string, argv []string, env []string) error {
	return execFiles(o, files, path, argv, env)
}

// The trampoline's OPTS argument: comma-separated words, "" for none.
const (
	optNonblock = "nonblock"
	optUID      = "uid="
	optGID      = "gid="
	optGroups   = "groups=" // IDs separated by ':'
)

// encode returns o as the trampoline's OPTS argument.
func (o Options) encode() string {
	var words []string
	if o.Nonblocking {
		words = append(words, optNonblock)
	}
	if u := o.User; u != nil {
		gs := make([]string, len(u.Groups))
		for i, g := range u.Groups {
			gs[i] = strconv.FormatUint(uint64(g), 10)
		}
		words = append(words,
			optUID+strconv.FormatUint(uint64(u.UID), 10),
			optGID+strconv.FormatUint(uint64(u.GID), 10),
			optGroups+strings.Join(gs, ":"))
	}
	return strings.Join(words, ",")
}

// noID is (uid_t)-1, which setuid and setgid take as "unchanged", never a
// user to run as.
const noID = 1<<32 - 1

// check refuses a Credential whose IDs are (uid_t)-1.
func (o Options) check() error {
	if u := o.User; u != nil {
		if u.UID == noID {
			return &fdsend.ArgError{Arg: "Options.User.UID", Type: "uint32", Err: fmt.Errorf("%d is not a user ID: %w", u.UID, syscall.EINVAL)}
		}
		if u.GID == noID {
			return &fdsend.ArgError{Arg: "Options.User.GID", Type: "uint32", Err: fmt.Errorf("%d is not a group ID: %w", u.GID, syscall.EINVAL)}
		}
		for i, g := range u.Groups {
			if g == noID {
				return &fdsend.ArgError{Arg: fmt.Sprintf("Options.User.Groups[%d]", i), Type: "uint32", Err: fmt.Errorf("%d is not a group ID: %w", g, syscall.EINVAL)}
			}
		}
	}
	return nil
}

// decodeOptions reads the trampoline's OPTS argument.
func decodeOptions(s string) (Options, error) {
	var o Options
	if s == "" {
		return o, nil
	}
	var uid, gid, groups string
	var hasUID, hasGID, hasGroups bool
	for w := range strings.SplitSeq(s, ",") {
		switch {
		case w == optNonblock:
			o.Nonblocking = true
		case strings.HasPrefix(w, optUID):
			uid, hasUID = w[len(optUID):], true
		case strings.HasPrefix(w, optGID):
			gid, hasGID = w[len(optGID):], true
		case strings.HasPrefix(w, optGroups):
			groups, hasGroups = w[len(optGroups):], true
		default:
			return o, fmt.Errorf("bad option %q", w)
		}
	}
	if !hasUID && !hasGID && !hasGroups {
		return o, nil
	}
	if !hasUID || !hasGID || !hasGroups {
		return o, fmt.Errorf("options %q: a user needs uid, gid and groups", s)
	}
	u := &Credential{}
	var err error
	if u.UID, err = parseID(uid); err != nil {
		return o, err
	}
	if u.GID, err = parseID(gid); err != nil {
		return o, err
	}
	if groups != "" {
		for g := range strings.SplitSeq(groups, ":") {
			id, err := parseID(g)
			if err != nil {
				return o, err
			}
			u.Groups = append(u.Groups, id)
		}
	}
	o.User = u
	return o, o.check()
}

// parseID reads a user or group ID in decimal.
func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("bad ID %q", s)
	}
	return uint32(n), nil
}
