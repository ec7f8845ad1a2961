package spawn

import (
	"fmt"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/activation"
)

// NamedFile pairs a descriptor to hand to a child with its LISTEN_FDNAMES
// name. File is anything the core fdsend calls accept: an *os.File, a
// syscall.Conn (every listener, conn and packet conn of package net), a value
// with an Fd() uintptr method, or an int, int32, int64 or uintptr descriptor
// number. The caller keeps ownership of File: Command and Exec work on
// duplicates.
type NamedFile struct {
	Name string
	File any
}

// checkNames validates every name to be sent, naming the bad one.
func checkNames(files []NamedFile) error {
	for i, f := range files {
		if err := activation.ValidateName(f.Name); err != nil {
			return &fdsend.ArgError{Arg: fmt.Sprintf("files[%d].Name", i), Type: "string", Err: err}
		}
	}
	return nil
}

// namesOf returns the names of files in order.
func namesOf(files []NamedFile) []string {
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.Name
	}
	return names
}
