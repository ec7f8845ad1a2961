//go:build linux

package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/fdsend/fdsend/internal/fdtest"
	"github.com/spf13/pflag"
)

// TestMessages runs fdsend with bad input of every kind and compares what
// it writes on standard error, exactly, and its exit status: each message
// reads as a Unix tool's (docs/errors.md lists them).
func TestMessages(t *testing.T) {
	fdtest.NeedRoot(t, "runs fdsend as nobody against root's holder")
	fdtest.Check(t)
	bin := worldFdsend(t)
	nobody := cliOpts{bin: bin, cred: &syscall.Credential{Uid: fdtest.Nobody, Gid: fdtest.Nobody}}

	world := fdtest.WorldDir(t)
	private := t.TempDir() // 0700 root: nobody cannot enter it
	sock := filepath.Join(world, "h.sock")
	startHold(t, sock, "--allow", "uid=nobody:list")
	mustRun(t, "store", sock, "held", "--file", "/etc/hostname")
	full := filepath.Join(world, "full.sock")
	startHold(t, full, "--max", "1")
	mustRun(t, "store", full, "held", "--file", "/etc/hostname")
	mustRun(t, "store", sock, "more", "--file", "/etc/hostname")

	// A socket served by something that is not a holder: it hangs up at
	// once.
	notHolder := filepath.Join(world, "not-holder.sock")
	ln, err := net.Listen("unix", notHolder)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()

	file := filepath.Join(world, "plain-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(world, "missing")
	usage := func(cmd string) string { return "Run 'fdsend " + cmd + " --help' for usage.\n" }

	for _, tc := range []struct {
		name   string
		opts   cliOpts
		args   []string
		stderr string
		status int
	}{
		// Usage errors: status 2, the fault named as typed.
		{"top-level flag", cliOpts{}, []string{"--bogus"}, "fdsend: unknown flag --bogus: a COMMAND comes first\nRun 'fdsend help' for the list of commands.\n", 2},
		{"unknown command", cliOpts{}, []string{"nope"}, "fdsend: unknown command \"nope\"\nRun 'fdsend help' for the list of commands.\n", 2},
		{"missing flag argument", cliOpts{}, []string{"activate", "-l"}, "fdsend activate: flag needs an argument: -l\n" + usage("activate"), 2},
		{"bad number", cliOpts{}, []string{"activate", "--fdstore=x", "true"},
			"fdsend activate: invalid argument \"x\" for --fdstore: must be an integer\n" + usage("activate"), 2},
		{"bad restart policy", cliOpts{}, []string{"activate", "--restart=x", "true"},
			"fdsend activate: --restart: restart policy \"x\": want no, on-failure or always\n" + usage("activate"), 2},
		{"empty fdname", cliOpts{}, []string{"activate", "-l", "80", "--fdname=", "true"},
			"fdsend activate: --fdname: empty descriptor name: want 1 to 255 printable ASCII characters\n" + usage("activate"), 2},
		{"fdname count", cliOpts{}, []string{"activate", "-l", "80", "--fdname=a:b", "true"},
			"fdsend activate: --fdname gives 2 names for 1 -l socket: give one for all or one each\n" + usage("activate"), 2},
		{"bad listen address", cliOpts{}, []string{"activate", "-l", "nonsense", "true"},
			"fdsend activate: --listen: listen address \"nonsense\": want PORT, IPv4:PORT, [IPv6]:PORT, /path or @abstract\n" + usage("activate"), 2},
		{"one argument", cliOpts{}, []string{"store", sock},
			"fdsend store: want SOCKET NAME, got 1 argument\n" + usage("store"), 2},
		{"two arguments", cliOpts{}, []string{"hold", "a", "b"},
			"fdsend hold: want exactly one SOCKET, got 2 arguments\n" + usage("hold"), 2},
		{"bad rule", cliOpts{}, []string{"hold", sock, "--allow", "uid=1:steal"},
			"fdsend hold: --allow: rule \"uid=1:steal\": unknown operation \"steal\" (want a comma list of store, fetch, list, delete)\n" + usage("hold"), 2},
		{"unknown user", cliOpts{}, []string{"hold", sock, "--allow", "uid=fdsend-no-such-user"},
			"fdsend hold: --allow: rule \"uid=fdsend-no-such-user\": no such user\n" + usage("hold"), 2},
		{"bad name", cliOpts{}, []string{"store", sock, "a:b"},
			"fdsend store: descriptor name \"a:b\" contains ':', the LISTEN_FDNAMES separator\n" + usage("store"), 2},
		{"version argument", cliOpts{}, []string{"version", "x"},
			"fdsend version: want no arguments, got 1 argument\n" + usage("version"), 2},

		// COMMAND cannot be run: 127 or 126, as a shell says it.
		{"command not found", cliOpts{}, []string{"activate", "-l", "127.0.0.1:0", "fdsend-no-such-command"},
			"fdsend activate: fdsend-no-such-command: command not found\n", 127},
		{"command path missing", cliOpts{}, []string{"activate", "-l", "127.0.0.1:0", missing},
			"fdsend activate: " + missing + ": no such file or directory\n", 127},
		{"command is a directory", cliOpts{}, []string{"activate", "-l", "127.0.0.1:0", world},
			"fdsend activate: " + world + ": is a directory\n", 126},
		{"command not executable", cliOpts{}, []string{"activate", "-l", "127.0.0.1:0", file},
			"fdsend activate: " + file + ": permission denied\n", 126},
		{"fetch command not found", cliOpts{}, []string{"fetch", sock, "held", "--", "fdsend-no-such-command"},
			"fdsend fetch: fdsend-no-such-command: command not found\n", 127},

		// Sockets that cannot be made.
		{"listen permission denied", nobody, []string{"activate", "-l", filepath.Join(private, "x.sock"), "true"},
			"fdsend activate: cannot listen on " + filepath.Join(private, "x.sock") + ": permission denied\n", 1},
		{"hold on a file", cliOpts{}, []string{"hold", file},
			"fdsend hold: cannot listen on " + file + ": a file that is not a socket is there (left alone)\n", 1},
		{"hold on a holder", cliOpts{}, []string{"hold", sock},
			"fdsend hold: cannot listen on " + sock + ": a process is serving on it\n", 1},
		{"hold under a file", cliOpts{}, []string{"hold", filepath.Join(file, "h.sock")},
			"fdsend hold: cannot listen on " + filepath.Join(file, "h.sock") + ": not a directory\n", 1},

		// What to store cannot be had.
		{"fd not open", cliOpts{}, []string{"store", sock, "n", "--fd", "9"}, "fdsend store: --fd 9: bad file descriptor\n", 1},
		{"file missing", cliOpts{}, []string{"store", sock, "n", "--file", missing},
			"fdsend store: --file " + missing + ": no such file or directory\n", 1},

		// Holders that cannot be reached, or are not holders.
		{"no such socket", cliOpts{}, []string{"ls", missing},
			"fdsend ls: cannot reach a holder at " + missing + ": no such file or directory\n", 1},
		{"not a socket", cliOpts{}, []string{"ls", file},
			"fdsend ls: cannot reach a holder at " + file + ": not a socket\n", 1},
		{"not a holder", cliOpts{}, []string{"ls", notHolder},
			"fdsend ls: " + notHolder + ": the connection was closed without an answer (is it a holder?)\n", 1},
		{"socket of another user", nobody, []string{"ls", full},
			"fdsend ls: cannot reach a holder at " + full + ": permission denied\n", 1},

		// Requests the holder refuses.
		{"already held", cliOpts{}, []string{"store", sock, "held", "--file", "/etc/hostname"},
			"fdsend store: \"held\" is already held (give --replace to replace it)\n", 1},
		{"not held", cliOpts{}, []string{"rm", sock, "gone"}, "fdsend rm: \"gone\" is not held\n", 1},
		{"fetch not held", cliOpts{}, []string{"fetch", sock, "gone", "--", "true"}, "fdsend fetch: \"gone\" is not held\n", 1},
		{"right missing", nobody, []string{"rm", sock, "held"},
			"fdsend rm: permission denied: uid 65534 gid 65534 may not delete (the holder's rules do not allow it)\n", 1},
		{"transfer into a full holder", cliOpts{}, []string{"transfer", sock, full},
			"fdsend transfer: \"more\": the holder holds 1 entries, its limit\n", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := fdsendRunWith(t, tc.opts, tc.args...)
			if r.stderr != tc.stderr || r.status != tc.status {
				t.Errorf("fdsend %s:\n got status %d, stderr %q\nwant status %d, stderr %q", strings.Join(tc.args, " "), r.status, r.stderr, tc.status, tc.stderr)
			}
		})
	}
}

