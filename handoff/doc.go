// Package handoff restarts a server without refusing a single connection,
// between processes that are not parent and child: a new instance, started
// by systemd, a container runtime, any supervisor or by hand, takes the
// listening sockets of the instance already running and tells it to drain.
//
// # The model
//
// Instances meet at a hand-off point: a Unix socket path (mode 0600 by
// default) and a lock file beside it (the path plus ".lock"). At any moment
// one instance owns the point and serves (older ones may still be draining),
// and at most one more — the one holding the lock — is starting; a third
// waits for the lock, up to Config.LockTimeout. A starting instance calls
// Open, asks for each socket by name and address (Listen, ListenPacket,
// File) and gets the running instance's socket of that name when there is
// one and its address is the one asked for, or a fresh one otherwise; it
// then sets itself up and calls Ready. Ready binds its own socket at a
// temporary path in the same directory and renames it over the hand-off
// point while holding the lock, so that whoever comes next finds an instance
// there at every moment, and then tells the old instance, whose Draining
// channel closes: it stops accepting, finishes what it has in flight and
// exits. Until Ready, the old instance has stopped and closed nothing: if
// the new one crashes, exits, or takes longer than Config.ReadyTimeout, the
// old one goes on serving as if nothing had happened, and the next upgrade
// talks to it again.
//
// Both processes hold the same listening socket (its descriptor is passed
// with SCM_RIGHTS, see the fdsend package), so connections that arrive while
// the old instance stops accepting wait in the socket's backlog for the new
// one: none is refused. Each side checks the other with fdsend.PeerCred:
// by default only processes of the same user may take the sockets.
//
// # Running it
//
// Nothing ties the two instances but the path: start the new version next
// to the old one with the same configuration, by hand or from a deploy
// script, and the old one exits by itself once it has drained. Under
// systemd, two instances of a template unit (app@blue.service and
// app@green.service, both with the same hand-off point, for example in a
// shared RuntimeDirectory= with RuntimeDirectoryPreserve=yes) take turns:
// "systemctl start app@green" hands over from blue, and blue's main process
// exits with status 0 when it has drained. In containers, share the
// directory of the hand-off point between the old and the new container,
// with the same user on both sides (or list the other one in PeerUIDs).
// Give the hand-off point a directory that only the service's user can
// write.
//
// # Draining HTTP
//
// http.Server.Shutdown can drop a request that arrives on a connection
// accepted just before it (golang/go#75591): the server reads the request,
// sees that it is shutting down and closes the connection without an
// answer. HTTPDrainer drains an http.Server without that loss: it stops
// accepting, answers every further request with "Connection: close", closes
// connections that stay idle for a grace period and waits for the rest.
//
// # Live connections
//
// A newer instance that sets Config.TakeConns receives, on Conns, the live
// connections the older instance passes with PassConn once it drains, each
// with a name and an opaque state blob (what the older instance's reader had
// buffered, where the conversation stands); the older instance passes each
// at a message boundary and the client keeps its connection. A connection
// is the older instance's until PassConn succeeds (then it has closed its
// copy), and the newer one's from the moment it is received; a failure
// leaves it with the older instance, open. TLS connections cannot move, but
// TicketKeys hands the session-ticket keys on, so that their clients resume
// on the newer instance. See docs/handoff.md.
//
// # Descriptors
//
// Everything Listen, ListenPacket and File return belongs to the caller, who
// closes it as usual; the Upgrader keeps a reference to hand it to the next
// instance, and reports a socket the caller has closed as absent. Received
// descriptors are close-on-exec, and listeners and packet conns are
// registered with the runtime's network poller, so deadlines and Close work.
// No error path leaves a descriptor open.
//
// The package works on Linux, darwin and FreeBSD. On NetBSD and OpenBSD the
// peer's credentials cannot be read, so every peer is refused; elsewhere
// Open returns an error wrapping errors.ErrUnsupported. The wire protocol is
// described in PROTOCOL.md.
package handoff
