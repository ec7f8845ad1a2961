//go:build linux

package fdsend

import (
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"syscall"
	"testing"

	"github.com/fdsend/fdsend/internal/fdtest"
	"golang.org/x/sys/unix"
)

// TestConnControlRoom: a Conn's receive buffer has room for exactly the
// descriptors its read limit allows, whatever headers the socket's options
// add before them: Linux fills any spare room with more descriptors, so a
// padded or oversized buffer let one receive install more than the limit
// (two for a limit of one; dozens with SO_PASSCRED set).
func TestConnControlRoom(t *testing.T) {
	fdtest.Check(t)
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	for _, opts := range [][]int{nil, {unix.SO_PASSCRED}, {unix.SO_PASSCRED, unix.SO_PASSPIDFD}} {
		for _, n := range []int{0, 1, 2, 3, 64, 253} {
			t.Run(fmt.Sprintf("%v/%d", opts, n), func(t *testing.T) {
				a, b, err := Socketpair(syscall.SOCK_STREAM)
				if err != nil {
					t.Fatal(err)
				}
				defer a.Close()
				defer b.Close()
				rc, _ := b.SyscallConn()
				rc.Control(func(fd uintptr) {
					for _, o := range opts {
						if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o, 1); err != nil {
							t.Skipf("setsockopt %d: %v", o, err)
						}
					}
				})
				c := NewConn(b)
				if err := c.checkType(); err != nil {
					t.Fatal(err)
				}
				// The peer sends more than fit: n+5 descriptors.
				files := make([]any, min(n+5, maxFilesPerMsg))
				for i := range files {
					files[i] = null
				}
				if _, err := Send(a, []byte("x"), files...); err != nil {
					t.Fatal(err)
				}
				oob := make([]byte, c.ctlLen(n))
				var got int
				rc.Read(func(fd uintptr) bool {
					_, oobn, _, _, err := unix.Recvmsg(int(fd), make([]byte, 1), oob, unix.MSG_CMSG_CLOEXEC)
					if err != nil {
						t.Fatal(err)
					}
					msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
					if err != nil {
						t.Fatal(err)
					}
					for _, m := range msgs {
						if fds, err := unix.ParseUnixRights(&m); err == nil {
							got += len(fds)
							for _, fd := range fds {
								unix.Close(fd)
							}
						} else if m.Header.Type == unix.SCM_PIDFD {
							unix.Close(int(int32(binary.NativeEndian.Uint32(m.Data))))
						}
					}
					return true
				})
				// A pidfd header comes after the descriptors: its room
				// (CmsgSpace(4), 24 bytes) may take six more.
				want, most := n, n
				if slices.Contains(opts, unix.SO_PASSPIDFD) {
					most = n + 6
				}
				if got < want || got > most {
					t.Errorf("a receive sized for %d descriptors installed %d", n, got)
				}
			})
		}
	}
}