// TestVersion: fdsend --version and fdsend version print "fdsend VERSION",
// the version fdsend activate --version prints under its own name.
func TestVersion(t *testing.T) {
	act := mustRun(t, "activate", "--version")
	v, ok := strings.CutPrefix(act, "fdsend activate ")
	if !ok || !strings.HasSuffix(act, "\n") || len(v) < 2 {
		t.Fatalf("activate --version: %q", act)
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		if got := mustRun(t, args...); got != "fdsend "+v {
			t.Errorf("fdsend %s: %q, want %q", strings.Join(args, " "), got, "fdsend "+v)
		}
	}
}

// TestHelpFromFlags: every command's help lists each of its options, as
// the flag set defines them, and states its exit statuses.
func TestHelpFromFlags(t *testing.T) {
	for name, c := range commands {
		help := c.help()
		if !strings.HasPrefix(help, "Usage: fdsend "+name) || !strings.Contains(help, "Exit status:") {
			t.Errorf("%s: help without usage line or exit status:\n%s", name, help)
		}
		fs, _, _ := c.flagSet()
		fs.VisitAll(func(f *pflag.Flag) {
			if !f.Hidden && !strings.Contains(help, "--"+f.Name) {
				t.Errorf("%s: help does not list --%s", name, f.Name)
			}
		})
		for _, line := range strings.Split(help, "\n")[1:] { // the usage line as written
			if len(line) > helpWidth {
				t.Errorf("%s: help line longer than %d: %q", name, helpWidth, line)
			}
		}
	}
}
