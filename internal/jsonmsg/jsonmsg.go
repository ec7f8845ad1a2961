// Package jsonmsg is the one way fdsend's own protocols (handoff's
// requests, the holder's requests and responses) put a JSON object and its
// descriptors in one message of an fdsend.Conn, and take them out again.
// The descriptors a message carries belong to the reader only once the
// object has decoded; otherwise they are closed, so a malformed message can
// leave nothing open.
package jsonmsg

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/fdsend/fdsend"
)

// ErrMalformed is wrapped by Read's error for a message whose data is not
// the JSON object expected.
var ErrMalformed = errors.New("malformed message")

// Write encodes v as JSON and writes it with files as one message on c.
// The files stay the caller's.
func Write(c *fdsend.Conn, v any, files ...any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.WriteMsg(data, files...)
}

// Read reads one message from c and decodes its data into v. The
// descriptors that came with it are returned, the caller's to close, only
// if it decodes; otherwise they are closed and the error wraps ErrMalformed.
// Errors of the Conn are returned as they are.
func Read(c *fdsend.Conn, v any) ([]*os.File, error) {
	data, files, err := c.ReadMsg()
	if err != nil {
		return nil, err
	}
	if err := Decode(data, v); err != nil {
		CloseAll(files)
		return nil, err
	}
	return files, nil
}

// Decode decodes data into v, with an error wrapping ErrMalformed.
func Decode(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

// CloseAll closes every file of files.
func CloseAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}
