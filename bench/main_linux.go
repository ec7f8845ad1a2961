//go:build linux

package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fdsend/fdsend"
)

// sockFD is the connected socket's number in the sender and the receiver.
const sockFD = 3

// msgLen is every message's data length.
const msgLen = 8

// variant is one way of sending and receiving; key names it to the sender
// and receiver processes ("c-loop" and "c-range" are the C reference's).
type variant struct {
	label string
	key   string
	n     int // descriptors per message
}

func (v variant) isC() bool { return strings.HasPrefix(v.key, "c-") }

// pingPong reports whether v is a round-trip variant: the receiver sends
// every message back and the sender waits for it.
func (v variant) pingPong() bool { return strings.HasSuffix(v.key, "-pp") }

// base is the C variant v's ratios are to.
func (v variant) base() string {
	if v.pingPong() {
		return "c-pp"
	}
	return "c-loop"
}

var variants = []variant{
	{"C (close loop)", "c-loop", 1},
	{"SendMsg/RecvMsg on *net.UnixConn", "core-uc", 1},
	{"SendMsg/RecvMsg on int", "core-int", 1},
	{"net.UnixConn Write/ReadMsgUnix", "std", 1},
	{"Conn WriteMsg(*os.File)/ReadMsg", "conn-files", 1},
	{"Conn WriteMsg(int)/ReadMsgFDs", "conn-ints", 1},
	{"SendMsgs/RecvMsgs x16", "batch", 1},
	{"SendMsgs/RecvMsgs x16, CloseFDs", "batch-closefds", 1},
	{"C (close loop)", "c-loop", 253},
	{"C (close_range runs)", "c-range", 253},
	{"RecvMsg on *net.UnixConn, close loop", "core-uc", 253},
	{"RecvMsg on *net.UnixConn, CloseFDs", "core-uc-closefds", 253},
	{"C ping-pong (round trip)", "c-pp", 1},
	{"SendMsg/RecvMsg on *net.UnixConn, ping-pong", "core-uc-pp", 1},
	{"net.UnixConn Write/ReadMsgUnix, ping-pong", "std-pp", 1},
}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "send", "recv":
			if err := role(os.Args[1], os.Args[2:]); err != nil {
				fmt.Fprintf(os.Stderr, "fdsend-bench %s: %v\n", os.Args[1], err)
				os.Exit(1)
			}
			return
		}
	}
	if err := drive(); err != nil {
		fmt.Fprintf(os.Stderr, "fdsend-bench: %v\n", err)
		os.Exit(1)
	}
}

func drive() error {
	ref := flag.String("ref", "", "path of the C reference built from bench/c/ref.c (required)")
	rounds := flag.Int("rounds", 9, "rounds; each runs every variant once, in rotating order")
	msgs1 := flag.Int("msgs1", 20000, "timed messages per run with 1 descriptor")
	msgs253 := flag.Int("msgs253", 600, "timed messages per run with 253 descriptors")
	useStrace := flag.Bool("strace", true, "count system calls per message with strace -f -c, if installed")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: fdsend-bench -ref PATH [-rounds R] [-msgs1 M] [-msgs253 M] [-strace=false]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *ref == "" || flag.NArg() != 0 || *rounds < 1 || *msgs1 < 1 || *msgs253 < 1 {
		flag.Usage()
		os.Exit(2)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if err := cloexecInherited(); err != nil {
		return err
	}
	count := func(v variant) int {
		if v.n == 1 {
			return *msgs1
		}
		return *msgs253
	}
	fmt.Printf("%d rounds; %d messages per run at 1 descriptor, %d at 253; 8 bytes each; SOCK_STREAM socket pair\n",
		*rounds, *msgs1, *msgs253)
	ns := make([][]float64, len(variants)) // ns[variant][round]
	for r := 0; r < *rounds; r++ {
		for i := range variants {
			k := (i + r) % len(variants) // rotate, so no variant always runs first
			v := variants[k]
			t, err := runPair(self, *ref, v, count(v), nil)
			if err != nil {
				return fmt.Errorf("%s, %d fds: %w", v.label, v.n, err)
			}
			ns[k] = append(ns[k], t)
		}
		fmt.Fprintf(os.Stderr, "\rround %d/%d", r+1, *rounds)
	}
	fmt.Fprintln(os.Stderr)

	var sc map[int]string
	stracePath, lookErr := exec.LookPath("strace")
	switch {
	case !*useStrace:
	case lookErr != nil:
		fmt.Println("syscalls per message: strace is not installed (apt-get install strace)")
	default:
		sc = make(map[int]string)
		for i, v := range variants {
			s, err := syscallsPerMsg(stracePath, self, *ref, v)
			if err != nil {
				return fmt.Errorf("strace %s, %d fds: %w", v.label, v.n, err)
			}
			sc[i] = s
		}
	}

	fmt.Printf("\n%-46s %4s %10s %7s %13s  %s\n", "variant", "fds", "ns/msg", "x C", "x C q1-q3", "syscalls/msg (both processes)")
	for i, v := range variants {
		cref := slices.IndexFunc(variants, func(c variant) bool { return c.key == v.base() && c.n == v.n })
		ratios := make([]float64, len(ns[i]))
		for r := range ns[i] {
			ratios[r] = ns[i][r] / ns[cref][r]
		}
		q1, med, q3 := quartiles(ratios)
		_, t, _ := quartiles(ns[i])
		fmt.Printf("%-46s %4d %10.0f %7.2f %6.2f-%-6.2f  %s\n", v.label, v.n, t, med, q1, q3, sc[i])
	}
	fmt.Println("\nns/msg: median over rounds (ping-pong: per round trip); x C: median of each round's ratio to C's close loop")
	fmt.Println("with as many descriptors (ping-pong: to C's ping-pong), paired in the same round; q1-q3 its spread.")
	return nil
}

// cloexecInherited marks close-on-exec every descriptor above 2 that this
// process inherited, so that the senders and receivers start with only
// their socket: a stray inherited descriptor would split the numbers the
// kernel gives received descriptors into several runs.
func cloexecInherited() error {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < 3 {
			continue
		}
		// The directory's own descriptor is gone by now: EBADF is fine.
		if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_SETFD, syscall.FD_CLOEXEC); errno != 0 && errno != syscall.EBADF {
			return os.NewSyscallError("fcntl", errno)
		}
	}
	return nil
}

