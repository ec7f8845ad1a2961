//go:build linux

package watch

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fdsend/fdsend/internal/fdtest"
)

// wait bounds every wait for an event; generous, for a loaded machine.
const wait = 20 * time.Second

// checkFDs is fdtest.Check after the runtime's poller (an epoll
// descriptor, made on first use and kept) exists.
func checkFDs(t *testing.T) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	w.Close()
	fdtest.Check(t)
}

func start(t *testing.T, opts Options) *Watcher {
	t.Helper()
	if opts.Debounce == 0 {
		opts.Debounce = 20 * time.Millisecond
	}
	w, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// next returns the next Event, failing the test if none comes in time.
func next(t *testing.T, w *Watcher) Event {
	t.Helper()
	select {
	case ev, ok := <-w.Events():
		if !ok {
			t.Fatalf("Events closed: %v", w.Err())
		}
		return ev
	case <-time.After(wait):
		t.Fatalf("no event within %v", wait)
	}
	return Event{}
}

// await reads Events until one names every path in want, and returns all
// the paths seen up to then.
func await(t *testing.T, w *Watcher, want ...string) []string {
	t.Helper()
	var seen []string
	deadline := time.After(wait)
	for {
		missing := 0
		for _, p := range want {
			if !slices.Contains(seen, p) {
				missing++
			}
		}
		if missing == 0 {
			return seen
		}
		select {
		case ev, ok := <-w.Events():
			if !ok {
				t.Fatalf("Events closed: %v", w.Err())
			}
			for _, e := range ev.Errs {
				t.Errorf("event error: %v", e)
			}
			seen = append(seen, ev.Paths...)
		case <-deadline:
			t.Fatalf("waited %v for %q; saw %q", wait, want, seen)
		}
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestNestedChanges(t *testing.T) {
	checkFDs(t)
	dir := t.TempDir()
	mkdir(t, filepath.Join(dir, "a", "b"))
	write(t, filepath.Join(dir, "a", "b", "f"), "1")
	w := start(t, Options{Paths: []string{dir}})
	j := func(p ...string) string { return filepath.Join(append([]string{dir}, p...)...) }

	write(t, j("a", "b", "f"), "2")
	await(t, w, j("a", "b", "f"))

	write(t, j("a", "b", "g"), "new")
	await(t, w, j("a", "b", "g"))

	if err := os.Rename(j("a", "b", "g"), j("a", "h")); err != nil {
		t.Fatal(err)
	}
	await(t, w, j("a", "b", "g"), j("a", "h"))

	if err := os.Remove(j("a", "h")); err != nil {
		t.Fatal(err)
	}
	await(t, w, j("a", "h"))

	if err := os.Chmod(j("a", "b", "f"), 0o600); err != nil {
		t.Fatal(err)
	}
	await(t, w, j("a", "b", "f"))
}

func TestNewDirectories(t *testing.T) {
	checkFDs(t)
	dir := t.TempDir()
	w := start(t, Options{Paths: []string{dir}})
	j := func(p ...string) string { return filepath.Join(append([]string{dir}, p...)...) }

	// A new directory, then a file in it.
	mkdir(t, j("n"))
	await(t, w, j("n"))
	write(t, j("n", "f"), "x")
	await(t, w, j("n", "f"))

	// A tree made and filled at once, perhaps before its watches exist:
	// the scan of the new directory finds what is in it, and the watches
	// it adds see what comes later.
	mkdir(t, j("x", "y", "z"))
	write(t, j("x", "y", "z", "f"), "x")
	await(t, w, j("x", "y", "z", "f"))
	write(t, j("x", "y", "z", "g"), "x")
	await(t, w, j("x", "y", "z", "g"))

	// A tree made outside and moved in.
	out := t.TempDir()
	mkdir(t, filepath.Join(out, "m", "deep"))
	write(t, filepath.Join(out, "m", "deep", "f"), "x")
	if err := os.Rename(filepath.Join(out, "m"), j("m")); err != nil {
		t.Fatal(err)
	}
	await(t, w, j("m"), j("m", "deep", "f"))
	write(t, j("m", "deep", "g"), "x")
	await(t, w, j("m", "deep", "g"))

	// A directory renamed inside the tree: its watches follow it.
	if err := os.Rename(j("m"), j("m2")); err != nil {
		t.Fatal(err)
	}
	await(t, w, j("m"), j("m2"))
	write(t, j("m2", "deep", "h"), "x")
	seen := await(t, w, j("m2", "deep", "h"))
	if slices.Contains(seen, j("m", "deep", "h")) {
		t.Errorf("a change under a moved directory reported under its old name: %q", seen)
	}

	// Moved out: no longer watched (the tables forget it).
	if err := os.Rename(j("m2"), filepath.Join(out, "gone")); err != nil {
		t.Fatal(err)
	}
	await(t, w, j("m2"))
	write(t, filepath.Join(out, "gone", "deep", "i"), "x")
	write(t, j("sentinel"), "x")
	seen = await(t, w, j("sentinel"))
	for _, p := range seen {
		if strings.Contains(p, "deep") {
			t.Errorf("a change in a directory moved out of the tree was reported: %q", seen)
		}
	}

	// Deleted: its watch goes with it.
	if err := os.RemoveAll(j("x")); err != nil {
		t.Fatal(err)
	}
	await(t, w, j("x"))
}

func TestIgnored(t *testing.T) {
	checkFDs(t)
	dir := t.TempDir()
	mkdir(t, filepath.Join(dir, ".git"))
	mkdir(t, filepath.Join(dir, "src", "build"))
	w := start(t, Options{Paths: []string{dir}, Ignore: []string{"*.o", "src/build"}})
	j := func(p ...string) string { return filepath.Join(append([]string{dir}, p...)...) }

	for _, p := range []string{
		j(".git", "index"), j("src", ".main.go.swp"), j("src", "main.go~"),
		j("src", "4913"), j("src", ".#main.go"), j("src", "x.o"), j("src", "build", "out"),
	} {
		write(t, p, "x")
	}
	mkdir(t, j("src", "build", "sub"))
	write(t, j("src", "build", "sub", "f"), "x")
	write(t, j("src", "main.go"), "x")
	seen := await(t, w, j("src", "main.go"))
	for _, p := range seen {
		if p != j("src", "main.go") {
			t.Errorf("ignored path reported: %s", p)
		}
	}
}

func TestDebounceCoalesces(t *testing.T) {
	checkFDs(t)
	dir := t.TempDir()
	// The quiet period must outlast the pauses inside the burst on a
	// loaded machine; the burst is a few file writes.
	w := start(t, Options{Paths: []string{dir}, Debounce: 1500 * time.Millisecond})
	var want []string
	for i := range 20 {
		p := filepath.Join(dir, "f"+strconv.Itoa(i))
		write(t, p, "x")
		want = append(want, p)
	}
	ev := next(t, w)
	slices.Sort(want)
	if !slices.Equal(ev.Paths, want) || ev.More != 0 || ev.Rescan {
		t.Fatalf("burst gave %+v, want one event with %q", ev, want)
	}
	// Nothing of the burst is left for a second event.
	s := filepath.Join(dir, "sentinel")
	write(t, s, "x")
	if ev := next(t, w); !slices.Equal(ev.Paths, []string{s}) {
		t.Fatalf("after the burst: %+v, want only %s", ev, s)
	}
}

func TestSingleFile(t *testing.T) {
	checkFDs(t)
	dir := t.TempDir()
	f := filepath.Join(dir, "config.toml")
	write(t, f, "1")
	w := start(t, Options{Paths: []string{f}})

	write(t, filepath.Join(dir, "other"), "x") // not watched
	write(t, f, "2")
	if seen := await(t, w, f); slices.ContainsFunc(seen, func(p string) bool { return p != f }) {
		t.Errorf("a file beside the watched one was reported: %q", seen)
	}
	// An editor's save: write a new file and rename it onto the old.
	tmp := filepath.Join(dir, "config.toml.new")
	write(t, tmp, "3")
	if err := os.Rename(tmp, f); err != nil {
		t.Fatal(err)
	}
	await(t, w, f)
	if err := os.Remove(f); err != nil {
		t.Fatal(err)
	}
	await(t, w, f)
	write(t, f, "4")
	await(t, w, f)
}

func TestSymlinkRoot(t *testing.T) {
	checkFDs(t)
	dir := t.TempDir()
	mkdir(t, filepath.Join(dir, "real", "sub"))
	link := filepath.Join(dir, "link")
	if err := os.Symlink("real", link); err != nil {
		t.Fatal(err)
	}
	w := start(t, Options{Paths: []string{link}})
	write(t, filepath.Join(dir, "real", "sub", "f"), "x")
	await(t, w, filepath.Join(link, "sub", "f"))
}

func TestRootReplaced(t *testing.T) {
	checkFDs(t)
	parent := t.TempDir()
	dir := filepath.Join(parent, "src")
	mkdir(t, filepath.Join(dir, "sub"))
	w := start(t, Options{Paths: []string{dir}})
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	await(t, w, dir)
	// Made again (a checkout, say): watched again, subdirectories too.
	mkdir(t, filepath.Join(dir, "sub"))
	await(t, w, dir)
	write(t, filepath.Join(dir, "sub", "f"), "x")
	await(t, w, filepath.Join(dir, "sub", "f"))
}

// TestOverflow fills the kernel's queue while the Watcher is kept from
// reading it, then makes a directory whose creation is lost with the
// queue: the Watcher must report a rescan and watch that directory.
func TestOverflow(t *testing.T) {
	checkFDs(t)
	b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	if err != nil {
		t.Fatal(err)
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || limit > 1<<17 {
		t.Skipf("fs.inotify.max_queued_events is %q: too many events to overflow it here", b)
	}
	paused, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	testHookBeforeRead = func() {
		once.Do(func() {
			close(paused)
			<-release
		})
	}
	defer func() { testHookBeforeRead = nil }()
	dir := t.TempDir()
	w := start(t, Options{Paths: []string{dir}})
	defer w.Close() // before the hook is reset
	defer once.Do(func() {})
	select {
	case <-paused:
	case <-time.After(wait):
		t.Fatal("the reader never started")
	}
	func() {
		defer close(release)
		// Each new file is at least two events (IN_CREATE, IN_CLOSE_WRITE).
		for i := 0; i < limit/2+100; i++ {
			write(t, filepath.Join(dir, strconv.Itoa(i)), "")
		}
		mkdir(t, filepath.Join(dir, "late"))
	}()
	deadline := time.After(wait)
	for rescan := false; !rescan; {
		select {
		case ev := <-w.Events():
			rescan = ev.Rescan
		case <-deadline:
			t.Fatal("no rescan event after the queue overflowed")
		}
	}
	write(t, filepath.Join(dir, "late", "f"), "x")
	await(t, w, filepath.Join(dir, "late", "f"))
}

func TestCloseReleases(t *testing.T) {
	checkFDs(t)
	before := runtime.NumGoroutine()
	dir := t.TempDir()
	mkdir(t, filepath.Join(dir, "a", "b"))
	w, err := New(Options{Paths: []string{dir}, Debounce: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "a", "f"), "x")
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for range w.Events() {
	}
	if err := w.Err(); err != nil {
		t.Errorf("Err after Close: %v", err)
	}
	// Close waits for the watcher's own goroutines; others of the test
	// binary (a previous test's, ending) may still be on their way out,
	// so the count is given a moment to come down.
	deadline := time.Now().Add(5 * time.Second)
	n := runtime.NumGoroutine()
	for n > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	if n > before {
		t.Errorf("%d goroutines after Close, %d before", n, before)
	}
}

func TestNewErrors(t *testing.T) {
	checkFDs(t)
	if _, err := New(Options{Paths: []string{"/nonexistent/src"}}); !os.IsNotExist(err) || !strings.Contains(err.Error(), "/nonexistent/src") {
		t.Errorf("New on a missing path: %v", err)
	}
	if _, err := New(Options{Paths: []string{t.TempDir()}, Ignore: []string{"["}}); err == nil || !strings.Contains(err.Error(), "[") {
		t.Errorf("New with a bad pattern: %v", err)
	}
	if _, err := New(Options{}); err == nil {
		t.Error("New with no paths succeeded")
	}
}

// TestPoller runs the polling backend (other systems') here.
func TestPoller(t *testing.T) {
	checkFDs(t)
	dir := t.TempDir()
	mkdir(t, filepath.Join(dir, "a"))
	w, err := newWith(Options{Paths: []string{dir}, Debounce: 20 * time.Millisecond, PollInterval: 20 * time.Millisecond}, startPoller)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	j := func(p ...string) string { return filepath.Join(append([]string{dir}, p...)...) }
	mkdir(t, j("a", "b"))
	write(t, j("a", "b", "f"), "x")
	write(t, j("a", "x.swp"), "x")
	write(t, j("a", ".x.swp"), "x")
	seen := await(t, w, j("a", "b"), j("a", "b", "f"), j("a", "x.swp"))
	if slices.Contains(seen, j("a", ".x.swp")) {
		t.Errorf("ignored file reported: %q", seen)
	}
	write(t, j("a", "b", "f"), "longer")
	await(t, w, j("a", "b", "f"))
	if err := os.RemoveAll(j("a", "b")); err != nil {
		t.Fatal(err)
	}
	await(t, w, j("a", "b"), j("a", "b", "f"))
}

func ExampleNew() {
	w, err := New(Options{Paths: []string{"."}, Ignore: []string{"bin"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close()
	for ev := range w.Events() {
		fmt.Println("changed:", ev.Paths)
	}
}
