//go:build linux

package ready

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const notifySupported = true

// Limits of one notification, as systemd has them: PIPE_BUF bytes and the
// kernel's SCM_MAX_FD descriptors.
const (
	maxMessage = 4096
	maxFiles   = 253
)

// maxAncestry bounds the walk from a sender up to the generation's process.
const maxAncestry = 64

// Start creates generation gen's socket; the Check owns it until Close.
func (p *Notify) Start(gen int) (Check, error) {
	dir, err := os.MkdirTemp(tempBase(), "fdsend-ready-")
	if err != nil {
		return nil, fmt.Errorf("ready: notify: cannot make a directory for the socket: %w", err)
	}
	// MkdirTemp made it 0700 (less the umask, which can only take away):
	// nobody else can enter it, so nothing below can be raced by path.
	addr := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("ready: notify: %w", err)
	}
	fail := func(err error) (Check, error) {
		conn.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("ready: notify: %w", err)
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return fail(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	}); err != nil {
		return fail(err)
	}
	if serr != nil {
		return fail(os.NewSyscallError("setsockopt SO_PASSCRED", serr))
	}
	if p.Owner != nil {
		// The socket becomes the owner's (connecting needs write
		// permission on it), mode 0600; the directory stays the
		// launcher's, searchable but not writable by the owner (0711), so
		// that no process of the owner can remove the socket and bind one
		// of its own in its place. The directory is changed through a
		// descriptor that is surely the one made.
		if err := os.Lchown(addr, p.Owner.UID, p.Owner.GID); err != nil {
			return fail(err)
		}
		if err := os.Chmod(addr, 0o600); err != nil {
			return fail(err)
		}
		d, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
		if err != nil {
			return fail(err)
		}
		err = d.Chmod(0o711)
		d.Close()
		if err != nil {
			return fail(err)
		}
	}
	return &notifyCheck{p: p, gen: gen, dir: dir, addr: addr, conn: conn, ready: make(chan struct{})}, nil
}

// tempBase is where the socket's directory goes: $TMPDIR, unless it is
// too long for a socket path.
func tempBase() string {
	if base := os.TempDir(); len(base) <= 64 {
		return base
	}
	return "/tmp"
}

type notifyCheck struct {
	p    *Notify
	gen  int
	dir  string
	addr string
	conn *net.UnixConn
	wg   sync.WaitGroup

	mu      sync.Mutex
	pid     int
	started bool
	closed  bool
	ready   chan struct{}
	isReady bool
	status  string
}

// Env gives the process its NOTIFY_SOCKET.
func (c *notifyCheck) Env() []string { return []string{"NOTIFY_SOCKET=" + c.addr} }

// Status returns the last STATUS= the generation sent ("" if none).
func (c *notifyCheck) Status() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// Wait starts reading the socket, now that the process is known, and waits
// for READY=1. Datagrams sent before are queued by the kernel.
func (c *notifyCheck) Wait(ctx context.Context, pid int, exited <-chan struct{}) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fmt.Errorf("ready: notify: %w", net.ErrClosed)
	}
	c.pid = pid
	if !c.started {
		c.started = true
		c.wg.Add(1)
		go c.serve()
	}
	c.mu.Unlock()
	select {
	case <-c.ready:
		return nil
	case <-exited:
		return ErrExited
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close closes the socket, waits for the reading goroutine and removes the
// directory.
func (c *notifyCheck) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	err := c.conn.Close()
	c.wg.Wait()
	if rerr := os.RemoveAll(c.dir); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("ready: notify: close: %w", err)
	}
	return nil
}

