package launch

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

// User is a user to run children as, resolved from the user and group
// databases.
type User struct {
	Name   string // as given: a name, or a number
	UID    uint32
	GID    uint32
	Groups []uint32 // supplementary groups, GID among them
}

// noID is (uid_t)-1: setuid and setgid read it as "unchanged".
const noID = 1<<32 - 1

// LookupUser resolves spec, USER or USER:GROUP, each a name or a number.
// USER alone runs as USER's group from the user database, with every group
// the group database lists USER in. With GROUP, GROUP replaces USER's own
// group, and the groups the database lists USER in are kept. A number that
// the user database does not know is accepted as a user ID only with a
// GROUP, and then has GROUP as its only group; a numeric GROUP need not be
// in the group database.
//
// Anything that cannot be resolved is an error, never a fallback: the
// error names the part of spec and wraps the cause (user.UnknownUserError,
// user.UnknownGroupError, an errno from the lookup, or syscall.EINVAL for a
// malformed spec), so that no child ever runs as the caller (root) by
// accident.
func LookupUser(spec string) (*User, error) {
	name, group, hasGroup := strings.Cut(spec, ":")
	if name == "" {
		return nil, fmt.Errorf("no user name in %q: %w", spec, syscall.EINVAL)
	}
	if hasGroup && group == "" {
		return nil, fmt.Errorf("empty group after %q: %w", name+":", syscall.EINVAL)
	}
	u := &User{Name: name}
	var pw *user.User
	if id, numeric, err := parseID(name, "user"); err != nil {
		return nil, err
	} else if numeric {
		u.UID = id
		pw, err = user.LookupId(name)
		var unknown user.UnknownUserIdError
		switch {
		case errors.As(err, &unknown):
			if !hasGroup {
				return nil, &lookupError{fmt.Sprintf("user ID %d is not in the user database: give its group too (%d:GROUP)", id, id), err}
			}
			pw = nil
		case err != nil:
			return nil, fmt.Errorf("looking up user ID %d: %w", id, err)
		}
	} else {
		pw, err = user.Lookup(name)
		if err != nil {
			// user.UnknownUserError's text says "unknown user NAME" (the
			// command turns it into "no such user").
			return nil, fmt.Errorf("user %q: %w", name, err)
		}
		if u.UID, err = dbID(pw.Uid, "user", name); err != nil {
			return nil, err
		}
	}

	var primary uint32
	var members []uint32
	if pw != nil {
		var err error
		if primary, err = dbID(pw.Gid, "group of user", name); err != nil {
			return nil, err
		}
		ids, err := pw.GroupIds()
		if err != nil {
			return nil, fmt.Errorf("listing the groups of user %q: %w", name, err)
		}
		for _, s := range ids {
			g, err := dbID(s, "group of user", name)
			if err != nil {
				return nil, err
			}
			members = append(members, g)
		}
	}
	u.GID = primary
	if hasGroup {
		g, err := lookupGroup(group)
		if err != nil {
			return nil, err
		}
		u.GID = g
		// USER's own group from the user database is GROUP now.
		members = removeID(members, primary)
	}
	u.Groups = append([]uint32{u.GID}, removeID(members, u.GID)...)
	return u, nil
}

// lookupGroup resolves a group name or number.
func lookupGroup(group string) (uint32, error) {
	id, numeric, err := parseID(group, "group")
	if err != nil || numeric {
		return id, err
	}
	gr, err := user.LookupGroup(group)
	if err != nil {
		return 0, fmt.Errorf("group %q: %w", group, err)
	}
	return dbID(gr.Gid, "group", group)
}

// parseID reads s as a user or group ID (what names it) if it is all
// digits; numeric is false for a name.
func parseID(s, what string) (id uint32, numeric bool, err error) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false, nil
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == noID {
		return 0, true, fmt.Errorf("%s ID %s is out of range: %w", what, s, syscall.EINVAL)
	}
	return uint32(n), true, nil
}

// dbID reads an ID the databases gave for name.
func dbID(s, what, name string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == noID {
		return 0, fmt.Errorf("%s %q: the database gives ID %q: %w", what, name, s, syscall.EINVAL)
	}
	return uint32(n), nil
}

// removeID returns ids without id.
func removeID(ids []uint32, id uint32) []uint32 {
	out := ids[:0:0]
	for _, g := range ids {
		if g != id {
			out = append(out, g)
		}
	}
	return out
}

// lookupError says what could not be resolved in words of its own, and
// wraps the cause (user.UnknownUserError, ...), whose text only repeats it.
type lookupError struct {
	msg string
	err error
}

func (e *lookupError) Error() string { return e.msg }
func (e *lookupError) Unwrap() error { return e.err }
