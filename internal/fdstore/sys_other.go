//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package fdstore

import (
	"errors"
	"fmt"
	"os"
)

const supported = false

type watcher struct{}

func newWatcher() (*watcher, error)                        { return nil, nil }
func (w *watcher) add(*os.File, uint64) (bool, error)      { return false, nil }
func (w *watcher) del(*os.File)                            {}
func (w *watcher) run(func(id uint64, events uint32) bool) {}
func (w *watcher) close()                                  {}
func eventNames(ev uint32) string                          { return fmt.Sprintf("events %#x", ev) }
func sameFile(a, b *os.File) bool                          { return false }
func dupFile(*os.File) (*os.File, error)                   { return nil, errors.ErrUnsupported }
func chmodDir(string, os.FileMode) error                   { return errors.ErrUnsupported }
