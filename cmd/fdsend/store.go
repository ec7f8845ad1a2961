package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/fdsend/fdsend/holder"
	"github.com/fdsend/fdsend/internal/addr"
	"github.com/spf13/pflag"
)

func init() {
	register(&Command{
		UsageLine: "store SOCKET NAME [--fd N | --listen ADDR | --file PATH] [OPTIONS]",
		Short:     "store a descriptor in a holder (fdsend hold) under a name",
		Long: `Store a descriptor in the holder at SOCKET under NAME (1 to 255 printable
ASCII characters, no ':'). The holder keeps its own copy: this command may
exit, and the descriptor lives on until it is removed, replaced, expires or
the holder stops.`,
		Footer: "Exit status: 0 stored, 1 refused or failed, 2 usage error.",
		Flags:  storeFlags,
	})
}

// storeFlags defines the options of fdsend store.
func storeFlags(c *Command, fs *pflag.FlagSet) func([]string) (int, error) {
	fd := fs.Int("fd", 0, "descriptor `N` of this process")
	listen := fs.String("listen", "", "a new socket listening on `ADDR` (PORT, IPv4:PORT, [IPv6]:PORT, /path or @name); the address it is bound to is printed (useful with port 0)")
	file := fs.String("file", "", "`PATH` opened read-only")
	setGroup(fs, "What is stored, one of (default --fd 0, standard input)", "fd", "listen", "file")
	datagram := fs.BoolP("datagram", "d", false, "with --listen, a datagram socket instead of a stream one")
	ttlText := fs.String("ttl", "0s", "the holder drops it after `D` (a Go duration: 90s, 15m, 2h30m); default never")
	replace := fs.Bool("replace", false, "replace what NAME holds instead of failing")
	uids := addHolderUID(fs)
	return func(pos []string) (int, error) {
		if len(pos) != 2 {
			return 0, usagef("want SOCKET NAME, got %s", plural(len(pos), "argument"))
		}
		if err := checkSocket(pos[0]); err != nil {
			return 0, err
		}
		if err := checkHolderNames(pos[1:]); err != nil {
			return 0, err
		}
		sources, from := 0, "fd"
		for _, f := range []string{"fd", "listen", "file"} {
			if fs.Changed(f) {
				sources++
				from = f
			}
		}
		if sources > 1 {
			return 0, usagef("give one of --fd, --listen and --file")
		}
		if *datagram && !fs.Changed("listen") {
			return 0, usagef("--datagram goes with --listen")
		}
		if *fd < 0 {
			return 0, usagef("--fd %d: not a descriptor number", *fd)
		}
		ttl, err := parseTTL(*ttlText)
		if err != nil {
			return 0, err
		}
		var a addr.Addr
		if fs.Changed("listen") {
			if a, err = addr.Parse(*listen); err != nil {
				return 0, usagef("--listen: %s", plain(err))
			}
		}
		if fs.Changed("file") && *file == "" {
			return 0, usagef("--file: empty path")
		}
		return store(pos[0], pos[1], storeSource{from: from, fd: *fd, listen: a, file: *file, datagram: *datagram}, ttl, *replace, *uids)
	}
}

// storeSource is what fdsend store stores: the descriptor of --fd, or a
// socket listening on --listen, or --file opened.
type storeSource struct {
	from     string // "fd", "listen" or "file": the option given
	fd       int
	listen   addr.Addr
	file     string
	datagram bool
}

// store stores what src says under name in the holder at sock.
func store(sock, name string, src storeSource, ttl time.Duration, replace bool, uids holderUIDs) (int, error) {
	// The descriptor to store.
	var what any
	stored := false
	var bound string
	switch src.from {
	case "listen":
		typ := syscall.SOCK_STREAM
		if src.datagram {
			typ = syscall.SOCK_DGRAM
		}
		l, err := addr.Listen(src.listen, typ)
		if err != nil {
			return 1, listenError(src.listen.String(), err)
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
	case "file":
		f, err := os.Open(src.file)
		if err != nil {
			return 1, fmt.Errorf("--file %s: %s", src.file, reason(err))
		}
		defer f.Close()
		what = f
	default:
		if err := fdOpen(src.fd); err != nil {
			return 1, fmt.Errorf("--fd %d: %s", src.fd, reason(err))
		}
		what = src.fd
	}
	cl, err := uids.dial(sock)
	if err != nil {
		return 1, err
	}
	defer cl.Close()
	if err := cl.Store(name, what, ttl, replace); err != nil {
		if errors.Is(err, holder.ErrExists) {
			return 1, fmt.Errorf("%q is already held (give --replace to replace it)", name)
		}
		return 1, requestError(sock, err)
	}
	stored = true
	if bound != "" {
		fmt.Println(escape(bound))
	}
	return 0, nil
}
