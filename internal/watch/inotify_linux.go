package watch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// watchMask is what every watch asks for: changes to entries and to the
// directory itself. IN_EXCL_UNLINK drops events on entries already
// unlinked but still open.
const watchMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MODIFY |
	unix.IN_CLOSE_WRITE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_ATTRIB | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF |
	unix.IN_EXCL_UNLINK | unix.IN_ONLYDIR

// testHookBeforeRead, when set by a test, runs before each read of the
// inotify descriptor.
var testHookBeforeRead func()

// inotify is the Linux backend. Its tables are used by the reading
// goroutine only (and by startBackend before that goroutine starts).
type inotify struct {
	w      *Watcher
	f      *os.File
	roots  []root
	dirs   map[int32]*watchedDir
	byPath map[string]int32
	gen    int // rescan generation, see rescan
}

// watchedDir is one watch: a directory of a watched tree, or the parent of
// a watched path (whose entries other than that path are of no interest),
// or both.
type watchedDir struct {
	abs   string
	tree  *root            // the tree this directory is in, or nil
	names map[string]*root // watched paths that are entries of this directory
	seen  int
}

func startBackend(w *Watcher, roots []root, _ *Options) error {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return os.NewSyscallError("inotify_init1", err)
	}
	in := &inotify{
		w:      w,
		f:      os.NewFile(uintptr(fd), "inotify"),
		roots:  roots,
		dirs:   make(map[int32]*watchedDir),
		byPath: make(map[string]int32),
	}
	for i := range in.roots {
		if err := in.addRoot(&in.roots[i], true); err != nil {
			in.f.Close()
			return err
		}
	}
	w.stop = in.f.Close
	w.wg.Add(1)
	go in.readLoop()
	return nil
}

// addRoot watches a root: its tree, if a directory, and its parent
// directory, which tells when the root is replaced (an editor's rename
// onto a file, a directory deleted and made again).
func (in *inotify) addRoot(r *root, strict bool) error {
	if r.isDir {
		if _, err := in.addTree(r.abs, r, false, strict); err != nil {
			return err
		}
	}
	parent := filepath.Dir(r.abs)
	if parent == r.abs {
		return nil // "/" has no parent to watch
	}
	err := in.addDir(parent, nil)
	if err != nil && strict && !r.isDir {
		return err // a file can only be watched through its directory
	}
	return nil
}

// addDir adds (or refreshes) the watch on directory abs, as part of tree
// (nil: only as the parent of roots).
func (in *inotify) addDir(abs string, tree *root) error {
	var wd int
	var err error
	cerr := rawControl(in.f, func(fd int) {
		for {
			wd, err = unix.InotifyAddWatch(fd, abs, watchMask|unix.IN_DONT_FOLLOW)
			if err != unix.EINTR {
				return
			}
		}
	})
	if cerr != nil {
		return cerr
	}
	if err != nil {
		if err == unix.ENOSPC {
			return fmt.Errorf("watch %s: %w (the limit fs.inotify.max_user_watches was reached)", abs, err)
		}
		return &os.PathError{Op: "watch", Path: abs, Err: err}
	}
	d := in.dirs[int32(wd)]
	if d == nil {
		d = &watchedDir{}
		in.dirs[int32(wd)] = d
	}
	if d.abs != abs {
		if old, ok := in.byPath[d.abs]; ok && old == int32(wd) {
			delete(in.byPath, d.abs)
		}
		d.abs = abs
		d.tree = nil
	}
	if tree != nil {
		d.tree = tree
	}
	d.names = nil
	for i := range in.roots {
		r := &in.roots[i]
		if filepath.Dir(r.abs) == abs && r.abs != abs {
			if d.names == nil {
				d.names = make(map[string]*root)
			}
			d.names[filepath.Base(r.abs)] = r
		}
	}
	d.seen = in.gen
	in.byPath[abs] = int32(wd)
	return nil
}

// addTree watches directory abs and every directory under it that is not
// ignored, as part of tree. Each directory is watched before it is read,
// so an entry made in it is either seen by the read or reported by the
// watch. With report, every entry found is a change (abs is new: it was
// made, or moved in, perhaps filled before its watch existed). Entries
// that vanish during the walk are skipped; with strict, any other error
// ends the walk, else it is returned among the problems.
func (in *inotify) addTree(abs string, tree *root, report, strict bool) ([]string, error) {
	var changed []string
	var errs []error
	err := filepath.WalkDir(abs, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				return nil
			}
			if strict {
				return err
			}
			errs = append(errs, err)
			return nil
		}
		rel, _ := filepath.Rel(tree.abs, p)
		if in.w.ig.ignored(rel) {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if report && p != abs {
			changed = append(changed, filepath.Join(tree.path, rel))
		}
		if !e.IsDir() {
			return nil
		}
		if err := in.addDir(p, tree); err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				return filepath.SkipDir
			}
			if strict {
				return err
			}
			errs = append(errs, err)
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	in.w.note(changed, false, errs...)
	return changed, nil
}