// quartiles returns the lower quartile, median and upper quartile of xs.
func quartiles(xs []float64) (q1, med, q3 float64) {
	s := slices.Clone(xs)
	slices.Sort(s)
	at := func(p float64) float64 {
		x := p * float64(len(s)-1)
		i := int(x)
		if i+1 >= len(s) {
			return s[len(s)-1]
		}
		return s[i] + (x-float64(i))*(s[i+1]-s[i])
	}
	return at(0.25), at(0.5), at(0.75)
}

// runPair runs v's sender and receiver as two processes over a new socket
// pair, each under the command wrap (with the process's own argument) if
// wrap is not nil, and returns the receiver's ns per timed message.
func runPair(self, ref string, v variant, count int, wrap func(side string) []string) (float64, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, os.NewSyscallError("socketpair", err)
	}
	sf, rf := os.NewFile(uintptr(fds[0]), "sender"), os.NewFile(uintptr(fds[1]), "receiver")
	defer sf.Close()
	defer rf.Close()
	warm := max(count/10, 1)
	var sargs, rargs []string
	if v.isC() {
		mode := strings.TrimPrefix(v.key, "c-")
		sargs = []string{ref, "send", strconv.Itoa(v.n), strconv.Itoa(warm + count)}
		if v.pingPong() {
			sargs = append(sargs, "pp")
		}
		rargs = []string{ref, "recv", strconv.Itoa(v.n), strconv.Itoa(count), strconv.Itoa(warm), mode}
	} else {
		sargs = []string{self, "send", v.key, strconv.Itoa(v.n), strconv.Itoa(warm + count)}
		rargs = []string{self, "recv", v.key, strconv.Itoa(v.n), strconv.Itoa(count), strconv.Itoa(warm)}
	}
	if wrap != nil {
		sargs = append(wrap("send"), sargs...)
		rargs = append(wrap("recv"), rargs...)
	}
	var serr, rerr, rout bytes.Buffer
	scmd := exec.Command(sargs[0], sargs[1:]...)
	scmd.ExtraFiles = []*os.File{sf}
	scmd.Stderr = &serr
	rcmd := exec.Command(rargs[0], rargs[1:]...)
	rcmd.ExtraFiles = []*os.File{rf}
	rcmd.Stdout = &rout
	rcmd.Stderr = &rerr
	if err := rcmd.Start(); err != nil {
		return 0, err
	}
	if err := scmd.Start(); err != nil {
		rf.Close()
		rcmd.Process.Kill()
		rcmd.Wait()
		return 0, err
	}
	sf.Close()
	rf.Close()
	se, re := scmd.Wait(), rcmd.Wait()
	if se != nil {
		return 0, fmt.Errorf("sender: %v: %s", se, strings.TrimSpace(serr.String()))
	}
	if re != nil {
		return 0, fmt.Errorf("receiver: %v: %s", re, strings.TrimSpace(rerr.String()))
	}
	t, err := strconv.ParseFloat(strings.TrimSpace(rout.String()), 64)
	if err != nil {
		return 0, fmt.Errorf("receiver printed %q", rout.String())
	}
	return t, nil
}

