//go:build dragonfly || netbsd || openbsd

package fdsend

import (
	"errors"
	"fmt"
	"runtime"
)

// peerCred: golang.org/x/sys/unix has no call for the peer's credentials on
// these systems (getpeereid, OpenBSD's SO_PEERCRED, NetBSD's LOCAL_PEEREID,
// DragonFly's LOCAL_PEERCRED).
func peerCred(fd int) (Cred, error) {
	return Cred{}, fmt.Errorf("fdsend: peer credentials on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}

// peerCredSupported says whether PeerCred works here (a Listener's
// allow-list needs it).
const peerCredSupported = false
