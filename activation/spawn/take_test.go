//go:build linux

package spawn

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fdsend/fdsend/activation"
	"github.com/fdsend/fdsend/activation/internal/acttest"
	"github.com/fdsend/fdsend/internal/fdtest"
)

// apiResult is what the "api" child prints: one line per check.
type apiResult struct {
	Lines []string
}

// childAPI exercises the package-level taking functions on descriptors
// inherited through Command, and reports what each returned.
func childAPI() {
	var res apiResult
	say := func(format string, args ...any) { res.Lines = append(res.Lines, fmt.Sprintf(format, args...)) }
	errStr := func(err error) string {
		if err == nil {
			return "ok"
		}
		return err.Error()
	}
	_, err := activation.Listener("web")
	say("Listener(web): %s", errStr(err))
	ls, err := activation.Listeners("web")
	say("Listeners(web): %d %s", len(ls), errStr(err))
	for _, l := range ls {
		l.(*net.TCPListener).SetDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := l.Accept()
		say("Accept with deadline: %v", errors.Is(err, os.ErrDeadlineExceeded))
		l.Close()
	}
	_, err = activation.Listeners("web")
	say("Listeners(web) again: %s", errStr(err))
	_, err = activation.ListenOrInherit("web", "tcp", "127.0.0.1:0")
	say("ListenOrInherit(web) after taking: %s", errStr(err))
	_, err = activation.Listener("dns")
	say("Listener(dns): %s", errStr(err))
	pc, err := activation.PacketConn("dns")
	say("PacketConn(dns): %s", errStr(err))
	if pc != nil {
		pc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, _, err := pc.ReadFrom(make([]byte, 1))
		say("ReadFrom with deadline: %v", errors.Is(err, os.ErrDeadlineExceeded))
		pc.Close()
	}
	f, err := activation.TakeFile("state")
	say("TakeFile(state): %s", errStr(err))
	if f != nil {
		b, _ := io.ReadAll(f)
		say("state: %s", b)
		f.Close()
	}
	c, err := activation.Conn("conn")
	say("Conn(conn): %s", errStr(err))
	if c != nil {
		fmt.Fprintf(c, "hi from %d\n", os.Getpid())
		c.Close()
	}
	_, err = activation.TakeFile("nope")
	say("TakeFile(nope): %v %s", errors.Is(err, activation.ErrNotInherited), errStr(err))
	fs, err := activation.Files()
	say("Files: %d %s", len(fs), errStr(err))
	var open []int
	for _, s := range acttest.OpenFDs() {
		if s.FD >= 3 && s.FD <= 7 && !strings.HasPrefix(s.Target, "anon_inode:") && !strings.HasPrefix(s.Target, "/sys/") {
			open = append(open, s.FD)
		}
	}
	say("inherited still open: %v", open)
	json.NewEncoder(os.Stdout).Encode(res)
}

// TestTakingInChild runs the package-level functions in a child that
// inherited descriptors through Command.
func TestTakingInChild(t *testing.T) {
	fdtest.Check(t)
	w1, w2 := acttest.ListenTCP(t), acttest.ListenTCP(t)
	udp := acttest.ListenUDP(t)
	state := tempFile(t)
	state.WriteString("saved")
	state.Seek(0, 0)
	a, b := acttest.StreamPair(t)
	cmd := roleCommand(t, []NamedFile{{"web", w1}, {"web", w2}, {"dns", udp}, {"state", state}, {"conn", b}}, acttest.Exe(t), "api")
	res := acttest.Decode[apiResult](t, acttest.RunChild(t, cmd))
	want := []string{
		`Listener(web): activation: 2 descriptors are named "web" (descriptor 3 "web", descriptor 4 "web"): take them all with the plural form`,
		`Listeners(web): 2 ok`,
		`Accept with deadline: true`,
		`Accept with deadline: true`,
		`Listeners(web) again: activation: descriptor 3 "web" has been taken already (each inherited descriptor can be taken once)`,
		`ListenOrInherit(web) after taking: activation: descriptor 3 "web" has been taken already (each inherited descriptor can be taken once)`,
		`Listener(dns): activation: descriptor 5 "dns" is an IPv4 datagram socket, not a listening socket`,
		`PacketConn(dns): ok`,
		`ReadFrom with deadline: true`,
		`TakeFile(state): ok`,
		`state: saved`,
		`Conn(conn): ok`,
		`TakeFile(nope): true activation: no inherited descriptor has that name: "nope" (inherited: descriptor 3 "web" (taken), descriptor 4 "web" (taken), descriptor 5 "dns" (taken), descriptor 6 "state" (taken), descriptor 7 "conn" (taken))`,
		`Files: 5 ok`,
		`inherited still open: []`,
	}
	if strings.Join(res.Lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("child said:\n%s\nwant:\n%s", strings.Join(res.Lines, "\n"), strings.Join(want, "\n"))
	}
	a.SetReadDeadline(time.Now().Add(acttest.ChildTimeout))
	line, err := bufio.NewReader(a).ReadString('\n')
	if want := "hi from " + strconv.Itoa(cmd.Process.Pid) + "\n"; line != want || err != nil {
		t.Errorf("conn: %q %v, want %q", line, err, want)
	}
}