// syscallsPerMsg counts the system calls of v's two processes with strace
// for a short and a longer run and divides the difference by the difference
// in messages, so that start-up and exit cancel out. It returns the total
// and the calls that make up most of it.
func syscallsPerMsg(strace, self, ref string, v variant) (string, error) {
	short, long := 200, 2200
	if v.n > 1 {
		short, long = 20, 220
	}
	dir, err := os.MkdirTemp("", "fdsend-bench")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	counts := func(m int) (map[string]int, error) {
		wrap := func(side string) []string {
			return []string{strace, "-f", "-c", "-o", filepath.Join(dir, fmt.Sprintf("%s-%d", side, m))}
		}
		if _, err := runPair(self, ref, v, m, wrap); err != nil {
			return nil, err
		}
		total := make(map[string]int)
		for _, side := range []string{"send", "recv"} {
			if err := readStraceSummary(filepath.Join(dir, fmt.Sprintf("%s-%d", side, m)), total); err != nil {
				return nil, err
			}
		}
		return total, nil
	}
	a, err := counts(short)
	if err != nil {
		return "", err
	}
	b, err := counts(long)
	if err != nil {
		return "", err
	}
	// Messages differ by (long-short) * 1.1: warm-up is a tenth of the count.
	msgs := float64(long+max(long/10, 1)) - float64(short+max(short/10, 1))
	type call struct {
		name string
		per  float64
	}
	var calls []call
	var sum float64
	for name, nb := range b {
		per := float64(nb-a[name]) / msgs
		sum += per
		if per >= 0.01 {
			calls = append(calls, call{name, per})
		}
	}
	slices.SortFunc(calls, func(x, y call) int {
		if x.per != y.per {
			if x.per > y.per {
				return -1
			}
			return 1
		}
		return strings.Compare(x.name, y.name)
	})
	var parts []string
	for i, c := range calls {
		if i == 4 {
			parts = append(parts, "...")
			break
		}
		parts = append(parts, fmt.Sprintf("%s %.2f", c.name, c.per))
	}
	return fmt.Sprintf("%.2f (%s)", sum, strings.Join(parts, ", ")), nil
}

// readStraceSummary adds the per-call counts of an strace -c table to total.
func readStraceSummary(path string, total map[string]int) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		// % time, seconds, usecs/call, calls, [errors,] syscall
		if len(fs) < 5 || len(fs) > 6 || fs[len(fs)-1] == "total" || fs[len(fs)-1] == "syscall" {
			continue
		}
		n, err := strconv.Atoi(fs[3])
		if err != nil {
			continue
		}
		total[fs[len(fs)-1]] += n
	}
	return sc.Err()
}

// batchSize is how many messages the batch variant sends and receives per
// call.
const batchSize = 16

// role runs the sender or the receiver of one variant; the socket is
// descriptor sockFD. Arguments: KEY N COUNT (send) or KEY N COUNT WARM (recv).
func role(which string, args []string) error {
	want := 3
	if which == "recv" {
		want = 4
	}
	if len(args) != want {
		return errors.New("wrong number of arguments")
	}
	nums := make([]int, len(args)-1)
	for i, a := range args[1:] {
		x, err := strconv.Atoi(a)
		if err != nil || x < 0 {
			return fmt.Errorf("bad number %q", a)
		}
		nums[i] = x
	}
	key, n := args[0], nums[0]
	if n < 1 || n > 253 {
		return fmt.Errorf("%d descriptors: want 1 to 253", n)
	}
	if which == "send" {
		return send(key, n, nums[1])
	}
	t, err := recv(key, n, nums[2], nums[1])
	if err != nil {
		return err
	}
	fmt.Printf("%.1f\n", t)
	return nil
}

// unixConn returns the socket as a *net.UnixConn.
func unixConn() (*net.UnixConn, error) {
	f := os.NewFile(sockFD, "socket")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, errors.New("descriptor 3 is not a Unix socket")
	}
	return uc, nil
}

