//go:build !linux

package main

import (
	"errors"

	"github.com/fdsend/fdsend/activation"
	"github.com/fdsend/fdsend/internal/addr"
)

// Capabilities are Linux's: elsewhere the launcher keeps what it has.

type handover struct{ Listeners []addr.Handover }

func (h *handover) inherited() []activation.File { return nil }

func willDropCapabilities(bool) bool { return false }

func capsNow() string { return "" }

func takeHandover() (*handover, bool, error) { return nil, false, nil }

func dropCapabilities([]activation.File, []*addr.Listener) error {
	return errNoCapabilities
}

func keptCapNames() string { return "" }

var errNoCapabilities = errors.New("this system has no capabilities to drop")
