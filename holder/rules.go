package holder

import (
	"fmt"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

// Op is a set of holder operations, the unit of access rules.
type Op uint8

// The operations a Rule can grant.
const (
	// OpStore is storing a descriptor under a name (and replacing one).
	OpStore Op = 1 << iota
	// OpFetch is fetching descriptors by name (and, with OpDelete too,
	// fetching and deleting them at once).
	OpFetch
	// OpList is listing the names held, with what each descriptor is.
	OpList
	// OpDelete is removing a name, closing its descriptor.
	OpDelete

	// AllOps is every operation.
	AllOps = OpStore | OpFetch | OpList | OpDelete
)

// opNames are the names of the operations, in the order of their bits.
var opNames = []string{"store", "fetch", "list", "delete"}

// String returns the operations as a comma list ("store,fetch"), "none" for
// the empty set.
func (o Op) String() string {
	var parts []string
	for i, n := range opNames {
		if o&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// ParseOps parses a comma list of operation names (store, fetch, list,
// delete). The empty string means AllOps. An unknown or repeated name is an
// error wrapping syscall.EINVAL.
func ParseOps(s string) (Op, error) {
	if s == "" {
		return AllOps, nil
	}
	var ops Op
	for _, w := range strings.Split(s, ",") {
		i := indexOf(opNames, w)
		if i < 0 {
			return 0, fmt.Errorf("holder: unknown operation %q (want a comma list of store, fetch, list, delete): %w", w, syscall.EINVAL)
		}
		if ops&(1<<i) != 0 {
			return 0, fmt.Errorf("holder: operation %q given twice: %w", w, syscall.EINVAL)
		}
		ops |= 1 << i
	}
	return ops, nil
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// Rule grants operations to the peers with a given UID, or to those whose
// primary GID (as the kernel reports it for the connection, see
// fdsend.PeerCred) is a given one. Exactly one of UID and GID is at least 0;
// the other is -1. Supplementary groups are not considered: the kernel does
// not report them for a socket peer.
type Rule struct {
	UID int
	GID int
	Ops Op
}

// String formats the rule as ParseRule reads it: "uid=1000:store,fetch".
func (r Rule) String() string {
	if r.UID >= 0 {
		return fmt.Sprintf("uid=%d:%s", r.UID, r.Ops)
	}
	return fmt.Sprintf("gid=%d:%s", r.GID, r.Ops)
}

// matches reports whether the rule is about a peer with this uid and gid.
func (r Rule) matches(uid, gid int) bool {
	return (r.UID >= 0 && r.UID == uid) || (r.GID >= 0 && r.GID == gid)
}

// valid reports what is wrong with a rule built by hand.
func (r Rule) valid() error {
	if (r.UID >= 0) == (r.GID >= 0) {
		return fmt.Errorf("holder: rule %+v: exactly one of UID and GID must be set (the other -1): %w", r, syscall.EINVAL)
	}
	if r.Ops&^AllOps != 0 {
		return fmt.Errorf("holder: rule %+v: unknown operation bits %#x: %w", r, uint8(r.Ops&^AllOps), syscall.EINVAL)
	}
	return nil
}

// ParseRule parses "uid=U[:OPS]" or "gid=G[:OPS]", the form of the
// --allow option of `fdsend hold`. U and G are numbers or user and group
// names (looked up in the system's databases); OPS is a comma list for
// ParseOps, and without it the rule grants every operation. Errors wrap
// syscall.EINVAL, or the lookup's error for an unknown name.
func ParseRule(s string) (Rule, error) {
	who, opsText, _ := strings.Cut(s, ":")
	kind, id, ok := strings.Cut(who, "=")
	if !ok || (kind != "uid" && kind != "gid") || id == "" {
		return Rule{}, fmt.Errorf("holder: rule %q: want uid=USER[:OPS] or gid=GROUP[:OPS]: %w", s, syscall.EINVAL)
	}
	ops, err := ParseOps(opsText)
	if err != nil {
		return Rule{}, fmt.Errorf("holder: rule %q: %w", s, err)
	}
	n, err := lookupID(kind, id)
	if err != nil {
		return Rule{}, fmt.Errorf("holder: rule %q: %w", s, err)
	}
	r := Rule{UID: -1, GID: -1, Ops: ops}
	if kind == "uid" {
		r.UID = n
	} else {
		r.GID = n
	}
	return r, nil
}

// lookupID turns a numeric id or a user or group name into a number.
func lookupID(kind, id string) (int, error) {
	if id[0] >= '0' && id[0] <= '9' {
		n, err := strconv.ParseUint(id, 10, 31)
		if err != nil {
			return 0, fmt.Errorf("%s %q is not a valid id: %w", kind, id, syscall.EINVAL)
		}
		return int(n), nil
	}
	var text string
	if kind == "uid" {
		u, err := user.Lookup(id)
		if err != nil {
			return 0, err
		}
		text = u.Uid
	} else {
		g, err := user.LookupGroup(id)
		if err != nil {
			return 0, err
		}
		text = g.Gid
	}
	n, err := strconv.ParseUint(text, 10, 31)
	if err != nil {
		return 0, fmt.Errorf("%s %q has id %q, not a number: %w", kind, id, text, syscall.EINVAL)
	}
	return int(n), nil
}
