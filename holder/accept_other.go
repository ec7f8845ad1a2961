//go:build !(linux || freebsd)

package holder

import "errors"

// rawAccept says whether the accept loop takes connections as bare
// descriptors here: not where accept4 is missing; it uses the listener's
// Accept.
const rawAccept = false

func acceptRaw(lfd int) (int, error) { return -1, errors.ErrUnsupported }

func closeRaw(fd int) {}
