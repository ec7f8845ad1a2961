package main

import (
	"io"
	"os"

	"github.com/spf13/pflag"
)

func init() {
	register(&Command{
		UsageLine: "version",
		Short:     "print fdsend's version (also fdsend --version)",
		Long:      "Print the version of the module fdsend was built from: \"(devel)\" for a\nbuild from a work tree.",
		Footer:    "Exit status: 0; 2 for a usage error.",
		Flags: func(c *Command, fs *pflag.FlagSet) func([]string) (int, error) {
			return func(args []string) (int, error) {
				if len(args) > 0 {
					return 0, usagef("want no arguments, got %s", plural(len(args), "argument"))
				}
				io.WriteString(os.Stdout, versionLine())
				return 0, nil
			}
		},
	})
}
