package spawn

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestOnlyLaunchersLinkSpawn checks the package graph, for every kind of
// system: the receiving side (activation), notify, and holder and handoff
// (which need only the name rule) must not depend on this package, so that
// no program built on them links the trampoline's init. The command, a
// launcher, must: that shows the check sees a dependency where there is one.
func TestOnlyLaunchersLinkSpawn(t *testing.T) {
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the package graph: %v", err)
	}
	const mod = "github.com/fdsend/fdsend"
	const self = mod + "/activation/spawn"
	mustNot := []string{mod, mod + "/activation", mod + "/notify", mod + "/holder", mod + "/handoff"}
	must := []string{mod + "/cmd/fdsend"}
	for _, goos := range []string{"linux", "darwin", "freebsd", "openbsd", "netbsd", "windows"} {
		t.Run(goos, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, gocmd, append([]string{"list", "-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}"}, append(mustNot, must...)...)...)
			cmd.Env = append(os.Environ(), "GOOS="+goos, "CGO_ENABLED=0")
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list: %v\n%s", err, stderr.String())
			}
			deps := map[string][]string{}
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				f := strings.Fields(line)
				deps[f[0]] = f[1:]
			}
			for _, p := range mustNot {
				d, ok := deps[p]
				if !ok {
					t.Errorf("go list said nothing of %s", p)
				} else if slices.Contains(d, self) {
					t.Errorf("%s depends on %s: its programs link the trampoline's init", p, self)
				}
			}
			for _, p := range must {
				if !slices.Contains(deps[p], self) {
					t.Errorf("%s does not depend on %s: the check does not see dependencies", p, self)
				}
			}
		})
	}
}
