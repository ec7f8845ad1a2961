//go:build linux

package fdsend_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/fdtest"
	"golang.org/x/sys/unix"
)

// batchFiles is how many distinct files a batch test passes around: the
// child gets them as descriptors 4.. and the socket as 3.
const batchFiles = 4

// batchMsg is message i of a test batch on a socket of type typ: its data
// and which of the batchFiles files (by index) it carries. On a stream
// socket every message carries one, so reads keep message boundaries (a
// read ends after a message with descriptors).
func batchMsg(typ, i int) (data string, files []int) {
	n := i % 3
	if typ == unix.SOCK_STREAM {
		n++
	}
	for j := range n {
		files = append(files, (i+j)%batchFiles)
	}
	data = fmt.Sprintf("message %d", i)
	if typ != unix.SOCK_STREAM && i%5 == 4 {
		data = "" // an empty message carries its files alone
	}
	return data, files
}

const batchCount = 40

func init() {
	// batch-send sends batchCount messages with SendMsgs on descriptor 3,
	// in batches of 7, its files taken from descriptors 4...
	children["batch-send"] = func() error {
		typ, _ := strconv.Atoi(os.Getenv("FDSEND_TEST_TYPE"))
		msgs := make([]fdsend.Msg, 0, 7)
		for i := 0; i < batchCount; {
			msgs = msgs[:0]
			for ; i < batchCount && len(msgs) < cap(msgs); i++ {
				data, files := batchMsg(typ, i)
				fds := make([]int, len(files))
				for j, f := range files {
					fds[j] = 4 + f
				}
				msgs = append(msgs, fdsend.Msg{Data: []byte(data), FDs: fds})
			}
			n, err := fdsend.SendMsgs(3, msgs, 0)
			if err != nil || n != len(msgs) {
				return fmt.Errorf("SendMsgs: %d of %d, %v", n, len(msgs), err)
			}
		}
		return nil
	}
	// batch-recv receives batchCount messages with RecvMsgs on descriptor 3
	// and prints, a line each, the data and the inode of each descriptor.
	children["batch-recv"] = func() error {
		msgs := make([]fdsend.Msg, 6)
		for i := range msgs {
			msgs[i] = fdsend.Msg{Data: make([]byte, 64), FDs: make([]int, 4)}
		}
		for got := 0; got < batchCount; {
			n, err := fdsend.RecvMsgs(3, msgs, 0)
			if err != nil || n == 0 {
				return fmt.Errorf("RecvMsgs after %d: %d, %v", got, n, err)
			}
			for _, m := range msgs[:n] {
				if m.Flags != 0 {
					return fmt.Errorf("message %d: flags %#x", got, m.Flags)
				}
				line := fmt.Sprintf("%q", m.Data[:m.N])
				for _, fd := range m.FDs[:m.NFDs] {
					var st unix.Stat_t
					if err := unix.Fstat(fd, &st); err != nil {
						return err
					}
					line += fmt.Sprintf(" %d", st.Ino)
					unix.Close(fd)
				}
				fmt.Println(line)
				got++
			}
		}
		return nil
	}
}

// batchSetup returns a socket pair of type typ, the batchFiles files and
// their inodes, and a command for role with the pair's second end as
// descriptor 3 and the files as 4...
func batchSetup(t *testing.T, typ int, role string) (*net.UnixConn, []*os.File, []uint64, *exec.Cmd) {
	t.Helper()
	a, b := pair(t, typ)
	bf, err := b.File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bf.Close() })
	var files []*os.File
	var inos []uint64
	for i := range batchFiles {
		f := tempFile(t, fmt.Sprint(i))
		files = append(files, f)
		inos = append(inos, uint64(idOf(t, f).ino))
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+role, "FDSEND_TEST_TYPE="+strconv.Itoa(typ))
	cmd.ExtraFiles = append([]*os.File{bf}, files...)
	return a, files, inos, cmd
}

var batchTypes = []struct {
	name string
	typ  int
}{{"stream", unix.SOCK_STREAM}, {"seqpacket", unix.SOCK_SEQPACKET}, {"dgram", unix.SOCK_DGRAM}}

