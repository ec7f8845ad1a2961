// Package ready decides when a newly started generation of a supervised
// child is ready to take over from the one before it: the readiness probes
// of `fdsend activate --ready`.
//
// A Probe is parsed from the --ready value (Parse) and prepares one Check
// per generation before that generation starts (Probe.Start). The Check
// gives the environment the child needs (Env: NOTIFY_SOCKET for the notify
// probe), waits for the started process to become ready (Wait, bounded by
// its context and given up as soon as the process exits), and is closed
// when the generation is over (Close).
//
// The probes:
//
//   - notify: the child sends READY=1 on the NOTIFY_SOCKET it is given, as
//     under systemd's Type=notify. Each generation gets a socket of its own,
//     in a fresh directory of mode 0700 (Linux only): other users cannot
//     reach it, a generation cannot see another's, and the credentials the
//     kernel attaches to each datagram (SO_PASSCRED) must name the
//     generation's process or one of its descendants, or the datagram is
//     dropped. A READY=1 from an older generation therefore never counts
//     for a newer one.
//   - tcp:HOST:PORT: ready once a TCP connection to the address succeeds.
//   - http:URL (or a bare http:// or https:// URL): ready once a GET of URL
//     is answered with a 2xx status.
//   - delay:DURATION: ready once the process has run that long.
//
// A tcp or http probe must reach something only the new generation
// answers: the listening sockets a launcher passes to its children accept
// connections whichever generation runs (the kernel queues them), so a
// probe of one of them proves nothing. "{pid}" and "{gen}" in the address
// or URL are replaced by the process id and generation number, so that,
// say, http://127.0.0.1:8080/ready?pid={pid} can be answered 2xx only by
// the process asked about.
//
// Descriptors: every socket the package opens is close-on-exec and closed
// before the call that opened it returns, except the notify socket, which
// its Check owns until Close. Descriptors that arrive on the notify socket
// are handed to the Notify's Forward function, which then owns them, or
// closed at once.
package ready
