package activation

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/fdsend/fdsend/internal/fdname"
)

func lookupMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func noPidfd() (uint64, bool) { return 0, false }

func TestParseVars(t *testing.T) {
	const pid = 4242
	pidfd := func() (uint64, bool) { return 777, true }
	cases := []struct {
		env     map[string]string
		pidfd   func() (uint64, bool)
		n       int
		names   []string
		errVar  string
		errText string
	}{
		{env: map[string]string{}},
		{env: map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "a:b"}, n: 2, names: []string{"a", "b"}},
		{env: map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "1"}, n: 1, names: []string{"unknown"}},
		{env: map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "1", "LISTEN_FDNAMES": ""}, n: 1, names: []string{""}},
		{env: map[string]string{"LISTEN_PID": "4243", "LISTEN_FDS": "x"}},
		{env: map[string]string{"LISTEN_PID": "4242", "LISTEN_PIDFDID": "777", "LISTEN_FDS": "1"}, pidfd: pidfd, n: 1, names: []string{"unknown"}},
		{env: map[string]string{"LISTEN_PID": "4242", "LISTEN_PIDFDID": "778", "LISTEN_FDS": "1"}, pidfd: pidfd},
		// Without pidfs the value is checked for form only.
		{env: map[string]string{"LISTEN_PID": "4242", "LISTEN_PIDFDID": "778", "LISTEN_FDS": "1"}, n: 1, names: []string{"unknown"}},
		{env: map[string]string{"LISTEN_PID": "4242", "LISTEN_PIDFDID": "", "LISTEN_FDS": "1"}, errVar: "LISTEN_PIDFDID", errText: "empty"},
		{env: map[string]string{"LISTEN_PID": "+4242"}, errVar: "LISTEN_PID", errText: "byte 0"},
		// The largest count, unnamed: nothing of that size is allocated.
		{env: map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "2147483644"}, n: 2147483644},
		{env: map[string]string{"LISTEN_PID": "2147483648"}, errVar: "LISTEN_PID", errText: "out of range"},
		{env: map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "2147483645"}, errVar: "LISTEN_FDS", errText: "out of range"},
		{env: map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "2147483644", "LISTEN_FDNAMES": "a"}, errVar: "LISTEN_FDNAMES", errText: "1 names for LISTEN_FDS=2147483644"},
		{env: map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "3", "LISTEN_FDNAMES": "a::\x1b"}, errVar: "LISTEN_FDNAMES", errText: `name 2 (descriptor 5) "\x1b" contains control character 0x1b at byte 0`},
	}
	for i, c := range cases {
		pf := c.pidfd
		if pf == nil {
			pf = noPidfd
		}
		v, err := parseVars(lookupMap(c.env), pid, pf)
		if c.errVar != "" {
			var ee *EnvError
			if !errors.As(err, &ee) || ee.Var != c.errVar || !strings.Contains(err.Error(), c.errText) || !errors.Is(err, syscall.EINVAL) {
				t.Errorf("case %d %v: error %v, want an EnvError for %s containing %q", i, c.env, err, c.errVar, c.errText)
			}
			continue
		}
		if err != nil {
			t.Errorf("case %d %v: %v", i, c.env, err)
			continue
		}
		if v.n > 100 {
			if v.n != c.n || v.names != nil || v.name(v.n-1) != UnknownName {
				t.Errorf("case %d: n=%d, %d names made for unnamed descriptors", i, v.n, len(v.names))
			}
			continue
		}
		var names []string
		for j := range v.n {
			names = append(names, v.name(j))
		}
		if v.n != c.n || fmt.Sprint(names) != fmt.Sprint(c.names) {
			t.Errorf("case %d %v: got %d %q, want %d %q", i, c.env, v.n, names, c.n, c.names)
		}
	}
}

// FuzzParseVars feeds arbitrary values: no panic, and any result is
// consistent (as many names as descriptors, every name acceptable).
func FuzzParseVars(f *testing.F) {
	f.Add("42", "2", "a:b", "", false)
	f.Add("42", "0", "", "7", true)
	f.Add("42", "3", "::", "x", true)
	f.Add("042", "99999999999999999999", "\x00", "", false)
	f.Fuzz(func(t *testing.T, pid, fds, names, pidfdid string, withNames bool) {
		env := map[string]string{"LISTEN_PID": pid, "LISTEN_FDS": fds, "LISTEN_PIDFDID": pidfdid}
		if withNames {
			env["LISTEN_FDNAMES"] = names
		}
		v, err := parseVars(lookupMap(env), 42, func() (uint64, bool) { return 7, true })
		if err != nil {
			var ee *EnvError
			if !errors.As(err, &ee) || !strings.HasPrefix(err.Error(), "activation: LISTEN_") {
				t.Fatalf("error %v is not an EnvError naming the variable", err)
			}
			return
		}
		if v.names != nil && len(v.names) != v.n {
			t.Fatalf("%d names for %d descriptors", len(v.names), v.n)
		}
		for _, n := range v.names {
			if fdname.CheckReceived(n) != nil {
				t.Fatalf("accepted bad name %q", n)
			}
		}
	})
}

func TestValidateName(t *testing.T) {
	good := []string{"a", "web", "http-8080", "with space", "~!@#$%^&*()", strings.Repeat("x", 255), UnknownName}
	for _, n := range good {
		if err := ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q): %v", n, err)
		}
	}
	bad := map[string]string{
		"":                       "empty descriptor name",
		"a:b":                    "contains ':'",
		"a\nb":                   "control character 0x0a at byte 1",
		"\x7f":                   "control character 0x7f",
		"tab\t":                  "control character 0x09",
		"é":                      "non-ASCII byte 0xc3",
		strings.Repeat("x", 256): "256 bytes long, at most 255",
	}
	for n, want := range bad {
		err := ValidateName(n)
		if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, syscall.EINVAL) {
			t.Errorf("ValidateName(%q) = %v, want an EINVAL error containing %q", n, err, want)
		}
	}
}
