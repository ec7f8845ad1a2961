//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package fdsend

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
)

// This system cannot pass descriptors: the names sys_posix.go, cmsg.go and
// the platform files give the portable files are here, and every call that
// would reach the system fails with errUnsupported.

// errUnsupported is the error of every call that needs SCM_RIGHTS.
var errUnsupported = fmt.Errorf("fdsend: passing descriptors is not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)

// Values the portable files compare with; none reaches a system call here.
var (
	errAgain     = errors.New("resource temporarily unavailable")
	errBadFD     = errors.New("bad file descriptor")
	errProtoType = errors.New("protocol wrong type for socket")
)

const (
	msgDontwait   = 0x40
	msgCtrunc     = 0x8
	msgTrunc      = 0x20
	sockStream    = 1
	sockDgram     = 2
	sockSeqpacket = 5

	needsDataByte     = false
	fullControlBuffer = false
	abstractAddrs     = false
	peerCredSupported = false

	oobSendMax = 1
	oobRecvMax = 1
	oobExtra   = 0
)

func isErrno(err error) bool                                { return false }
func closeFD(fd int)                                        {}
func closeOne(fd int) error                                 { return errUnsupported }
func closeRange(lo, hi int) bool                            { return false }
func sockType(fd int) (int, error)                          { return 0, errUnsupported }
func dupCloexec(fd uintptr, min int) (int, error)           { return -1, errUnsupported }
func socketpairCloexec(typ int) ([2]int, error)             { return [2]int{-1, -1}, errUnsupported }
func removeSocketFile(path string, made os.FileInfo)        {}
func peerCred(fd int) (Cred, error)                         { return Cred{}, errUnsupported }
func putRightsHeader(b []byte, n int) int                   { return 0 }
func putFD(b []byte, i int, fd int)                         {}
func rightsSpace(n int) int                                 { return 0 }
func oobLen(n int) int                                      { return 0 }
func takeFDs(oob []byte, fds []int) (int, bool)             { return 0, false }
func sendmsg(fd int, p, oob []byte, flags int) (int, error) { return 0, errUnsupported }

func sendmsg2(fd int, p1, p2, oob []byte, flags int) (int, error) {
	return 0, errUnsupported
}

func recvmsgPolled(fd int, p, oob []byte, flags int) (n, oobn, mflags int, err error) {
	return 0, 0, 0, errUnsupported
}

func recvBlocking(fd int, p, oob []byte, flags int) (n, oobn, mflags int, err error) {
	return 0, 0, 0, errUnsupported
}

func listenUnix(path string, abstract bool, mode uint32) (*net.UnixListener, os.FileInfo, error) {
	return nil, nil, errUnsupported
}
