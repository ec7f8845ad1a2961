package main

import (
	"fmt"
	"os"
	"syscall"

	"github.com/fdsend/fdsend/internal/addr"
)

func init() {
	register(&subcommand{
		name:    "store",
		summary: "store a descriptor in a holder (fdsend hold) under a name",
		run:     runStore,
	})
}

const storeUsage = `Usage: fdsend store SOCKET NAME [--fd N | --listen ADDR | --file PATH] [OPTIONS]

Store a descriptor in the holder at SOCKET under NAME (1 to 255 printable
ASCII characters, no ':'). The holder keeps its own copy: this command may
exit, and the descriptor lives on until it is removed, replaced, expires or
the holder stops.

What is stored, one of (default --fd 0, standard input):
      --fd=N          descriptor N of this process
      --listen=ADDR   a new socket listening on ADDR (PORT, IPv4:PORT,
                      [IPv6]:PORT, /path or @name); the address it is bound
                      to is printed (useful with port 0)
      --file=PATH     PATH opened read-only

Options:
  -d, --datagram      with --listen, a datagram socket instead of a stream one
      --ttl=D         the holder drops it after D (a Go duration: 90s, 15m,
                      2h30m); default never
      --replace       replace what NAME holds instead of failing
` + holderUIDHelp + `  -h, --help          show this help

Exit status: 0 stored, 1 refused or failed, 2 usage error.
`

// runStore is the entry point of `fdsend store`.
func runStore(args []string) int {
	c := newHolderCmd("store", storeUsage)
	c.addHolderUID()
	var fd int
	var listen, file, ttlText string
	var replace, datagram bool
	c.fs.IntVar(&fd, "fd", 0, "descriptor")
	c.fs.StringVar(&listen, "listen", "", "listen address")
	c.fs.StringVar(&file, "file", "", "file")
	c.fs.BoolVarP(&datagram, "datagram", "d", false, "datagram socket")
	c.fs.StringVar(&ttlText, "ttl", "0s", "expiry")
	c.fs.BoolVar(&replace, "replace", false, "replace")
	return c.run(args, func(pos []string) (int, error) {
		if len(pos) != 2 {
			return 0, holderUsagef("want SOCKET NAME, got %d arguments", len(pos))
		}
		if err := checkSocket(pos[0]); err != nil {
			return 0, err
		}
		if err := checkHolderNames(pos[1:]); err != nil {
			return 0, err
		}
		sources := 0
		for _, f := range []string{"fd", "listen", "file"} {
			if c.fs.Changed(f) {
				sources++
			}
		}
		if sources > 1 {
			return 0, holderUsagef("give one of --fd, --listen and --file")
		}
		if datagram && !c.fs.Changed("listen") {
			return 0, holderUsagef("--datagram goes with --listen")
		}
		if fd < 0 {
			return 0, holderUsagef("--fd %d: not a descriptor number", fd)
		}
		ttl, err := parseTTL(ttlText)
		if err != nil {
			return 0, err
		}
		var a addr.Addr
		if c.fs.Changed("listen") {
			if a, err = addr.Parse(listen); err != nil {
				return 0, holderUsagef("--listen: %v", err)
			}
		}
		if c.fs.Changed("file") && file == "" {
			return 0, holderUsagef("--file: empty path")
		}

		// The descriptor to store.
		var what any
		stored := false
		var bound string
		switch {
		case c.fs.Changed("listen"):
			typ := syscall.SOCK_STREAM
			if datagram {
				typ = syscall.SOCK_DGRAM
			}
			l, err := addr.Listen(a, typ)
			if err != nil {
				return 1, err
			}
			// Once stored, a socket file is the address of what the
			// holder holds: close only this process's descriptor.
			// Otherwise remove the file too, as nothing listens there.
			defer func() {
				if stored {
					l.File.Close()
				} else {
					l.Close()
				}
			}()
			what, bound = l.File, l.Bound
		case c.fs.Changed("file"):
			f, err := os.Open(file)
			if err != nil {
				return 1, err
			}
			defer f.Close()
			what = f
		default:
			if err := fdOpen(fd); err != nil {
				return 1, fmt.Errorf("--fd %d: %w", fd, err)
			}
			what = fd
		}
		cl, err := c.dialHolder(pos[0])
		if err != nil {
			return 1, err
		}
		defer cl.Close()
		if err := cl.Store(pos[1], what, ttl, replace); err != nil {
			return 1, err
		}
		stored = true
		if bound != "" {
			fmt.Println(escape(bound))
		}
		return 0, nil
	})
}
