package fdstore

import (
	"fmt"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

const supported = true

// watcher reports stored descriptors that hang up. It is an epoll instance
// of its own, registered in turn with the runtime's network poller, so that
// waiting for events holds no thread and Close ends the wait. Each stored
// descriptor is added with no events requested: epoll always reports
// EPOLLHUP and EPOLLERR, which is exactly what systemd watches for.
type watcher struct {
	f  *os.File
	rc syscall.RawConn
}

func newWatcher() (*watcher, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	f := os.NewFile(uintptr(fd), "fdstore-epoll") // non-blocking: the runtime polls it
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &watcher{f: f, rc: rc}, nil
}

// add watches f, reporting events under id. ok is false, with no error,
// when f cannot be polled (a regular file or directory: EPERM), as systemd
// accepts.
func (w *watcher) add(f *os.File, id uint64) (ok bool, err error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return false, err
	}
	ev := unix.EpollEvent{Events: 0, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
	var cerr error
	werr := w.rc.Control(func(epfd uintptr) {
		err = rc.Control(func(fd uintptr) {
			cerr = unix.EpollCtl(int(epfd), unix.EPOLL_CTL_ADD, int(fd), &ev)
		})
	})
	switch {
	case werr != nil:
		return false, werr
	case err != nil:
		return false, err
	case cerr == unix.EPERM:
		return false, nil
	case cerr != nil:
		return false, os.NewSyscallError("epoll_ctl", cerr)
	}
	return true, nil
}

// del stops watching f. It must run before f is closed: epoll keeps a
// registration as long as the open file lives, and a child may hold it.
func (w *watcher) del(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = w.rc.Control(func(epfd uintptr) {
		_ = rc.Control(func(fd uintptr) {
			_ = unix.EpollCtl(int(epfd), unix.EPOLL_CTL_DEL, int(fd), nil)
		})
	})
}

// run calls hangup for each event until close, or until hangup returns
// false. hangup may call del.
func (w *watcher) run(hangup func(id uint64, events uint32) bool) {
	var evs [32]unix.EpollEvent
	_ = w.rc.Read(func(epfd uintptr) bool {
		for {
			n, err := unix.EpollWait(int(epfd), evs[:], 0)
			if err == unix.EINTR {
				continue
			}
			if err != nil || n <= 0 {
				return false // wait for the poller to say there are events
			}
			for _, ev := range evs[:n] {
				if !hangup(uint64(uint32(ev.Fd))|uint64(uint32(ev.Pad))<<32, ev.Events) {
					return true
				}
			}
		}
	})
}

// close ends run and releases the epoll instance with its registrations.
func (w *watcher) close() { w.f.Close() }

// eventNames spells an epoll event mask for the log.
func eventNames(ev uint32) string {
	var names []string
	if ev&unix.EPOLLHUP != 0 {
		names = append(names, "EPOLLHUP")
	}
	if ev&unix.EPOLLERR != 0 {
		names = append(names, "EPOLLERR")
	}
	if len(names) == 0 {
		return fmt.Sprintf("events %#x", ev)
	}
	return strings.Join(names, "|")
}

// sameFile reports whether a and b are descriptors of one open file
// description: F_DUPFD_QUERY (Linux 6.10), else kcmp(2) as systemd does.
// When neither can tell, they are taken to differ.
func sameFile(a, b *os.File) bool {
	same := false
	withFDs(a, b, func(fa, fb int) {
		if fa == fb {
			same = true
			return
		}
		r, err := unix.FcntlInt(uintptr(fa), unix.F_DUPFD_QUERY, fb)
		if err == nil {
			same = r == 1
			return
		}
		pid := uintptr(os.Getpid())
		r1, _, e := unix.Syscall6(unix.SYS_KCMP, pid, pid, kcmpFile, uintptr(fa), uintptr(fb), 0)
		same = e == 0 && r1 == 0
	})
	return same
}

// kcmpFile is KCMP_FILE of <linux/kcmp.h>.
const kcmpFile = 0

// withFDs runs fn with the descriptor numbers of a and b held open.
func withFDs(a, b *os.File, fn func(fa, fb int)) {
	ra, err := a.SyscallConn()
	if err != nil {
		return
	}
	rb, err := b.SyscallConn()
	if err != nil {
		return
	}
	_ = ra.Control(func(fa uintptr) {
		_ = rb.Control(func(fb uintptr) { fn(int(fa), int(fb)) })
	})
}
