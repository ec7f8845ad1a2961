package watch

import (
	"path"
	"path/filepath"
)

// DefaultIgnore is what a Watcher ignores unless Options.NoDefaultIgnore is
// set: version-control directories, and the files editors write beside the
// one being saved (vim's swap files, backups and its "4913" probe, emacs's
// lock and autosave files, JetBrains' safe-write copies, gedit's temporary
// files) and macOS's folder metadata.
var DefaultIgnore = []string{
	".git", ".hg", ".svn", ".jj",
	".*.sw?", "*~", "4913",
	".#*", "#*#",
	"*___jb_tmp___", "*___jb_old___",
	".goutputstream-*",
	".DS_Store",
}

// ignorer decides whether a path under a root is ignored. A pattern (the
// syntax of path.Match) is matched against the entry's base name and
// against its slash-separated path relative to the root, so "*.o" ignores
// object files anywhere and "build/out" one directory. An ignored
// directory is not descended into.
type ignorer struct{ patterns []string }

func newIgnorer(opts *Options) (*ignorer, error) {
	var ps []string
	if !opts.NoDefaultIgnore {
		ps = append(ps, DefaultIgnore...)
	}
	for _, p := range opts.Ignore {
		if _, err := path.Match(p, ""); err != nil {
			return nil, &PatternError{Pattern: p, Err: err}
		}
		ps = append(ps, p)
	}
	return &ignorer{patterns: ps}, nil
}

// PatternError is a malformed ignore pattern.
type PatternError struct {
	Pattern string
	Err     error
}

func (e *PatternError) Error() string { return "ignore pattern " + e.Pattern + ": " + e.Err.Error() }
func (e *PatternError) Unwrap() error { return e.Err }

// ignored reports whether rel, a path relative to a root in the system's
// form, is ignored. The root itself (rel ".") never is.
func (ig *ignorer) ignored(rel string) bool {
	if rel == "." || rel == "" {
		return false
	}
	rel = filepath.ToSlash(rel)
	base := path.Base(rel)
	for _, p := range ig.patterns {
		if ok, _ := path.Match(p, base); ok {
			return true
		}
		if ok, _ := path.Match(p, rel); ok {
			return true
		}
	}
	return false
}
