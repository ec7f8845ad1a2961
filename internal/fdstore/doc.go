// Package fdstore is the service-manager side of the sd_notify protocol for
// `fdsend activate --fdstore=N`: a NOTIFY_SOCKET that keeps the descriptors
// a service hands it (FDSTORE=1) so that the launcher can give them back
// when it starts the service again, as systemd's descriptor store does.
//
// The socket is a Unix datagram socket in a fresh directory of mode 0700;
// whoever can reach it may send. One goroutine receives datagrams (at most
// 4096 bytes and 253 descriptors each, as systemd) and acts on them:
//
//   - FDSTORE=1 stores every descriptor of the message under FDNAME= (or
//     "stored"), in arrival order, up to the Server's maximum; the rest are
//     closed. A name that is not 1 to 255 printable ASCII characters without
//     ':' (systemd's rule, except that an empty name is refused too) closes
//     the whole message's descriptors: systemd would store them under the
//     default name instead, but a name the service did not ask for is of no
//     use to it. A descriptor that refers to an open file already in the
//     store is closed and the stored one kept (systemd does the same, so a
//     service may store everything it holds after each restart); Linux only,
//     elsewhere every descriptor is stored as it comes.
//   - FDSTOREREMOVE=1 with FDNAME= closes and forgets every entry of that
//     name (before any FDSTORE=1 of the same message is applied).
//   - FDPOLL=0 stores without watching. Otherwise, on Linux, each stored
//     descriptor that can be polled is watched and dropped (closed) when it
//     reports EPOLLHUP or EPOLLERR, as systemd does; descriptors that cannot
//     be polled (regular files) are kept. Other systems do not watch.
//   - READY=1 closes the channel of Ready; READY=1 and STATUS= are relayed to
//     the launcher's own NOTIFY_SOCKET, if it has one.
//   - BARRIER=1 closes the descriptor it carries and ignores the rest of the
//     message, which is how sd_notify_barrier and `systemd-notify` learn
//     that everything before it has been processed.
//
// Every descriptor that arrives and is not stored is closed at once,
// including those of messages that are truncated, malformed or carry no
// FDSTORE=1. Other assignments (MAINPID=, WATCHDOG=1, ...) are ignored.
package fdstore
