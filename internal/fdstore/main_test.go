//go:build linux

package fdstore_test

import (
	"fmt"
	"os"
	"testing"
)

// childEnv selects a child role when the test binary is re-executed.
const childEnv = "FDSTORE_TEST_CHILD"

// children maps a role to what the re-executed binary runs.
var children = map[string]func() error{}

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		run, ok := children[role]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown child role %q\n", role)
			os.Exit(3)
		}
		if err := run(); err != nil {
			fmt.Fprintf(os.Stderr, "child %s: %v\n", role, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
