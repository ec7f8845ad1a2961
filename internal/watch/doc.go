// Package watch holds the two halves of `fdsend activate --watch PATH...
// --build CMD`: a Watcher that reports, debounced, that something changed
// under some paths, and a Build that runs a shell command and keeps the end
// of its output.
//
// On Linux the Watcher uses inotify (through golang.org/x/sys/unix): one
// watch per directory of each watched tree, added for directories created
// or moved in later (and the new directory is scanned, since it may have
// been filled before its watch existed), removed for directories deleted
// or moved out. When the kernel's event queue overflows the Watcher walks
// the trees again and reports a change whose paths are unknown. On other
// systems it polls: it walks the trees every Options.PollInterval and
// compares each entry's type, size and modification time, which costs a
// walk per interval but needs no system-specific code and is what a
// development loop needs.
//
// A Watcher holds one descriptor (the inotify instance), close-on-exec,
// released by Close; a Build holds the read end of its output pipe while it
// runs and nothing afterwards.
package watch
