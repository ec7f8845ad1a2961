package launch

import (
	"errors"
	"os/user"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

// TestLookupUser resolves names and numbers as the system's databases have
// them (nobody 65534 with group nogroup 65534, root 0, users 100, as on
// Debian and Ubuntu).
func TestLookupUser(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want User
	}{
		{"nobody", User{Name: "nobody", UID: 65534, GID: 65534, Groups: []uint32{65534}}},
		{"65534", User{Name: "65534", UID: 65534, GID: 65534, Groups: []uint32{65534}}},
		{"nobody:nogroup", User{Name: "nobody", UID: 65534, GID: 65534, Groups: []uint32{65534}}},
		{"nobody:100", User{Name: "nobody", UID: 65534, GID: 100, Groups: []uint32{100}}},
		{"nobody:users", User{Name: "nobody", UID: 65534, GID: 100, Groups: []uint32{100}}},
		{"root", User{Name: "root", UID: 0, GID: 0, Groups: []uint32{0}}},
		{"0", User{Name: "0", UID: 0, GID: 0, Groups: []uint32{0}}},
		// A number the user database does not know, with a group: taken as
		// it is, with that group only; the group need not exist either.
		{"54321:54322", User{Name: "54321", UID: 54321, GID: 54322, Groups: []uint32{54322}}},
		{"54321:users", User{Name: "54321", UID: 54321, GID: 100, Groups: []uint32{100}}},
	} {
		got, err := LookupUser(tc.spec)
		if err != nil || !reflect.DeepEqual(*got, tc.want) {
			t.Errorf("LookupUser(%q) = %+v, %v; want %+v", tc.spec, got, err, tc.want)
		}
	}
}

func TestLookupUserRefuses(t *testing.T) {
	for _, tc := range []struct {
		spec string
		says string
		is   func(error) bool
	}{
		{"fdsend-no-such-user", `user "fdsend-no-such-user"`, isType[user.UnknownUserError]},
		{"nobody:fdsend-no-such-group", `group "fdsend-no-such-group"`, isType[user.UnknownGroupError]},
		{"fdsend-no-such-user:nogroup", `user "fdsend-no-such-user"`, isType[user.UnknownUserError]},
		{"54321", "user ID 54321 is not in the user database: give its group too", isType[user.UnknownUserIdError]},
		{"", "no user name", isErrno(syscall.EINVAL)},
		{":nogroup", "no user name", isErrno(syscall.EINVAL)},
		{"nobody:", "empty group", isErrno(syscall.EINVAL)},
		{"4294967295", "user ID 4294967295 is out of range", isErrno(syscall.EINVAL)},
		{"99999999999", "user ID 99999999999 is out of range", isErrno(syscall.EINVAL)},
		{"nobody:4294967295", "group ID 4294967295 is out of range", isErrno(syscall.EINVAL)},
	} {
		u, err := LookupUser(tc.spec)
		if err == nil {
			t.Errorf("LookupUser(%q) = %+v, want an error", tc.spec, u)
			continue
		}
		if !strings.Contains(err.Error(), tc.says) || !tc.is(err) {
			t.Errorf("LookupUser(%q): %v (%T); want it to say %q and wrap the cause", tc.spec, err, errors.Unwrap(err), tc.says)
		}
	}
}

func isType[E error](err error) bool {
	var e E
	return errors.As(err, &e)
}

func isErrno(errno syscall.Errno) func(error) bool {
	return func(err error) bool { return errors.Is(err, errno) }
}
