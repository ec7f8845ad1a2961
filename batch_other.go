//go:build !linux

package fdsend

// Without sendmmsg/recvmmsg a batch is a loop of single calls (batch.go).

func sendMsgsBatched(sock any, msgs []Msg, flags int) (int, error, bool) {
	return 0, nil, false
}

func recvMsgsBatched(sock any, msgs []Msg, flags int) (int, error, bool) {
	return 0, nil, false
}
