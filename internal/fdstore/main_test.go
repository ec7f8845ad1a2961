//go:build linux

package fdstore_test

import (
	"os"
	"testing"

	"github.com/fdsend/fdsend/internal/fdtest"
)

// childEnv selects a child role when the test binary is re-executed.
const childEnv = "FDSTORE_TEST_CHILD"

// children maps a role to what the re-executed binary runs.
var children = map[string]func() error{}

func TestMain(m *testing.M) {
	fdtest.RunChild(childEnv, children)
	os.Exit(m.Run())
}