// A child sends batches with SendMsgs on an integer socket; the test
// receives them with RecvMsgs on a *net.UnixConn, in batches of another
// size: each message arrives whole, in order, with its own descriptors.
func TestRecvMsgsFromChild(t *testing.T) {
	for _, tc := range batchTypes {
		t.Run(tc.name, func(t *testing.T) {
			fdtest.Check(t)
			a, _, inos, cmd := batchSetup(t, tc.typ, "batch-send")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			a.SetDeadline(time.Now().Add(30 * time.Second))
			msgs := make([]fdsend.Msg, 5)
			for i := range msgs {
				msgs[i] = fdsend.Msg{Data: make([]byte, 64), FDs: make([]int, 4)}
			}
			batches := 0
			for got := 0; got < batchCount; batches++ {
				n, err := fdsend.RecvMsgs(a, msgs, 0)
				if err != nil || n == 0 {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("RecvMsgs after %d messages: %d, %v\n%s", got, n, err, stderr.String())
				}
				for _, m := range msgs[:n] {
					data, files := batchMsg(tc.typ, got)
					var ids []uint64
					for _, fd := range m.FDs[:m.NFDs] {
						if !isCloexec(t, fd) {
							t.Errorf("message %d: descriptor %d not close-on-exec", got, fd)
						}
						ids = append(ids, uint64(idOfFD(t, fd).ino))
					}
					fdsend.CloseFDs(m.FDs[:m.NFDs])
					var want []uint64
					for _, f := range files {
						want = append(want, inos[f])
					}
					if string(m.Data[:m.N]) != data || m.Flags != 0 || fmt.Sprint(ids) != fmt.Sprint(want) {
						t.Errorf("message %d: %q flags %#x files %v; want %q, files %v", got, m.Data[:m.N], m.Flags, ids, data, want)
					}
					got++
				}
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("child: %v\n%s", err, stderr.String())
			}
			t.Logf("%d messages in %d RecvMsgs calls", batchCount, batches)
		})
	}
}

