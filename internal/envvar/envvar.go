// Package envvar edits environments in the NAME=VALUE form of os.Environ
// and exec.Cmd.Env. No function changes the array of the slice it is
// given.
package envvar

import "strings"

// Name is the name of the entry kv.
func Name(kv string) string {
	name, _, _ := strings.Cut(kv, "=")
	return name
}

// Set returns env with kv in it: entries of kv's name removed, kv added
// last.
func Set(env []string, kv string) []string {
	return append(Without(env, func(name string) bool { return name == Name(kv) }), kv)
}

// Without returns env without the entries whose name drop reports.
func Without(env []string, drop func(name string) bool) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !drop(Name(kv)) {
			out = append(out, kv)
		}
	}
	return out
}
