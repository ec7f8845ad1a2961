package fdkind

import (
	"errors"
	"os"
	"syscall"
	"testing"
)

// TestRenderings checks both renderings of descriptions that real
// descriptors seldom give: failed steps, other types and families.
func TestRenderings(t *testing.T) {
	typeErr := os.NewSyscallError("getsockopt", syscall.EBADF)
	nameErr := os.NewSyscallError("getsockname", syscall.ENOBUFS)
	for _, tc := range []struct {
		d        Desc
		short    string
		sentence string // "" for an error from Info
		kind     Kind
	}{
		{Desc{Type: Socket, Err: typeErr}, "socket (" + syscall.EBADF.Error() + ")", "", File},
		{Desc{Type: Socket, SockType: Stream, SockNum: 1, Err: nameErr}, "socket (stream, getsockname: " + syscall.ENOBUFS.Error() + ")", "an unconnected stream socket", File},
		{Desc{Type: Socket, SockType: Datagram, SockNum: 2, Family: Netlink}, "netlink dgram", "a datagram socket", Packet},
		{Desc{Type: Socket, SockType: Raw, SockNum: 3, Family: LinkLayer}, "packet raw", "a raw socket", Packet},
		{Desc{Type: Socket, SockType: Stream, SockNum: 1, Family: Vsock, Listening: true}, "vsock stream", "a listening stream socket", Listener},
		{Desc{Type: Socket, SockType: Datagram, SockNum: 2, Family: OtherFamily}, "socket (dgram)", "a datagram socket", Packet},
		{Desc{Type: Socket, SockType: OtherSock, SockNum: 10, Family: IPv4, Local: "1.2.3.4:0"}, "ip socket of type 10 1.2.3.4:0", "an IPv4 type 10 socket", File},
		{Desc{Type: Socket, SockType: SeqPacket, SockNum: 5, Family: IPv6, Listening: true, Local: "[::1]:9"}, "sctp listener [::1]:9", "a listening IPv6 seqpacket socket", Listener},
		{Desc{Type: Socket, SockType: SeqPacket, SockNum: 5, Family: Unix, Connected: true}, "unix seqpacket connected", "a connected Unix seqpacket socket", Conn},
		{Desc{Type: Socket, SockType: Stream, SockNum: 1, Family: IPv4, Local: "0.0.0.0:0"}, "tcp 0.0.0.0:0", "an unconnected IPv4 stream socket", File},
		{Desc{Type: Socket, SockType: Datagram, SockNum: 2, Family: IPv4, Connected: true, Local: "127.0.0.1:5", Peer: "127.0.0.1:6"}, "udp connected 127.0.0.1:5 -> 127.0.0.1:6", "an IPv4 datagram socket", Packet},
		{Desc{Type: Symlink, Mode: 0o120000, Path: "/l"}, "file of type 0120000 /l", "a symbolic link", File},
		{Desc{Type: OtherType, Mode: 0o170000}, "file of type 0170000", "a file of type 0170000", File},
		{Desc{Type: AnonInode, Path: "anon_inode:inotify"}, "inotify", "an anonymous inode (eventfd, epoll, pidfd, ...)", File},
		{Desc{Type: AnonInode}, "anonymous inode", "an anonymous inode (eventfd, epoll, pidfd, ...)", File},
		{Desc{Type: FIFO}, "pipe", "a pipe or FIFO", File},
		{Desc{Type: FIFO, Path: "pipe:[12]"}, "pipe", "a pipe or FIFO", File},
		{Desc{Type: FIFO, Path: "/run/f"}, "fifo /run/f", "a pipe or FIFO", File},
		{Desc{Type: BlockDevice, Path: "/dev/sda"}, "block device /dev/sda", "a block device", File},
		{Desc{Type: Regular}, "file", "a regular file", File},
	} {
		if got := tc.d.String(); got != tc.short {
			t.Errorf("%+v: String = %q, want %q", tc.d, got, tc.short)
		}
		info, err := tc.d.Info()
		if tc.sentence == "" {
			if !errors.Is(err, syscall.EBADF) {
				t.Errorf("%+v: Info = %+v, %v; want EBADF", tc.d, info, err)
			}
			continue
		}
		if err != nil || info.Desc != tc.sentence || info.Kind != tc.kind {
			t.Errorf("%+v: Info = %+v, %v; want %q, %v", tc.d, info, err, tc.sentence, tc.kind)
		}
	}
}