// The test sends batches with SendMsgs on a *net.UnixConn; a child
// receives them with RecvMsgs on an integer socket.
func TestSendMsgsToChild(t *testing.T) {
	for _, tc := range batchTypes {
		t.Run(tc.name, func(t *testing.T) {
			fdtest.Check(t)
			a, files, inos, cmd := batchSetup(t, tc.typ, "batch-recv")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			a.SetDeadline(time.Now().Add(30 * time.Second))
			var want []string
			msgs := make([]fdsend.Msg, 0, 9)
			for i := 0; i < batchCount; {
				msgs = msgs[:0]
				for ; i < batchCount && len(msgs) < cap(msgs); i++ {
					data, which := batchMsg(tc.typ, i)
					line := fmt.Sprintf("%q", data)
					var fds []int
					for _, f := range which {
						fds = append(fds, rawFD(t, files[f]))
						line += fmt.Sprintf(" %d", inos[f])
					}
					want = append(want, line)
					msgs = append(msgs, fdsend.Msg{Data: []byte(data), FDs: fds})
				}
				n, err := fdsend.SendMsgs(a, msgs, 0)
				if err != nil || n != len(msgs) {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("SendMsgs: %d of %d: %v", n, len(msgs), err)
				}
				for j, m := range msgs {
					if m.N != len(m.Data) {
						t.Errorf("msgs[%d].N = %d, want %d", j, m.N, len(m.Data))
					}
				}
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("child: %v\n%s", err, stderr.String())
			}
			got := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("child received:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// newMsgs makes n receive slots of 64 bytes and room descriptors.
func newMsgs(n, room int) []fdsend.Msg {
	msgs := make([]fdsend.Msg, n)
	for i := range msgs {
		msgs[i] = fdsend.Msg{Data: make([]byte, 64), FDs: make([]int, room)}
	}
	return msgs
}

// Truncation is reported per message, and what did not fit is closed.
func TestRecvMsgsTruncation(t *testing.T) {
	fdtest.Check(t)
	a, b := pair(t, unix.SOCK_SEQPACKET)
	nulls := devNulls(t, 3)
	var fds []int
	for _, f := range nulls {
		fds = append(fds, rawFD(t, f.(syscall.Conn)))
	}
	long := bytes.Repeat([]byte("x"), 100)
	send := []fdsend.Msg{
		{Data: []byte("fits"), FDs: fds[:1]},
		{Data: []byte("three files"), FDs: fds},
		{Data: long, FDs: fds[:1]},
	}
	if n, err := fdsend.SendMsgs(a, send, 0); err != nil || n != 3 {
		t.Fatalf("SendMsgs: %d, %v", n, err)
	}
	msgs := newMsgs(4, 1)
	n, err := fdsend.RecvMsgs(b, msgs, 0)
	if err != nil || n != 3 {
		t.Fatalf("RecvMsgs: %d, %v", n, err)
	}
	for i, m := range msgs[:n] {
		fdsend.CloseFDs(m.FDs[:m.NFDs])
		if m.NFDs != 1 {
			t.Errorf("msgs[%d]: %d descriptors, want 1", i, m.NFDs)
		}
	}
	if msgs[0].Flags != 0 || msgs[1].Flags&unix.MSG_CTRUNC == 0 || msgs[2].Flags&unix.MSG_TRUNC == 0 || msgs[2].N != 64 {
		t.Errorf("flags %#x %#x %#x (N %d); want 0, MSG_CTRUNC, MSG_TRUNC (64)", msgs[0].Flags, msgs[1].Flags, msgs[2].Flags, msgs[2].N)
	}
}

// On a stream socket the peer's close ends the batch with one empty
// message, however many slots were left; the next call sees it again.
func TestRecvMsgsStreamEOF(t *testing.T) {
	fdtest.Check(t)
	a, b := pair(t, unix.SOCK_STREAM)
	fd := rawFD(t, devNulls(t, 1)[0].(syscall.Conn))
	send := []fdsend.Msg{{Data: []byte("one"), FDs: []int{fd}}, {Data: []byte("two"), FDs: []int{fd}}}
	if n, err := fdsend.SendMsgs(a, send, 0); err != nil || n != 2 {
		t.Fatalf("SendMsgs: %d, %v", n, err)
	}
	a.Close()
	for _, sock := range []any{b, connWrapper{b}} {
		msgs := newMsgs(8, 2)
		n, err := fdsend.RecvMsgs(sock, msgs, 0)
		for _, m := range msgs[:n] {
			fdsend.CloseFDs(m.FDs[:m.NFDs])
		}
		if _, loop := sock.(connWrapper); loop {
			if err != nil || n != 1 || msgs[0].N != 0 {
				t.Fatalf("RecvMsgs after close (loop): %d, %v", n, err)
			}
			continue
		}
		if err != nil || n != 3 || string(msgs[0].Data[:msgs[0].N]) != "one" || string(msgs[1].Data[:msgs[1].N]) != "two" || msgs[2].N != 0 || msgs[2].NFDs != 0 {
			t.Fatalf("RecvMsgs: %d, %v; want one, two and the end", n, err)
		}
	}
}

// Bad messages are refused before anything is sent; an error part-way says
// how many went; closed sockets, deadlines and MSG_DONTWAIT behave as for
// SendMsg and RecvMsg.
func TestMsgsErrors(t *testing.T) {
	fdtest.Check(t)
	a, b := pair(t, unix.SOCK_SEQPACKET)
	fd := rawFD(t, devNulls(t, 1)[0].(syscall.Conn))
	ok := fdsend.Msg{Data: []byte("ok"), FDs: []int{fd}}

	_, err := fdsend.SendMsgs(a, []fdsend.Msg{ok, {Data: []byte("x"), FDs: []int{-1}}}, 0)
	var ae *fdsend.ArgError
	if !errors.As(err, &ae) || ae.Arg != "msgs[1].FDs[0]" || !errors.Is(err, syscall.EBADF) {
		t.Errorf("negative descriptor: %v", err)
	}
	_, err = fdsend.SendMsgs(a, []fdsend.Msg{ok, {Data: []byte("x"), FDs: make([]int, 254)}}, 0)
	if !errors.As(err, &ae) || ae.Arg != "msgs[1].FDs" || !errors.Is(err, syscall.EINVAL) {
		t.Errorf("254 descriptors: %v", err)
	}
	// Nothing of those two went.
	if _, err := fdsend.RecvMsgs(b, newMsgs(2, 1), unix.MSG_DONTWAIT); !errors.Is(err, syscall.EAGAIN) {
		t.Errorf("after refused batches, RecvMsgs(MSG_DONTWAIT) = %v, want EAGAIN", err)
	}

	// A descriptor that is not open: the two before it went.
	n, err := fdsend.SendMsgs(a, []fdsend.Msg{ok, ok, {Data: []byte("bad"), FDs: []int{1 << 20}}, ok}, 0)
	if n != 2 || !errors.Is(err, syscall.EBADF) || !strings.Contains(err.Error(), "message 2") {
		t.Errorf("SendMsgs with a closed descriptor in message 2: %d, %v", n, err)
	}
	msgs := newMsgs(4, 1)
	n, err = fdsend.RecvMsgs(b, msgs, 0)
	for _, m := range msgs[:n] {
		fdsend.CloseFDs(m.FDs[:m.NFDs])
	}
	if n != 2 || err != nil {
		t.Errorf("RecvMsgs after the partial batch: %d, %v; want 2", n, err)
	}

	// Descriptors without data on a stream socket: refused, nothing sent.
	s1, s2 := pair(t, unix.SOCK_STREAM)
	_, err = fdsend.SendMsgs(s1, []fdsend.Msg{ok, {FDs: []int{fd}}}, 0)
	if !errors.As(err, &ae) || ae.Arg != "msgs[1].Data" || !errors.Is(err, syscall.EINVAL) {
		t.Errorf("files without data on a stream socket: %v", err)
	}
	if _, err := fdsend.RecvMsgs(s2, newMsgs(1, 1), unix.MSG_DONTWAIT); !errors.Is(err, syscall.EAGAIN) {
		t.Errorf("after a refused stream batch: %v, want EAGAIN", err)
	}

	// A deadline ends a wait; Close unblocks one.
	b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := fdsend.RecvMsgs(b, newMsgs(2, 1), 0); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("RecvMsgs past its deadline: %v", err)
	}
	b.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := fdsend.RecvMsgs(b, newMsgs(2, 1), 0)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	b.Close()
	awaitErr(t, done, net.ErrClosed, "Close did not unblock RecvMsgs")
	if _, err := fdsend.SendMsgs(b, []fdsend.Msg{ok}, 0); !errors.Is(err, net.ErrClosed) {
		t.Errorf("SendMsgs on a closed conn: %v", err)
	}
	if _, err := fdsend.SendMsgs(42424, []fdsend.Msg{ok}, 0); !errors.Is(err, syscall.EBADF) {
		t.Errorf("SendMsgs on a closed number: %v", err)
	}
	var nilConn *net.UnixConn
	if _, err := fdsend.RecvMsgs(nilConn, newMsgs(1, 1), 0); !errors.As(err, &ae) || ae.Arg != "sock" {
		t.Errorf("RecvMsgs on a nil conn: %v", err)
	}
}

// On a stream socket a long message goes whole, in as many calls as the
// socket's small buffer takes, and the messages after it follow; with
// MSG_DONTWAIT the batch stops where the socket is full, and N says how much
// of the last message went. The peer reads exactly the bytes the Ns count.
func TestSendMsgsStreamPartial(t *testing.T) {
	fdtest.Check(t)
	a, b := pair(t, unix.SOCK_STREAM)
	fd := rawFD(t, devNulls(t, 1)[0].(syscall.Conn))
	for _, c := range []*net.UnixConn{a, b} {
		if err := c.SetWriteBuffer(4096); err != nil {
			t.Fatal(err)
		}
		if err := c.SetReadBuffer(4096); err != nil {
			t.Fatal(err)
		}
	}
	big := bytes.Repeat([]byte("B"), 1<<20)
	batch := func() []fdsend.Msg {
		return []fdsend.Msg{
			{Data: []byte("small-1"), FDs: []int{fd}},
			{Data: big, FDs: []int{fd}},
			{Data: []byte("small-2"), FDs: []int{fd}},
		}
	}
	type result struct {
		data []byte
		fds  int
		err  error
	}
	read := make(chan result, 1)
	reader := func() {
		var all []byte
		fds := 0
		buf := make([]byte, 1<<16)
		room := make([]int, 4)
		for {
			n, nfds, _, err := fdsend.RecvMsg(b, buf, room, 0)
			fdsend.CloseFDs(room[:nfds])
			fds += nfds
			if err != nil || (n == 0 && nfds == 0) {
				read <- result{all, fds, err}
				return
			}
			all = append(all, buf[:n]...)
		}
	}
	a.SetDeadline(time.Now().Add(30 * time.Second))
	var want []byte
	wantFDs := 0

	// MSG_DONTWAIT with nobody reading: it stops where the socket is full,
	// with no error since some went (as sendmmsg); a message cut there ends
	// the batch.
	msgs := batch()
	n, err := fdsend.SendMsgs(a, msgs, unix.MSG_DONTWAIT)
	if err != nil || n < 1 || n > 2 || (n == 2 && msgs[1].N == len(big)) {
		t.Fatalf("SendMsgs(MSG_DONTWAIT) into a small socket: %d, %v (Ns %d %d %d)", n, err, msgs[0].N, msgs[1].N, msgs[2].N)
	}
	if _, err := fdsend.SendMsgs(a, msgs[n:], unix.MSG_DONTWAIT); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("SendMsgs(MSG_DONTWAIT) into a full socket: %v, want EAGAIN", err)
	}
	for _, m := range msgs[:n] {
		want = append(want, m.Data[:m.N]...)
		wantFDs++
	}
	rest := msgs[n:]
	if last := msgs[n-1]; last.N < len(last.Data) {
		rest = append([]fdsend.Msg{{Data: last.Data[last.N:]}}, rest...)
	}

	go reader()
	// Blocking: the rest of that batch, then a whole one in one call.
	for _, msgs := range [][]fdsend.Msg{rest, batch()} {
		n, err := fdsend.SendMsgs(a, msgs, 0)
		if err != nil || n != len(msgs) {
			t.Fatalf("SendMsgs: %d of %d, %v", n, len(msgs), err)
		}
		for _, m := range msgs {
			if m.N != len(m.Data) {
				t.Fatalf("a blocking SendMsgs set N = %d of %d", m.N, len(m.Data))
			}
			want = append(want, m.Data...)
			wantFDs += len(m.FDs)
		}
	}
	a.CloseWrite()
	r := <-read
	if r.err != nil || !bytes.Equal(r.data, want) || r.fds != wantFDs {
		t.Fatalf("peer read %d bytes (%v), %d descriptors; want %d bytes, %d", len(r.data), r.err, r.fds, len(want), wantFDs)
	}
}

// A batch receive on a blocking integer socket under a storm of signals
// neither fails nor leaves an error pending on the socket (MSG_WAITFORONE).
func TestRecvMsgsSignalStorm(t *testing.T) {
	fdtest.Check(t)
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sp[0])
	defer unix.Close(sp[1])
	fd := rawFD(t, devNulls(t, 1)[0].(syscall.Conn))

	usr1 := make(chan os.Signal, 64)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	stop := make(chan struct{})
	stormDone := make(chan struct{})
	go func() {
		defer close(stormDone)
		for {
			select {
			case <-stop:
				return
			case <-usr1:
			default:
			}
			unix.Kill(os.Getpid(), syscall.SIGUSR1)
		}
	}()
	defer func() { close(stop); <-stormDone }()

	const count = 5000
	sent := make(chan error, 1)
	go func() {
		msgs := make([]fdsend.Msg, 3)
		for i := 0; i < count; i += len(msgs) {
			for j := range msgs {
				data := make([]byte, 8)
				binary.LittleEndian.PutUint64(data, uint64(i+j))
				msgs[j] = fdsend.Msg{Data: data, FDs: []int{fd}}
			}
			if _, err := fdsend.SendMsgs(sp[0], msgs, 0); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	msgs := newMsgs(5, 2)
	for got := 0; got < count; {
		n, err := fdsend.RecvMsgs(sp[1], msgs, 0)
		if err != nil || n == 0 {
			t.Fatalf("after %d messages: RecvMsgs: %d, %v", got, n, err)
		}
		for _, m := range msgs[:n] {
			fdsend.CloseFDs(m.FDs[:m.NFDs])
			if m.N != 8 || m.NFDs != 1 || binary.LittleEndian.Uint64(m.Data) != uint64(got) {
				t.Fatalf("message %d: %d bytes (%d), %d descriptors", got, m.N, binary.LittleEndian.Uint64(m.Data), m.NFDs)
			}
			got++
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
}

// Sockets of other kinds take the loop of single calls (the path of every
// system without sendmmsg): the same messages, flags and descriptors.
func TestMsgsLoopPath(t *testing.T) {
	fdtest.Check(t)
	a, b := pair(t, unix.SOCK_SEQPACKET)
	nulls := devNulls(t, 2)
	fds := []int{rawFD(t, nulls[0].(syscall.Conn)), rawFD(t, nulls[1].(syscall.Conn))}
	send := []fdsend.Msg{{Data: []byte("one"), FDs: fds[:1]}, {Data: []byte("two"), FDs: fds}, {Data: []byte("three")}}
	if n, err := fdsend.SendMsgs(connWrapper{a}, send, 0); err != nil || n != 3 {
		t.Fatalf("SendMsgs: %d, %v", n, err)
	}
	msgs := newMsgs(5, 1)
	n, err := fdsend.RecvMsgs(connWrapper{b}, msgs, 0)
	for _, m := range msgs[:n] {
		fdsend.CloseFDs(m.FDs[:m.NFDs])
	}
	if err != nil || n != 3 {
		t.Fatalf("RecvMsgs: %d, %v", n, err)
	}
	got := fmt.Sprintf("%s/%d/%#x %s/%d/%#x %s/%d/%#x", msgs[0].Data[:msgs[0].N], msgs[0].NFDs, msgs[0].Flags,
		msgs[1].Data[:msgs[1].N], msgs[1].NFDs, msgs[1].Flags, msgs[2].Data[:msgs[2].N], msgs[2].NFDs, msgs[2].Flags)
	if want := fmt.Sprintf("one/1/0x0 two/1/%#x three/0/0x0", unix.MSG_CTRUNC); got != want {
		t.Errorf("received %s, want %s", got, want)
	}
}

// A slot with no room for data is not the end of a stream: what the slots
// after it received is kept (it was once dropped, descriptors and all).
func TestRecvMsgsEmptySlot(t *testing.T) {
	fdtest.Check(t)
	a, b := pair(t, unix.SOCK_STREAM)
	fd := rawFD(t, devNulls(t, 1)[0].(syscall.Conn))
	if _, err := unix.Write(rawFD(t, a), []byte("abc")); err != nil {
		t.Fatal(err)
	}
	if _, err := fdsend.SendMsg(a, []byte("def"), []any{fd}, 0); err != nil {
		t.Fatal(err)
	}
	msgs := []fdsend.Msg{{FDs: make([]int, 1)}, {Data: make([]byte, 64), FDs: make([]int, 1)}}
	n, err := fdsend.RecvMsgs(b, msgs, 0)
	var got []byte
	fds := 0
	for _, m := range msgs[:n] {
		got = append(got, m.Data[:m.N]...)
		fds += m.NFDs
		fdsend.CloseFDs(m.FDs[:m.NFDs])
	}
	if err != nil || string(got) != "abcdef" || fds != 1 {
		t.Fatalf("RecvMsgs with an empty first slot: %d messages, %q, %d descriptors, %v", n, got, fds, err)
	}
}
