//go:build linux

package procfd

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/fdsend/fdsend/internal/fdtest"
)

const roleEnv = "PROCFD_TEST_ROLE"

func TestMain(m *testing.M) {
	fdtest.RunChild(roleEnv, map[string]func() error{
		"hold": hold,
		"take": take,
	})
	os.Exit(m.Run())
}

// hold is a process that knows nothing of procfd: it listens on TCP
// 127.0.0.1 and on a Unix socket in $PROCFD_TEST_DIR, writes "ADDR PATH"
// and serves "hello\n" to every connection until its standard input ends.
func hold() error {
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	path := filepath.Join(os.Getenv("PROCFD_TEST_DIR"), "s.sock")
	ul, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	for _, l := range []net.Listener{tl, ul} {
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Write([]byte("hello\n"))
				c.Close()
			}
		}()
	}
	fmt.Printf("%s %s\n", tl.Addr(), path)
	bufio.NewReader(os.Stdin).ReadString('\n')
	return nil
}

// take opens $PROCFD_TEST_PID and tries to take its descriptor 0, then to
// list them; it writes a line each: "EPERM <error>" or "list EACCES
// <error>" when refused as expected, "TAKEN" or "LISTED" otherwise.
func take() error {
	pid, err := strconv.Atoi(os.Getenv("PROCFD_TEST_PID"))
	if err != nil {
		return err
	}
	p, err := Open(pid)
	if err != nil {
		return err
	}
	defer p.Close()
	f, err := p.TakeFD(0)
	switch {
	case err == nil:
		f.Close()
		fmt.Println("TAKEN")
	case errors.Is(err, syscall.EPERM):
		fmt.Println("EPERM " + err.Error())
	default:
		fmt.Println("OTHER " + err.Error())
	}
	if _, err := p.List(); errors.Is(err, syscall.EACCES) {
		fmt.Println("list EACCES " + err.Error())
	} else {
		fmt.Printf("LISTED %v\n", err)
	}
	return nil
}

func itoa(n int) string { return strconv.Itoa(n) }