// removeTree drops the watches on abs and every directory under it (moved
// away or deleted: their paths no longer mean them).
func (in *inotify) removeTree(abs string) {
	prefix := abs + string(filepath.Separator)
	for p, wd := range in.byPath {
		if p != abs && !strings.HasPrefix(p, prefix) {
			continue
		}
		delete(in.byPath, p)
		delete(in.dirs, wd)
		rawControl(in.f, func(fd int) { unix.InotifyRmWatch(fd, uint32(wd)) })
	}
}

// rescan rebuilds the tables from the file system after the kernel's
// queue overflowed: every root is walked again (watches the kernel already
// has are refreshed, missing ones added) and watches on directories not
// met again are dropped.
func (in *inotify) rescan() {
	in.gen++
	for i := range in.roots {
		r := &in.roots[i]
		if err := in.addRoot(r, false); err != nil {
			in.w.note(nil, false, err)
		}
	}
	for wd, d := range in.dirs {
		if d.seen == in.gen {
			continue
		}
		if cur, ok := in.byPath[d.abs]; ok && cur == wd {
			delete(in.byPath, d.abs)
		}
		delete(in.dirs, wd)
		rawControl(in.f, func(fd int) { unix.InotifyRmWatch(fd, uint32(wd)) })
	}
	in.w.note(nil, true)
}

func (in *inotify) readLoop() {
	defer in.w.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		if testHookBeforeRead != nil {
			testHookBeforeRead()
		}
		n, err := in.f.Read(buf)
		if err != nil {
			select {
			case <-in.w.done:
			default:
				in.w.fail(&os.PathError{Op: "read", Path: "inotify", Err: err})
			}
			return
		}
		in.handle(buf[:n])
	}
}

// handle acts on a buffer of events read from the inotify descriptor.
func (in *inotify) handle(buf []byte) {
	const hdr = unix.SizeofInotifyEvent
	var changed []string
	for len(buf) >= hdr {
		wd := int32(binary.NativeEndian.Uint32(buf[0:4]))
		mask := binary.NativeEndian.Uint32(buf[4:8])
		nameLen := binary.NativeEndian.Uint32(buf[12:16])
		if uint64(nameLen) > uint64(len(buf)-hdr) {
			break // cannot happen: the kernel writes whole events
		}
		name := strings.TrimRight(string(buf[hdr:hdr+int(nameLen)]), "\x00")
		buf = buf[hdr+int(nameLen):]

		if mask&unix.IN_Q_OVERFLOW != 0 {
			in.w.note(changed, false)
			changed = nil
			in.rescan()
			continue
		}
		d := in.dirs[wd]
		if d == nil {
			continue // a watch already dropped
		}
		if mask&unix.IN_IGNORED != 0 {
			if cur, ok := in.byPath[d.abs]; ok && cur == wd {
				delete(in.byPath, d.abs)
			}
			delete(in.dirs, wd)
			continue
		}
		if name == "" {
			continue // the directory itself; its parent's watch reports it
		}
		full := filepath.Join(d.abs, name)
		isDir := mask&unix.IN_ISDIR != 0
		came := mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0
		went := mask&(unix.IN_DELETE|unix.IN_MOVED_FROM) != 0
		if t := d.tree; t != nil {
			rel, _ := filepath.Rel(t.abs, full)
			if !in.w.ig.ignored(rel) {
				changed = append(changed, filepath.Join(t.path, rel))
				if isDir && went {
					in.removeTree(full)
				}
				if isDir && came {
					in.addTree(full, t, true, false)
				}
			}
		}
		if r := d.names[name]; r != nil {
			changed = append(changed, r.path)
			if r.isDir && went {
				in.removeTree(r.abs)
			}
			if r.isDir && isDir && came {
				in.addTree(r.abs, r, true, false)
			}
		}
	}
	in.w.note(changed, false)
}

// rawControl runs fn on f's descriptor, which f's Close cannot then
// recycle under it.
func rawControl(f *os.File, fn func(fd int)) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(func(fd uintptr) { fn(int(fd)) })
}
