// Package holder is a descriptor holder: a small daemon that keeps open
// descriptors — listening sockets, connections, files, pipes — under names
// while the programs that own them restart, and its client. It plays the
// part of s6-fdholder or of systemd's descriptor store, for any process on
// the machine that may reach its socket.
//
// # Model
//
// A Server listens on a Unix stream socket. A client stores a descriptor
// under a name (Client.Store): the holder receives a duplicate and keeps it
// open, so the descriptor lives on when the client exits. Later a client,
// usually a new instance of the same program, fetches it by name
// (Client.Fetch) and receives a duplicate of its own; with remove the holder
// drops it at the same time. List says what is held (what each descriptor
// is, how old it is, when it expires) and Remove drops a name. Transfer
// copies everything from one holder to another, so that the holder itself
// can be restarted without losing what it holds.
//
// Names follow the rules of activation.ValidateName (1 to 255 printable
// ASCII characters, no ':'), so that what is fetched can be handed on to a
// socket-activated program under the same names (fdsend fetch SOCKET NAME
// -- CMD). Storing a name that is already held is ErrExists unless the
// store asks to replace it. An entry may have an expiry; the holder then
// drops it by itself. A holder keeps at most Config.Max entries (ErrFull).
//
// # Access
//
// The server's own effective UID may do everything. Nobody else may do
// anything unless Config.Rules grant operations (store, fetch, list,
// delete) to its UID or its primary GID, checked with fdsend.PeerCred on
// every request; a refusal is an ErrDenied answer, and a descriptor that
// came with a refused store is closed. The socket file is 0600 unless the
// rules name other users or groups (Config.SocketMode).
//
// Access is checked the other way too. Right after connecting, and on every
// reconnect, before it sends or accepts a single descriptor, a Client asks
// the kernel who serves the socket and refuses anyone but the users
// DialConfig.ServerUIDs names — by default its own effective UID and root —
// with an error wrapping ErrUntrusted and syscall.EPERM that says which
// process and user answered. Without it, whoever bound the holder's address
// first would receive what clients store and could hand out descriptors of
// its own. This is what protects a Linux abstract socket ("@name"): it has
// no file, no owner and no mode, so any process may connect to it, and any
// process may bind the name while no holder does. Its only guards are the
// server's check of each request against its rules and the client's check
// of the server. A socket file in a directory only trusted users may write
// in needs neither, but gets both.
//
// # Robustness
//
// Every connection is served by its own goroutine with deadlines, so one
// client never waits for another. A client that sends garbage, lies about
// the descriptors in a frame, dies in the middle of a request, stalls, or
// sends more than a request may carry is disconnected; every descriptor
// that came with it is closed. Out of descriptors or memory, the server
// waits and goes on. A fetch with remove whose answer cannot be delivered
// puts the entries back. A client whose connect fails because the holder's
// listen backlog is full (EAGAIN) tries again for ConnectWait before it
// gives up.
//
// The protocol, request and response messages over fdsend.Conn, is written
// down in the project's PROTOCOL.md.
package holder
