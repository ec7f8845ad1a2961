package handoff

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/fdsend/fdsend"
	"github.com/fdsend/fdsend/internal/jsonmsg"
)

// protocolVersion is the version of the hand-off requests, sent in the
// greeting. See PROTOCOL.md.
const protocolVersion = 1

// Message types ("op"). The serving instance greets with opHello or
// opRefused; the successor sends opTake (answered by opFiles), opKeys
// (answered by opKeys), opPrepare (answered by opPrepared) and opReady
// (answered by opDraining); either side may answer with opError. After
// opDraining, if the successor's opReady asked for connections, the
// connection stays open for passing them (conns.go): the older instance
// sends opConn with one descriptor, the successor answers opAck or
// opNack, and the older instance decides with opCommit or, by closing, not.
const (
	opHello    = "hello"
	opRefused  = "refused"
	opTake     = "take"
	opFiles    = "files"
	opPrepare  = "prepare"
	opPrepared = "prepared"
	opReady    = "ready"
	opDraining = "draining"
	opError    = "error"
	opKeys     = "keys"
	opConn     = "conn"
	opAck      = "ack"
	opNack     = "nack"
	opCommit   = "commit"
)

// Features an instance announces in its greeting, so that a successor asks
// only for what the older instance knows how to answer.
const (
	featureConns = "conns" // it passes connections to a successor that asks
	featureKeys  = "keys"  // it answers opKeys
)

// Kinds of what an instance hands over.
const (
	kindListener = "listener"
	kindPacket   = "packet"
	kindFile     = "file"
)

// Status of one item of an opFiles answer.
const (
	statusOK      = "ok"      // the descriptor travels with the answer
	statusAbsent  = "absent"  // no open socket or file of that name
	statusDiffers = "differs" // one of that name, but of another kind or address
)

// Limits on what a peer may send.
const (
	maxWantPerRequest = 4096    // items in one opTake
	maxRequestBytes   = 1 << 20 // data of one request
	maxAnswerBytes    = 16 << 20
	takeBatch         = 1024 // items the successor puts in one opTake
)

// message is every message of the protocol; unused fields are left out.
type message struct {
	Op      string `json:"op"`
	Version int    `json:"version,omitempty"`
	PID     int    `json:"pid,omitempty"`
	Error   string `json:"error,omitempty"`
	Want    []want `json:"want,omitempty"`
	Items   []item `json:"items,omitempty"`

	Features []string `json:"features,omitempty"` // opHello
	Conns    bool     `json:"conns,omitempty"`    // opReady: pass me connections
	Keys     [][]byte `json:"keys,omitempty"`     // opKeys answer
	ID       uint64   `json:"id,omitempty"`       // opConn, opAck, opNack, opCommit
	Name     string   `json:"name,omitempty"`     // opConn
	State    []byte   `json:"state,omitempty"`    // opConn
}

// want is one socket or file a successor asks for.
type want struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Network string `json:"network,omitempty"`
	Addr    string `json:"addr,omitempty"`
}

// item is the serving instance's answer about one want, in the same place
// of the list. For statusOK and statusDiffers it says what the instance has
// under that name: Addr as it was asked for when the socket was opened,
// Local the address it is bound to.
type item struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Kind    string `json:"kind,omitempty"`
	Network string `json:"network,omitempty"`
	Addr    string `json:"addr,omitempty"`
	Local   string `json:"local,omitempty"`
}

// send writes m with files on c, within exchangeTimeout.
func send(c *fdsend.Conn, m message, files ...any) error {
	c.SetWriteDeadline(time.Now().Add(exchangeTimeout))
	return jsonmsg.Write(c, m, files...)
}

// receive reads one message from c. Any files that came with it are
// returned (the caller owns them) only if the message parses; otherwise they
// are closed.
func receive(c *fdsend.Conn) (message, []*os.File, error) {
	var m message
	files, err := jsonmsg.Read(c, &m)
	if errors.Is(err, jsonmsg.ErrMalformed) {
		return message{}, nil, fmt.Errorf("%w: undecodable message: %v", errProtocol, err)
	}
	if err != nil {
		return message{}, nil, err
	}
	if m.Op == "" {
		jsonmsg.CloseAll(files)
		return message{}, nil, fmt.Errorf("%w: message without \"op\"", errProtocol)
	}
	return m, files, nil
}

// errProtocol is wrapped by errors about a peer that breaks the protocol.
var errProtocol = errors.New("handoff: protocol error")
