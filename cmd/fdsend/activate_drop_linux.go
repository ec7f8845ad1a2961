//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/fdsend/fdsend/activation"
	"github.com/fdsend/fdsend/internal/addr"
	"github.com/fdsend/fdsend/internal/envvar"
	"github.com/fdsend/fdsend/internal/fdname"
	"golang.org/x/sys/unix"
)

// handoverEnv carries, into the launcher exec'd with fewer capabilities,
// the sockets it had open before the exec (see dropCapabilities).
const handoverEnv = "FDSEND_ACTIVATE_HANDOVER"

// keptCaps are the capabilities a launcher that runs its children as
// another user keeps: to start each child as that user (the trampoline sets
// groups, group and user: CAP_SETGID, CAP_SETUID), to signal it (CAP_KILL),
// to lend it a notify or store socket (CAP_CHOWN, CAP_FOWNER), and to reach
// files as root did, for COMMAND and a --build (CAP_DAC_OVERRIDE,
// CAP_DAC_READ_SEARCH). Everything else — binding low ports, mounting,
// tracing, loading modules, raw sockets and the rest — is dropped from the
// bounding set, so neither the launcher nor anything it starts can have it.
var keptCaps = []int{unix.CAP_CHOWN, unix.CAP_DAC_OVERRIDE, unix.CAP_DAC_READ_SEARCH, unix.CAP_FOWNER, unix.CAP_KILL, unix.CAP_SETGID, unix.CAP_SETUID}

// keptCapNames names keptCaps for the log.
func keptCapNames() string {
	names := map[int]string{unix.CAP_CHOWN: "CAP_CHOWN", unix.CAP_DAC_OVERRIDE: "CAP_DAC_OVERRIDE", unix.CAP_DAC_READ_SEARCH: "CAP_DAC_READ_SEARCH",
		unix.CAP_FOWNER: "CAP_FOWNER", unix.CAP_KILL: "CAP_KILL", unix.CAP_SETGID: "CAP_SETGID", unix.CAP_SETUID: "CAP_SETUID"}
	var s []string
	for _, c := range keptCaps {
		s = append(s, names[c])
	}
	return strings.Join(s, ", ")
}

// handover is what the launcher passes to itself across the exec.
type handover struct {
	Inherited []handedFile    `json:"inherited"`
	Listeners []addr.Handover `json:"listeners"`
}

// willDropCapabilities reports whether this launcher, running its children
// as user, is one that dropCapabilities will exec: root, and not exec'd by
// it already.
func willDropCapabilities(user bool) bool {
	_, handed := os.LookupEnv(handoverEnv)
	return user && !handed && os.Geteuid() == 0
}

// keptMask is keptCaps as the bits of /proc/PID/status's Cap lines.
func keptMask() uint64 {
	var m uint64
	for _, c := range keptCaps {
		m |= 1 << c
	}
	return m
}

// capsNow describes the capabilities this process has, for the log: the
// kept ones by name if that is exactly what it has.
func capsNow() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "(unknown: " + err.Error() + ")"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			eff, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err == nil && eff == keptMask() {
				return keptCapNames()
			}
			return "CapEff=" + strings.TrimSpace(v) + ", more than " + keptCapNames()
		}
	}
	return "(unknown)"
}

// handedFile is a descriptor the launcher inherited through LISTEN_FDS.
type handedFile struct {
	FD   int    `json:"fd"`
	Name string `json:"name"`
}

func (h *handover) inherited() []activation.File {
	files := make([]activation.File, len(h.Inherited))
	for i, f := range h.Inherited {
		files[i] = activation.File{Name: f.Name, File: os.NewFile(uintptr(f.FD), "inherited:"+f.Name)}
	}
	return files
}

