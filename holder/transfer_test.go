//go:build linux

package holder

import (
	"errors"
	"io"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/fdsend/fdsend/internal/fdtest"
)

// TestTransfer copies a holder into another that already holds one of the
// names, then closes the first: what was copied lives on in the second,
// with the expiry it had left.
func TestTransfer(t *testing.T) {
	fdtest.Check(t)
	old, oldPath := startServer(t, Config{}, "")
	_, newPath := startServer(t, Config{}, "")
	from := dial(t, oldPath)
	to := dial(t, newPath)

	readers := map[string]*os.File{}
	for _, e := range []struct {
		name string
		ttl  time.Duration
	}{{"a", 0}, {"b", time.Hour}, {"clash", 0}, {"soon", 700 * time.Millisecond}} {
		r, w := pipe(t)
		if err := from.Store(e.name, w, e.ttl, false); err != nil {
			t.Fatal(err)
		}
		w.Close()
		readers[e.name] = r
	}
	rOther, wOther := pipe(t)
	if err := to.Store("clash", wOther, 0, false); err != nil {
		t.Fatal(err)
	}
	wOther.Close()

	rep, err := Transfer(from, to)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Copied, []string{"a", "b", "soon"}) || !slices.Equal(rep.Skipped, []string{"clash"}) || len(rep.Gone) != 0 {
		t.Fatalf("report %+v", rep)
	}
	entries, err := to.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 4 {
		t.Fatalf("target holds %+v", entries)
	}
	for _, e := range entries {
		switch e.Name {
		case "a", "clash":
			if e.ExpiresIn != 0 {
				t.Errorf("%s: expires in %v, want never", e.Name, e.ExpiresIn)
			}
		case "b":
			if e.ExpiresIn < 59*time.Minute || e.ExpiresIn > time.Hour {
				t.Errorf("b: expires in %v, want just under an hour", e.ExpiresIn)
			}
		case "soon":
			if e.ExpiresIn <= 0 || e.ExpiresIn > 700*time.Millisecond {
				t.Errorf("soon: expires in %v, want what it had left", e.ExpiresIn)
			}
		}
	}
	// The source still holds everything; stop it: the copies keep the
	// descriptors open.
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b"} {
		if writerClosed(t, readers[n], 50*time.Millisecond) {
			t.Errorf("%s closed with the old holder", n)
		}
	}
	// "clash" was held only by the old holder: closed with it; the
	// target's own "clash" is untouched.
	if !writerClosed(t, readers["clash"], 2*time.Second) {
		t.Error("the old holder's clash is still open")
	}
	if writerClosed(t, rOther, 50*time.Millisecond) {
		t.Error("the target's own clash was closed")
	}
	// The copy of "soon" expires on the source's schedule.
	if !writerClosed(t, readers["soon"], 3*time.Second) {
		t.Error("copied entry did not expire")
	}
	// What comes out of the target is the same pipe.
	files, err := to.Fetch([]string{"a"}, true)
	if err != nil {
		t.Fatal(err)
	}
	files[0].WriteString("through")
	files[0].Close()
	if got, err := io.ReadAll(readers["a"]); string(got) != "through" || err != nil {
		t.Errorf("read %q, %v", got, err)
	}
}

// TestTransferFailures: names the target refuses are reported and the rest
// copied.
func TestTransferFailures(t *testing.T) {
	fdtest.Check(t)
	_, oldPath := startServer(t, Config{}, "")
	_, newPath := startServer(t, Config{Max: 1}, "")
	from := dial(t, oldPath)
	to := dial(t, newPath)
	for _, n := range []string{"x", "y"} {
		_, w := pipe(t)
		if err := from.Store(n, w, 0, false); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := Transfer(from, to)
	if !errors.Is(err, ErrFull) {
		t.Errorf("transfer into a holder with room for one: %v, want ErrFull", err)
	}
	if !slices.Equal(rep.Copied, []string{"x"}) {
		t.Errorf("report %+v", rep)
	}
}
