package main

import (
	"errors"
	"io"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/fdsend/fdsend/internal/launch"
	"github.com/spf13/pflag"
)

func TestParseActivateGNUStyle(t *testing.T) {
	t.Setenv("FDSEND_TEST_PASS", "passed value")
	os.Unsetenv("FDSEND_TEST_UNSET")
	for _, tc := range []struct {
		args    []string
		addrs   []string
		names   []string
		setenv  []string
		argv    []string
		typ     int
		accept  bool
		inetd   bool
		restart launch.Restart
		fdstore int
	}{
		{args: []string{"-l", "8080", "srv"}, addrs: []string{"8080"}, names: []string{"unknown"}, argv: []string{"srv"}},
		{args: []string{"-l8080", "--listen=127.0.0.1:1", "--listen", "/run/x", "srv", "a"},
			addrs: []string{"8080", "127.0.0.1:1", "/run/x"}, names: []string{"unknown", "unknown", "unknown"}, argv: []string{"srv", "a"}},
		// Options stop at COMMAND: its own options are its arguments.
		{args: []string{"-l", "80", "srv", "-l", "90", "--restart=always"}, addrs: []string{"80"}, names: []string{"unknown"}, argv: []string{"srv", "-l", "90", "--restart=always"}},
		{args: []string{"-l", "80", "--", "-srv", "--x"}, addrs: []string{"80"}, names: []string{"unknown"}, argv: []string{"-srv", "--x"}},
		{args: []string{"-l", "80", "-l", "[::1]:81", "--fdname", "web", "srv"}, addrs: []string{"80", "[::1]:81"}, names: []string{"web", "web"}, argv: []string{"srv"}},
		{args: []string{"-l", "80", "-l", "81", "--fdname=a:b", "srv"}, addrs: []string{"80", "81"}, names: []string{"a", "b"}, argv: []string{"srv"}},
		{args: []string{"-l", "80", "-l", "81", "--fdname=a", "--fdname=b", "srv"}, addrs: []string{"80", "81"}, names: []string{"a", "b"}, argv: []string{"srv"}},
		{args: []string{"-d", "-l", "@x", "srv"}, addrs: []string{"@x"}, names: []string{"unknown"}, argv: []string{"srv"}, typ: syscall.SOCK_DGRAM},
		{args: []string{"--seqpacket", "-a", "--inetd", "-l", "/x", "srv"}, addrs: []string{"/x"}, names: []string{"unknown"}, argv: []string{"srv"}, typ: syscall.SOCK_SEQPACKET, accept: true, inetd: true},
		{args: []string{"-E", "A=1", "--setenv=B=x=y", "-E", "FDSEND_TEST_PASS", "--environment", "FDSEND_TEST_UNSET", "-EC=", "srv"},
			setenv: []string{"A=1", "B=x=y", "FDSEND_TEST_PASS=passed value", "FDSEND_TEST_UNSET=", "C="}, argv: []string{"srv"}},
		{args: []string{"--restart=on-failure", "--fdstore=8", "srv"}, argv: []string{"srv"}, restart: launch.RestartOnFailure, fdstore: 8},
		{args: []string{"--restart", "always", "--fdstore", "0", "srv"}, argv: []string{"srv"}, restart: launch.RestartAlways, fdstore: 0},
	} {
		cfg, help, err := parseActivate(tc.args, nil)
		if err != nil || help {
			t.Errorf("%q: %v (help %v)", tc.args, err, help)
			continue
		}
		var addrs []string
		for _, a := range cfg.addrs {
			addrs = append(addrs, a.String())
		}
		if tc.typ == 0 {
			tc.typ = syscall.SOCK_STREAM
		}
		if tc.fdstore == 0 && !strings.Contains(strings.Join(tc.args, " "), "fdstore") {
			tc.fdstore = -1
		}
		if !reflect.DeepEqual(addrs, tc.addrs) || !reflect.DeepEqual(cfg.names, nonNil(tc.names)) ||
			!reflect.DeepEqual(cfg.setenv, tc.setenv) || !reflect.DeepEqual(cfg.argv, tc.argv) ||
			cfg.sockType != tc.typ || cfg.accept != tc.accept || cfg.inetd != tc.inetd ||
			cfg.restart != tc.restart || cfg.fdstore != tc.fdstore {
			t.Errorf("%q: got addrs %q names %q setenv %q argv %q type %d accept %v inetd %v restart %v fdstore %d",
				tc.args, addrs, cfg.names, cfg.setenv, cfg.argv, cfg.sockType, cfg.accept, cfg.inetd, cfg.restart, cfg.fdstore)
		}
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func TestParseActivateErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in the message
	}{
		{nil, "COMMAND is missing"},
		{[]string{"-l", "80"}, "COMMAND is missing"},
		{[]string{"-l", "80", "--"}, "COMMAND is missing"},
		{[]string{"--", ""}, "COMMAND is empty"},
		{[]string{"--bogus", "srv"}, "unknown flag: --bogus"},
		{[]string{"-x", "srv"}, "unknown shorthand flag: 'x'"},
		{[]string{"-l"}, "flag needs an argument"},
		{[]string{"-l", "localhost:80", "srv"}, "host names are not resolved"},
		{[]string{"-l", "99999", "srv"}, `listen address "99999"`},
		{[]string{"-l", "::1:80", "srv"}, "needs brackets"},
		{[]string{"-d", "--seqpacket", "-l", "80", "srv"}, "exclude each other"},
		{[]string{"-d", "-a", "-l", "80", "srv"}, "--accept needs connections"},
		{[]string{"--restart=sometimes", "srv"}, "want no, on-failure or always"},
		{[]string{"--restart=always", "-a", "-l", "80", "srv"}, "does not apply to --accept"},
		{[]string{"--fdstore=-2", "srv"}, "--fdstore=-2"},
		{[]string{"--fdstore=x", "srv"}, "invalid argument"},
		{[]string{"--fdstore=4", "-a", "-l", "80", "srv"}, "does not combine"},
		{[]string{"--fdstore=4", "--inetd", "-l", "80", "srv"}, "does not combine"},
		{[]string{"--fdname=web", "srv"}, "there is none"},
		{[]string{"-l", "80", "--fdname=a:b", "srv"}, "2 names for 1 -l socket: "}, // was "1 -l sockets" (plural fixed)
		{[]string{"-l", "80", "--fdname=", "srv"}, "empty descriptor name"},
		{[]string{"-l", "80", "-l", "81", "--fdname=a::b", "srv"}, "empty descriptor name"},
		{[]string{"-l", "80", "--fdname=tab\there", "srv"}, "control character"},
		{[]string{"-l", "80", "--fdname=" + strings.Repeat("n", 256), "srv"}, "at most 255"},
		{[]string{"-E", "1A=b", "srv"}, "not a valid variable name"},
		{[]string{"-E", "=b", "srv"}, "not a valid variable name"},
		{[]string{"-E", "A-B=c", "srv"}, "not a valid variable name"},
		{[]string{"-E", "LISTEN_FDS=3", "srv"}, "set by fdsend activate"},
		{[]string{"-E", "LISTEN_FDNAMES", "srv"}, "set by fdsend activate"},
		{[]string{"--nonblocking", "--inetd", "-l", "80", "srv"}, "--nonblocking does not apply to --inetd"},
		{[]string{"--user", "fdsend-no-such-user", "srv"}, `--user: user "fdsend-no-such-user": no such user`},
		{[]string{"--user=nobody:fdsend-no-such-group", "srv"}, `--user: group "fdsend-no-such-group": no such group`},
		{[]string{"--user=54321", "srv"}, "give its group too"},
		{[]string{"--user=", "srv"}, "--user: no user name"},
		{[]string{"--user=4294967295:1", "srv"}, "out of range"},
	} {
		cfg, help, err := parseActivate(tc.args, nil)
		var ue *usageError
		if err == nil || help || !errors.As(err, &ue) {
			t.Errorf("%q: cfg %+v help %v err %v; want a usage error", tc.args, cfg, help, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %q does not say %q", tc.args, err, tc.want)
		}
	}
}

func TestParseActivateDuties(t *testing.T) {
	cfg, _, err := parseActivate([]string{"--nonblocking", "--user", "nobody", "-l", "80", "srv"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.nonblocking || cfg.user == nil || cfg.user.UID != 65534 || cfg.user.GID != 65534 {
		t.Errorf("nonblocking %v user %+v", cfg.nonblocking, cfg.user)
	}
	cfg, _, err = parseActivate([]string{"--user=54321:100", "-a", "--nonblocking", "-l", "80", "srv"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.user == nil || cfg.user.UID != 54321 || cfg.user.GID != 100 || len(cfg.user.Groups) != 1 {
		t.Errorf("user %+v", cfg.user)
	}
	cfg, _, err = parseActivate([]string{"-l", "80", "srv"}, nil)
	if err != nil || cfg.nonblocking || cfg.user != nil {
		t.Errorf("defaults: nonblocking %v user %+v %v", cfg.nonblocking, cfg.user, err)
	}
}

// TestActivateUsageListsEveryFlag keeps the help in step with the flag set.
func TestActivateUsageListsEveryFlag(t *testing.T) {
	activateUsage := activateCmd.help()
	fs, _, _ := activateCmd.flagSet()
	fs.VisitAll(func(fl *pflag.Flag) {
		if fl.Hidden {
			return
		}
		long := "--" + fl.Name
		if !strings.Contains(activateUsage, long) {
			t.Errorf("help does not list %s", long)
		}
		if fl.Shorthand != "" && !strings.Contains(activateUsage, "-"+fl.Shorthand+", "+long) {
			t.Errorf("help does not list -%s with %s", fl.Shorthand, long)
		}
	})
	var b strings.Builder
	if _, help, err := parseActivate([]string{"-h"}, &b); !help || err != nil {
		t.Fatalf("-h: help %v err %v", help, err)
	}
	if !strings.HasPrefix(b.String(), "Usage: fdsend activate") {
		t.Errorf("-h wrote %q", b.String())
	}
}

// parseActivate parses args as fdsend activate does, through its Command,
// and returns the checked configuration instead of running it; help is
// true when -h/--help or --version was answered on stdout.
func parseActivate(args []string, stdout io.Writer) (cfg *activateConfig, help bool, err error) {
	c := *activateCmd
	c.Flags = func(_ *Command, fs *pflag.FlagSet) func([]string) (int, error) {
		var f activateFlags
		f.define(fs)
		return func(argv []string) (int, error) {
			if f.version {
				io.WriteString(stdout, versionLine())
				help = true
				return 0, nil
			}
			cfg, err = f.config(fs, argv)
			return 0, err
		}
	}
	fs, run, done, err := c.parse(args, stdout)
	if done || err != nil {
		return nil, done, err
	}
	_, err = run(fs.Args())
	return cfg, help, err
}
