package fdsend

import (
	"errors"
	"fmt"
	"syscall"
)

// Msg is one message of a batch: SendMsgs sends Data and FDs, RecvMsgs
// receives into Data and FDs. N, NFDs and Flags are set by the call.
type Msg struct {
	// Data is the message's bytes (SendMsgs), or the buffer its bytes are
	// received into (RecvMsgs).
	Data []byte
	// FDs are the descriptors to send (at most 253, which the caller keeps
	// open for the call), or room for as many received ones as len(FDs).
	FDs []int
	// N is how many bytes of Data were sent or received.
	N int
	// NFDs is how many descriptors arrived, stored in FDs[:NFDs] (RecvMsgs).
	NFDs int
	// Flags are the message's flags from the kernel (RecvMsgs): MSG_TRUNC
	// when Data was too short, MSG_CTRUNC when descriptors were cut.
	Flags int
}

// SendMsgs sends msgs in order, each with its own data and descriptors as
// one SendMsg would, passing flags to each, and returns how many were sent.
// On Linux a *net.UnixConn or an integer socket gets them with as few
// sendmmsg(2) calls as it takes; elsewhere, and for other sockets, it is a
// loop of SendMsg calls. It waits as SendMsg does (in the poller for a
// *net.UnixConn, with its deadlines) until every message is sent, unless
// flags has MSG_DONTWAIT.
//
// msgs[i].N is set to the bytes of each message that went. On Linux a
// message that a full stream socket took only in part goes on with its
// rest (its descriptors went with its first byte), as a blocking sendmsg
// would; elsewhere the batch stops there. With MSG_DONTWAIT it sends what
// the socket takes, as sendmmsg(2): EAGAIN only when nothing went, and a
// message cut short is the last counted (N < len(Data)); the rest is the
// caller's to send. When an error stops the batch, n messages went, whole
// or in part, and err says which message met it. Messages with more than
// 253 descriptors or a negative one are refused before anything is sent, as
// (on Linux) are descriptors with no data on a stream socket. It allocates
// nothing in the steady state.
func SendMsgs(sock any, msgs []Msg, flags int) (n int, err error) {
	for i := range msgs {
		m := &msgs[i]
		m.N = 0
		if len(m.FDs) > maxFilesPerMsg {
			return 0, &ArgError{Arg: fmt.Sprintf("msgs[%d].FDs", i), Type: "[]int", Err: fmt.Errorf("%d descriptors, at most %d fit in one message: %w", len(m.FDs), maxFilesPerMsg, syscall.EINVAL)}
		}
		for j, fd := range m.FDs {
			if fd < 0 {
				return 0, &ArgError{Arg: fmt.Sprintf("msgs[%d].FDs[%d]", i, j), Type: "int", Err: fmt.Errorf("%d: %w", fd, errBadFD)}
			}
		}
		if needsDataByte && len(m.Data) == 0 && len(m.FDs) > 0 {
			return 0, &ArgError{Arg: fmt.Sprintf("msgs[%d].Data", i), Type: "[]byte", Err: errEmptyNeedsByte}
		}
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	if n, err, ok := sendMsgsBatched(sock, msgs, flags); ok {
		return n, err
	}
	return sendMsgsLoop(sock, msgs, flags)
}

// RecvMsgs receives up to len(msgs) messages: it waits for the first as
// RecvMsg does (unless flags has MSG_DONTWAIT), then takes those already
// queued without waiting, and returns how many arrived. On Linux a
// *net.UnixConn or an integer socket gets them with one recvmmsg(2)
// (MSG_WAITFORONE); elsewhere, and for other sockets, it is a loop of
// RecvMsg calls.
//
// Each received message has N, NFDs and Flags set as RecvMsg returns them:
// descriptors are close-on-exec and the caller's, those that did not fit in
// FDs were closed (MSG_CTRUNC), and truncation is told by Flags, not as an
// error. On a stream socket a message of no bytes and no descriptors (into
// a slot with room for data) means the peer has closed, and ends the batch.
// If recvmmsg meets an error after some messages it returns those and the
// kernel keeps the error for the next call; the loop returns both. It
// allocates nothing in the steady state.
func RecvMsgs(sock any, msgs []Msg, flags int) (n int, err error) {
	for i := range msgs {
		m := &msgs[i]
		m.N, m.NFDs, m.Flags = 0, 0, 0
		if needsDataByte && len(m.Data) == 0 {
			return 0, &ArgError{Arg: fmt.Sprintf("msgs[%d].Data", i), Type: "[]byte", Err: errEmptyNeedsByte}
		}
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	if n, err, ok := recvMsgsBatched(sock, msgs, flags); ok {
		return n, err
	}
	return recvMsgsLoop(sock, msgs, flags)
}

// rawTryMax bounds the messages sent raw and non-blocking where a blocking
// call would have sent them whole: a Unix stream socket takes a message
// this short in one piece or not at all (its smallest send buffer holds
// more), so such a send never writes part of a message.
const rawTryMax = 2048

// batchError names the message of a batch that an error stopped at.
func batchError(i int, err error) error {
	return &msgError{index: i, err: err}
}

// msgError is an error of one message of a batch.
type msgError struct {
	index int
	err   error
}

func (e *msgError) Error() string {
	return fmt.Sprintf("fdsend: message %d of the batch: %v", e.index, e.err)
}

func (e *msgError) Unwrap() error { return e.err }

// sendMsgsLoop is SendMsgs as one send per message.
func sendMsgsLoop(sock any, msgs []Msg, flags int) (int, error) {
	var oobBuf [oobSendMax]byte
	for i := range msgs {
		m := &msgs[i]
		var oob []byte
		if len(m.FDs) > 0 {
			oob = oobBuf[:putRightsHeader(oobBuf[:], len(m.FDs))]
			for j, fd := range m.FDs {
				putFD(oob, j, fd)
			}
		}
		n, err := sendOn(sock, m.Data, oob, flags)
		if err != nil {
			if i > 0 && flags&msgDontwait != 0 && errors.Is(err, errAgain) {
				return i, nil // as sendmmsg(2): some went
			}
			return i, batchError(i, err)
		}
		m.N = n
		if n < len(m.Data) {
			return i + 1, nil
		}
	}
	return len(msgs), nil
}

// recvMsgsLoop is RecvMsgs as one receive per message, those after the
// first with MSG_DONTWAIT.
func recvMsgsLoop(sock any, msgs []Msg, flags int) (int, error) {
	for i := range msgs {
		m := &msgs[i]
		f := flags
		if i > 0 {
			f |= msgDontwait
		}
		n, nfds, mflags, err := RecvMsg(sock, m.Data, m.FDs, f)
		if err != nil {
			if i > 0 && errors.Is(err, errAgain) {
				return i, nil
			}
			return i, batchError(i, err)
		}
		m.N, m.NFDs, m.Flags = n, nfds, mflags
		if n == 0 && nfds == 0 {
			// The peer has closed (stream), or an empty message: the
			// batch ends with it either way.
			return i + 1, nil
		}
	}
	return len(msgs), nil
}

// emptyOnStream is the error for a batch on a stream socket with a message
// that has descriptors and no data.
func emptyOnStream(msgs []Msg) error {
	for i := range msgs {
		if len(msgs[i].Data) == 0 && len(msgs[i].FDs) > 0 {
			return &ArgError{Arg: fmt.Sprintf("msgs[%d].Data", i), Type: "[]byte", Err: errEmptyOnStream}
		}
	}
	return nil
}