// serve reads notifications until the socket is closed.
func (c *notifyCheck) serve() {
	defer c.wg.Done()
	rc, err := c.conn.SyscallConn()
	if err != nil {
		c.p.logf("generation %d: notify socket: %v", c.gen, err)
		return
	}
	buf := make([]byte, maxMessage)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred)+unix.CmsgSpace(4*maxFiles))
	for {
		var n, oobn, flags int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			for {
				n, oobn, flags, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
				if rerr != unix.EINTR {
					return rerr != unix.EAGAIN
				}
			}
		})
		if err != nil {
			return // closed
		}
		if rerr != nil {
			c.p.logf("generation %d: notify socket: %v", c.gen, os.NewSyscallError("recvmsg", rerr))
			time.Sleep(10 * time.Millisecond) // no busy loop on a lasting error
			continue
		}
		cred, files, perr := control(oob[:oobn])
		switch {
		case perr != nil:
			c.p.logf("generation %d: notification dropped: %v", c.gen, perr)
		case flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0:
			c.p.logf("generation %d: notification dropped: longer than %d bytes or %d descriptors", c.gen, maxMessage, maxFiles)
		case cred == nil:
			c.p.logf("generation %d: notification dropped: no sender credentials", c.gen)
		default:
			c.handle(buf[:n], cred, files)
			continue
		}
		closeFiles(files)
	}
}

// control reads the credentials and descriptors of a message. Every
// descriptor found is returned, even with an error, so that it is closed.
func control(oob []byte) (*unix.Ucred, []*os.File, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, nil, os.NewSyscallError("control message", err)
	}
	var cred *unix.Ucred
	var files []*os.File
	var first error
	for i := range msgs {
		m := &msgs[i]
		if m.Header.Level != unix.SOL_SOCKET {
			continue
		}
		switch m.Header.Type {
		case unix.SCM_RIGHTS:
			fds, err := unix.ParseUnixRights(m)
			if err != nil && first == nil {
				first = os.NewSyscallError("SCM_RIGHTS", err)
			}
			for _, fd := range fds {
				files = append(files, os.NewFile(uintptr(fd), "notify-fd"))
			}
		case unix.SCM_CREDENTIALS:
			u, err := unix.ParseUnixCredentials(m)
			if err != nil {
				if first == nil {
					first = os.NewSyscallError("SCM_CREDENTIALS", err)
				}
				continue
			}
			cred = u
		}
	}
	return cred, files, first
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// handle acts on one datagram with its sender's credentials, consuming
// files.
func (c *notifyCheck) handle(b []byte, cred *unix.Ucred, files []*os.File) {
	c.mu.Lock()
	pid := c.pid
	c.mu.Unlock()
	sender := int(cred.Pid)
	if !belongs(sender, pid) {
		c.p.logf("generation %d: notification from pid %d (uid %d) dropped: not generation %d's process (pid %d) nor a descendant of it", c.gen, sender, cred.Uid, c.gen, pid)
		closeFiles(files)
		return
	}
	m := Message{Gen: c.gen, PID: sender, UID: int(cred.Uid), GID: int(cred.Gid), Fields: fields(b), Files: files}
	status, hasStatus := m.Value("STATUS")
	isReady := m.Has("READY=1")
	c.mu.Lock()
	first := isReady && !c.isReady
	if first {
		c.isReady = true
		close(c.ready)
	}
	if hasStatus {
		c.status = status
	}
	c.mu.Unlock()
	if first {
		c.p.logf("generation %d: READY=1 from pid %d", c.gen, sender)
	}
	if hasStatus {
		c.p.logf("generation %d: STATUS=%s", c.gen, status)
	}
	if c.p.Forward != nil {
		c.p.Forward(m)
		return
	}
	closeFiles(files)
}

// belongs reports whether process sender is process pid or, now, a
// descendant of it. A sender that has exited cannot be placed and does not
// belong.
func belongs(sender, pid int) bool {
	if sender <= 0 || pid <= 0 {
		return false
	}
	for i := 0; i < maxAncestry && sender > 1; i++ {
		if sender == pid {
			return true
		}
		ppid, err := parentOf(sender)
		if err != nil {
			return false
		}
		sender = ppid
	}
	return false
}

// parentOf reads the parent of process pid from /proc/PID/stat.
func parentOf(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// "pid (comm) state ppid ...": comm may hold anything, ')' included.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 2 {
		return 0, errors.New("malformed stat")
	}
	return strconv.Atoi(string(f[1]))
}
