//go:build linux

package activation

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/fdsend/fdsend/activation/internal/acttest"
	"github.com/fdsend/fdsend/activation/internal/pidfd"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	acttest.Main(m, map[string]func(){
		"server":    childServer,
		"udpserver": childUDPServer,
		"parse":     childParse,
	})
}

// childServer serves HTTP on the listener named by ACTIVATION_TEST_NAME
// (through ListenOrInherit when ACTIVATION_TEST_OR_INHERIT is set) and
// echoes on the Unix listener "ctl" if there is one, until killed.
func childServer() {
	name := os.Getenv("ACTIVATION_TEST_NAME")
	var l net.Listener
	var err error
	if os.Getenv("ACTIVATION_TEST_OR_INHERIT") != "" {
		l, err = ListenOrInherit(name, "tcp", "127.0.0.1:0")
	} else {
		l, err = Listener(name)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(4)
	}
	if ctl, err := Listener("ctl"); err == nil {
		go func() {
			for {
				c, err := ctl.Accept()
				if err != nil {
					return
				}
				line, _ := bufio.NewReader(c).ReadString('\n')
				fmt.Fprintf(c, "ctl %d %s", os.Getpid(), line)
				c.Close()
			}
		}()
	}
	fs, _ := Files()
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.Name
	}
	http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "pid=%d names=%s path=%s", os.Getpid(), strings.Join(names, ","), r.URL.Path)
	}))
}

// childUDPServer answers every datagram on the socket named "dns".
func childUDPServer() {
	pc, err := PacketConn("dns")
	if err != nil {
		fmt.Fprintln(os.Stderr, "udpserver:", err)
		os.Exit(4)
	}
	buf := make([]byte, 512)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		pc.WriteTo(append([]byte(fmt.Sprintf("pid=%d got=", os.Getpid())), buf[:n]...), from)
	}
}

// parseCase is one case of TestMalformedEnv, as the "parse" child gets it.
type parseCase struct {
	PID     string            // "self", "other", "unset" or a literal
	PIDFDID string            // "self", "other", "" (unset) or a literal
	Env     map[string]string // LISTEN_FDS and LISTEN_FDNAMES, when set
}

// parseResult is what the "parse" child reports for a case.
type parseResult struct {
	Names       []string
	Err         string
	SecondErr   string
	Same        bool
	NewFDs      []string // descriptors open after Files that were not before
	StillOpen   []int    // inherited descriptors still open after Files
	OpenAfter   []int    // inherited descriptors open after closing the Files
	EnvAfter    []string
	PanicString string
}

// childParse runs every case of ACTIVATION_TEST_CASES on the descriptors 3
// and 4 it inherited: for each, it sets the variables (LISTEN_PID and
// LISTEN_PIDFDID here, since only the child knows its PID), parses them
// twice with a fresh set as Files does, and reports. Between cases it closes
// what was adopted and puts 3 and 4 back from copies made at start.
func childParse() {
	var cases []parseCase
	if err := json.Unmarshal([]byte(os.Getenv("ACTIVATION_TEST_CASES")), &cases); err != nil {
		panic(err)
	}
	var saved [2]int
	for i := range saved {
		fd, err := unix.FcntlInt(uintptr(listenStart+i), unix.F_DUPFD_CLOEXEC, 100)
		if err != nil {
			panic(err)
		}
		saved[i] = fd
	}
	results := make([]parseResult, len(cases))
	for i, c := range cases {
		for j, fd := range saved {
			if err := unix.Dup2(fd, listenStart+j); err != nil {
				panic(err)
			}
		}
		results[i] = parseOne(c)
	}
	json.NewEncoder(os.Stdout).Encode(results)
}

func parseOne(c parseCase) (res parseResult) {
	defer func() {
		if p := recover(); p != nil {
			res.PanicString = fmt.Sprint(p)
		}
	}()
	unsetListenVars()
	switch c.PID {
	case "self":
		os.Setenv(envPID, strconv.Itoa(os.Getpid()))
	case "other":
		os.Setenv(envPID, strconv.Itoa(os.Getppid()))
	case "unset":
	default:
		os.Setenv(envPID, c.PID)
	}
	switch c.PIDFDID {
	case "":
	case "self", "other":
		id, ok := pidfd.OwnID()
		if !ok {
			res.Err = "test: no pidfs"
			return res
		}
		if c.PIDFDID == "other" {
			id++
		}
		os.Setenv(envPIDFDID, strconv.FormatUint(id, 10))
	default:
		os.Setenv(envPIDFDID, c.PIDFDID)
	}
	for k, v := range c.Env {
		os.Setenv(k, v)
	}
	before := map[int]string{}
	for _, s := range acttest.OpenFDs() {
		before[s.FD] = s.Target
	}
	s := &set{load: loadInherited}
	fs, err := s.list(true)
	fs2, err2 := s.list(true)
	if err != nil {
		res.Err = err.Error()
	}
	if err2 != nil {
		res.SecondErr = err2.Error()
	}
	res.Same = len(fs) == len(fs2) && err == err2
	for i := range fs {
		res.Names = append(res.Names, fs[i].Name)
		if fs[i] != fs2[i] {
			res.Same = false
		}
	}
	for _, s := range acttest.OpenFDs() {
		if t, ok := before[s.FD]; !ok || t != s.Target {
			res.NewFDs = append(res.NewFDs, fmt.Sprintf("%d -> %s", s.FD, s.Target))
		}
		if s.FD >= 3 && s.FD < 5 {
			res.StillOpen = append(res.StillOpen, s.FD)
		}
	}
	for k := range acttest.ListenEnv() {
		res.EnvAfter = append(res.EnvAfter, k)
	}
	for _, f := range fs {
		f.File.Close()
	}
	for fd := listenStart; fd < listenStart+2; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			res.OpenAfter = append(res.OpenAfter, fd)
		}
	}
	return res
}
