//go:build linux

package fdsend_test

import (
	"os"
	"testing"

	"github.com/fdsend/fdsend/internal/fdtest"
)

// childEnv selects a child role when the test binary is re-executed by a test.
const childEnv = "FDSEND_TEST_CHILD"

// children maps a role to the function the re-executed binary runs. Each
// writes its findings to stdout and exits non-zero on failure.
var children = map[string]func() error{}

func TestMain(m *testing.M) {
	fdtest.RunChild(childEnv, children)
	os.Exit(m.Run())
}