// takeHandover reads (and removes) handoverEnv: handed is set when this
// launcher is the one dropCapabilities exec'd. Every descriptor it names
// must be open; each is made close-on-exec again.
func takeHandover() (h *handover, handed bool, err error) {
	v, ok := os.LookupEnv(handoverEnv)
	if !ok {
		return nil, false, nil
	}
	os.Unsetenv(handoverEnv)
	h = new(handover)
	if err := json.Unmarshal([]byte(v), h); err != nil {
		return nil, false, fmt.Errorf("%s: %v", handoverEnv, err)
	}
	fds := make([]int, 0, len(h.Inherited)+len(h.Listeners))
	for _, f := range h.Inherited {
		if err := fdname.Check(f.Name); err != nil {
			return nil, false, fmt.Errorf("%s: %v", handoverEnv, err)
		}
		fds = append(fds, f.FD)
	}
	for _, l := range h.Listeners {
		fds = append(fds, l.FD)
	}
	for _, fd := range fds {
		if fd < 3 {
			return nil, false, fmt.Errorf("%s: descriptor %d", handoverEnv, fd)
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
			return nil, false, fmt.Errorf("%s: descriptor %d: %w", handoverEnv, fd, err)
		}
	}
	return h, true, nil
}

// dropCapabilities drops from the bounding set every capability but
// keptCaps, on a thread of its own, and from that thread execs this
// program again in place (same process, same pid, same arguments), which,
// running as root, then has exactly the bounding set as its capabilities.
// The sockets already open go across the exec by number (handoverEnv). It
// returns only if that cannot be done: not root, or the kernel refuses
// (a container without CAP_SETPCAP); nothing has changed then.
//
// The caller has not asked for any signal yet (signal.Notify): until the
// new program does, a signal has its default effect (SIGTERM ends the
// launcher, as it would any program starting up), and none is received
// by the old program only to be lost in the exec.
func dropCapabilities(inherited []activation.File, listeners []*addr.Listener) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("not running as root")
	}
	h := handover{}
	var fds []int
	for _, f := range inherited {
		fd := int(f.File.Fd())
		h.Inherited = append(h.Inherited, handedFile{FD: fd, Name: f.Name})
		fds = append(fds, fd)
	}
	for _, l := range listeners {
		fd := int(l.File.Fd())
		h.Listeners = append(h.Listeners, l.Handover(fd))
		fds = append(fds, fd)
	}
	spec, err := json.Marshal(h)
	if err != nil {
		return err
	}
	last := 40
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			last = n
		}
	}
	env := envvar.Without(os.Environ(), func(name string) bool { return fdname.IsListenVar(name) || name == handoverEnv })
	env = append(env, handoverEnv+"="+string(spec))
	done := make(chan error)
	go func() {
		// The bounding set is the thread's: this thread drops it and
		// execs. If it fails half-way the thread is not given back to the
		// runtime (the goroutine ends locked), so no other work runs with
		// a set cut short.
		runtime.LockOSThread()
		keep := map[int]bool{}
		for _, c := range keptCaps {
			keep[c] = true
		}
		for c := 0; c <= last; c++ {
			if keep[c] {
				continue
			}
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
				done <- os.NewSyscallError("prctl(PR_CAPBSET_DROP)", err)
				return
			}
		}
		// After the exec root's capabilities are the bounding set and the
		// inheritable one; the inheritable and ambient sets are emptied so
		// that nothing comes back through them.
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && err != unix.EINVAL {
			done <- os.NewSyscallError("prctl(PR_CAP_AMBIENT_CLEAR_ALL)", err)
			return
		}
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			done <- os.NewSyscallError("capget", err)
			return
		}
		data[0].Inheritable, data[1].Inheritable = 0, 0
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			done <- os.NewSyscallError("capset", err)
			return
		}
		for _, fd := range fds {
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
				done <- os.NewSyscallError("fcntl", err)
				return
			}
		}
		err := syscall.Exec("/proc/self/exe", os.Args, env)
		done <- os.NewSyscallError("execve", err)
	}()
	err = <-done
	for _, fd := range fds {
		unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
	}
	return err
}
