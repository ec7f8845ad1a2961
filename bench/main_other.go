//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "fdsend-bench: this benchmark runs on Linux only")
	os.Exit(1)
}
