package handoff

import (
	"crypto/rand"
	"fmt"
	"slices"
	"syscall"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/jsonmsg"
)

// maxTicketKeys bounds the session-ticket keys handed over.
const maxTicketKeys = 32

// TicketKeys returns the TLS session-ticket keys of this instance, for
// tls.Config.SetSessionTicketKeys, so that clients resume on the newer
// instance the sessions they began on the older one (a TLS connection
// itself cannot move: crypto/tls cannot export its state). The first call
// before Ready takes the older instance's keys, if it has any; otherwise
// (the first instance, or one whose older instance never asked for keys)
// it makes one fresh random key. Either way the keys are kept to be handed
// to the next instance, and later calls return them. The keys are secrets:
// they travel only to the peers Config allows, over the hand-off point.
//
// Rotation is the caller's: to rotate, make a new key, call SetTicketKeys
// with it first and the old ones after (they still decrypt tickets), and
// give the same list to tls.Config.SetSessionTicketKeys.
func (u *Upgrader) TicketKeys() ([][32]byte, error) {
	u.takeMu.Lock()
	defer u.takeMu.Unlock()
	u.mu.Lock()
	if u.keys != nil {
		keys := slices.Clone(u.keys)
		u.mu.Unlock()
		return keys, nil
	}
	var err error
	switch u.state {
	case stAborted:
		err = u.abortErr
	case stClosed:
		err = fmt.Errorf("handoff: closed: %w", syscall.EINVAL)
	}
	peer, pid := u.peer, u.peerPID
	ask := peer != nil && u.state == stUpgrading && slices.Contains(u.peerFeatures, featureKeys)
	u.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var keys [][32]byte
	if ask {
		if keys, err = u.askKeys(peer, pid); err != nil {
			return nil, err
		}
	}
	if len(keys) == 0 {
		var k [32]byte
		rand.Read(k[:]) // never fails (crypto/rand)
		keys = [][32]byte{k}
	}
	u.mu.Lock()
	u.keys = keys
	u.mu.Unlock()
	return slices.Clone(keys), nil
}

// SetTicketKeys replaces the session-ticket keys handed to the next
// instance (see TicketKeys): the first encrypts new tickets, all decrypt.
// It takes 1 to 32 keys.
func (u *Upgrader) SetTicketKeys(keys [][32]byte) error {
	if len(keys) == 0 || len(keys) > maxTicketKeys {
		return fmt.Errorf("handoff: SetTicketKeys: %d keys, want 1 to %d: %w", len(keys), maxTicketKeys, syscall.EINVAL)
	}
	u.mu.Lock()
	u.keys = slices.Clone(keys)
	u.mu.Unlock()
	return nil
}

// askKeys asks the older instance for its keys. takeMu is held.
func (u *Upgrader) askKeys(c *fdsend.Conn, pid int) ([][32]byte, error) {
	if err := send(c, message{Op: opKeys}); err != nil {
		return nil, u.peerError(pid, "asking for the session-ticket keys", err)
	}
	c.SetReadLimits(maxRequestBytes, 0)
	c.SetReadDeadline(time.Now().Add(exchangeTimeout))
	m, files, err := receive(c)
	jsonmsg.CloseAll(files)
	if err != nil {
		return nil, u.peerError(pid, "reading the session-ticket keys", err)
	}
	if m.Op == opError {
		return nil, fmt.Errorf("handoff: the older instance (process %d) answered: %s", pid, m.Error)
	}
	if m.Op != opKeys || len(m.Keys) > maxTicketKeys {
		return nil, fmt.Errorf("%w: answer %q with %d keys to %q (older instance, process %d)", errProtocol, m.Op, len(m.Keys), opKeys, pid)
	}
	keys := make([][32]byte, len(m.Keys))
	for i, k := range m.Keys {
		if len(k) != 32 {
			return nil, fmt.Errorf("%w: session-ticket key of %d bytes (older instance, process %d)", errProtocol, len(k), pid)
		}
		copy(keys[i][:], k)
	}
	return keys, nil
}

// keysToSend is the answer to opKeys.
func (u *Upgrader) keysToSend() [][]byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([][]byte, len(u.keys))
	for i := range u.keys {
		out[i] = slices.Clone(u.keys[i][:])
	}
	return out
}