func send(key string, n, count int) error {
	null, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer null.Close()
	nullFD := int(null.Fd())
	msg := []byte("fdsend!\x00")
	ints := make([]any, n)
	files := make([]any, n)
	raw := make([]int, n)
	for i := range n {
		ints[i], files[i], raw[i] = nullFD, null, nullFD
	}
	check := func(w int, err error) error {
		if err == nil && w != msgLen {
			err = fmt.Errorf("short write: %d bytes", w)
		}
		return err
	}
	if key == "core-int" {
		for range count {
			if err := check(fdsend.SendMsg(sockFD, msg, ints, 0)); err != nil {
				return err
			}
		}
		return nil
	}
	uc, err := unixConn()
	if err != nil {
		return err
	}
	defer uc.Close()
	switch key {
	case "core-uc", "core-uc-closefds":
		for range count {
			if err := check(fdsend.SendMsg(uc, msg, ints, 0)); err != nil {
				return err
			}
		}
	case "std":
		oob := syscall.UnixRights(raw...)
		for range count {
			w, _, err := uc.WriteMsgUnix(msg, oob, nil)
			if err := check(w, err); err != nil {
				return err
			}
		}
	case "core-uc-pp":
		buf := make([]byte, msgLen)
		got := make([]int, n)
		for range count {
			if err := check(fdsend.SendMsg(uc, msg, ints, 0)); err != nil {
				return err
			}
			r, nfds, _, err := fdsend.RecvMsg(uc, buf, got, 0)
			if err != nil {
				return err
			}
			if r != msgLen || nfds != n {
				return fmt.Errorf("reply of %d bytes and %d descriptors", r, nfds)
			}
			for _, fd := range got[:nfds] {
				syscall.Close(fd)
			}
		}
	case "std-pp":
		oob := syscall.UnixRights(raw...)
		buf := make([]byte, msgLen)
		roob := make([]byte, syscall.CmsgSpace(4*n))
		for range count {
			w, _, err := uc.WriteMsgUnix(msg, oob, nil)
			if err := check(w, err); err != nil {
				return err
			}
			got, err := stdRead(uc, buf, roob)
			if err != nil {
				return err
			}
			for _, fd := range got {
				syscall.Close(fd)
			}
		}
	case "batch", "batch-closefds":
		msgs := make([]fdsend.Msg, batchSize)
		for i := range msgs {
			msgs[i] = fdsend.Msg{Data: msg, FDs: raw}
		}
		for left := count; left > 0; {
			b := msgs[:min(left, len(msgs))]
			k, err := fdsend.SendMsgs(uc, b, 0)
			if err != nil {
				return err
			}
			left -= k
		}
	case "conn-files", "conn-ints":
		c := fdsend.NewConn(uc)
		fs := files
		if key == "conn-ints" {
			fs = ints
		}
		for range count {
			if err := c.WriteMsg(msg, fs...); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("unknown variant %q", key)
	}
	return nil
}

func recv(key string, n, count, warm int) (float64, error) {
	buf := make([]byte, msgLen)
	fds := make([]int, n)
	var t0 time.Time
	check := func(r, nfds int) error {
		if r != msgLen || nfds != n {
			return fmt.Errorf("got %d bytes and %d descriptors, want %d and %d", r, nfds, msgLen, n)
		}
		return nil
	}
	closeLoop := func(fds []int) error {
		for _, fd := range fds {
			if err := syscall.Close(fd); err != nil {
				return os.NewSyscallError("close", err)
			}
		}
		return nil
	}
	// recvCore and recvStd receive one message of msgLen bytes and n
	// descriptors with fdsend and with package net and syscall alone.
	recvCore := func(uc *net.UnixConn) ([]int, error) {
		r, nfds, _, err := fdsend.RecvMsg(uc, buf, fds, 0)
		if err != nil {
			return nil, err
		}
		if err := check(r, nfds); err != nil {
			closeLoop(fds[:nfds])
			return nil, err
		}
		return fds[:nfds], nil
	}
	stdOOB := make([]byte, syscall.CmsgSpace(4*n))
	recvStd := func(uc *net.UnixConn) ([]int, error) {
		got, err := stdRead(uc, buf, stdOOB)
		if err != nil {
			return nil, err
		}
		if err := check(msgLen, len(got)); err != nil {
			closeLoop(got)
			return nil, err
		}
		return got, nil
	}
	var step func() error
	var stepN func() (int, error) // a receive of several messages (batch)
	if key == "core-int" {
		step = func() error {
			r, nfds, _, err := fdsend.RecvMsg(sockFD, buf, fds, 0)
			if err != nil {
				return err
			}
			if err := check(r, nfds); err != nil {
				return err
			}
			return closeLoop(fds[:nfds])
		}
	} else {
		uc, err := unixConn()
		if err != nil {
			return 0, err
		}
		defer uc.Close()
		switch key {
		case "core-uc", "core-uc-closefds":
			closer := closeLoop
			if key == "core-uc-closefds" {
				closer = fdsend.CloseFDs
			}
			step = func() error {
				got, err := recvCore(uc)
				if err != nil {
					return err
				}
				return closer(got)
			}
		case "std":
			step = func() error {
				got, err := recvStd(uc)
				if err != nil {
					return err
				}
				return closeLoop(got)
			}
		case "core-uc-pp":
			step = func() error {
				got, err := recvCore(uc)
				if err != nil {
					return err
				}
				if _, err := fdsend.SendMsg(uc, buf, fdArgs(got), 0); err != nil {
					return err
				}
				return closeLoop(got)
			}
		case "std-pp":
			step = func() error {
				got, err := recvStd(uc)
				if err != nil {
					return err
				}
				if _, _, err := uc.WriteMsgUnix(buf, syscall.UnixRights(got...), nil); err != nil {
					return err
				}
				return closeLoop(got)
			}
		case "batch", "batch-closefds":
			msgs := make([]fdsend.Msg, batchSize)
			for i := range msgs {
				msgs[i] = fdsend.Msg{Data: make([]byte, msgLen), FDs: make([]int, n)}
			}
			all := make([]int, 0, batchSize*n)
			stepN = func() (int, error) {
				k, err := fdsend.RecvMsgs(uc, msgs, 0)
				if err != nil {
					return 0, err
				}
				if last := msgs[k-1]; last.N == 0 && last.NFDs == 0 {
					k-- // the sender has closed: the end of its messages
					if k == 0 {
						return 0, errors.New("the sender closed early")
					}
				}
				all = all[:0]
				var bad error
				for _, m := range msgs[:k] {
					if err := check(m.N, m.NFDs); err != nil && bad == nil {
						bad = err
					}
					all = append(all, m.FDs[:m.NFDs]...)
				}
				if bad != nil {
					closeLoop(all)
					return 0, bad
				}
				if key == "batch-closefds" {
					// One close_range for the whole batch: the kernel
					// gave its descriptors consecutive numbers.
					return k, fdsend.CloseFDs(all)
				}
				return k, closeLoop(all)
			}
		case "conn-ints":
			c := fdsend.NewConn(uc)
			var data []byte
			var got []int
			step = func() error {
				var err error
				data, got, err = c.ReadMsgFDs(data[:0], got[:0])
				if err != nil {
					return err
				}
				if err := check(len(data), len(got)); err != nil {
					closeLoop(got)
					return err
				}
				return closeLoop(got)
			}
		case "conn-files":
			c := fdsend.NewConn(uc)
			step = func() error {
				data, files, err := c.ReadMsg()
				if err != nil {
					return err
				}
				for _, f := range files {
					if err := f.Close(); err != nil {
						return err
					}
				}
				return check(len(data), len(files))
			}
		default:
			return 0, fmt.Errorf("unknown variant %q", key)
		}
	}
	if stepN == nil {
		stepN = func() (int, error) { return 1, step() }
	}
	got, start := 0, 0
	for got < warm+count {
		if got >= warm && t0.IsZero() {
			t0, start = time.Now(), got
		}
		k, err := stepN()
		if err != nil {
			return 0, err
		}
		got += k
	}
	return float64(time.Since(t0).Nanoseconds()) / float64(got-start), nil
}

// stdRead reads one message of msgLen bytes with package net and syscall
// alone, as a program without fdsend would, and returns its descriptors.
func stdRead(uc *net.UnixConn, buf, oob []byte) ([]int, error) {
	r, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	cms, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, err
	}
	var got []int
	for i := range cms {
		fs, err := syscall.ParseUnixRights(&cms[i])
		if err != nil {
			return nil, err
		}
		got = append(got, fs...)
	}
	if r != msgLen {
		for _, fd := range got {
			syscall.Close(fd)
		}
		return nil, fmt.Errorf("read %d bytes, want %d", r, msgLen)
	}
	return got, nil
}

// fdArgs is fds as SendMsg's files, in a slice kept between calls.
var fdArgsBuf []any

func fdArgs(fds []int) []any {
	fdArgsBuf = fdArgsBuf[:0]
	for _, fd := range fds {
		fdArgsBuf = append(fdArgsBuf, fd)
	}
	return fdArgsBuf
}
