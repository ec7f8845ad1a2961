package envvar

import (
	"slices"
	"testing"
)

func TestSetWithout(t *testing.T) {
	env := []string{"A=1", "B=2", "A=3", "C"}
	orig := slices.Clone(env)
	if got, want := Set(env, "A=9"), []string{"B=2", "C", "A=9"}; !slices.Equal(got, want) {
		t.Errorf("Set: %q, want %q", got, want)
	}
	if got, want := Set(env, "D="), []string{"A=1", "B=2", "A=3", "C", "D="}; !slices.Equal(got, want) {
		t.Errorf("Set of a new name: %q, want %q", got, want)
	}
	if got, want := Without(env, func(n string) bool { return n == "B" || n == "C" }), []string{"A=1", "A=3"}; !slices.Equal(got, want) {
		t.Errorf("Without: %q, want %q", got, want)
	}
	if !slices.Equal(env, orig) {
		t.Errorf("env changed to %q", env)
	}
}
