// Package notify is a client of the sd_notify protocol: it tells the
// service manager that started the process (systemd, or `fdsend activate
// --fdstore`) about its state, and hands descriptors to the manager's
// descriptor store so that they survive a restart of the service.
//
// A notification is one datagram of newline-separated VARIABLE=VALUE lines
// sent to the Unix datagram socket named by the NOTIFY_SOCKET environment
// variable: an absolute path, or "@name" for a Linux abstract socket.
// Descriptors travel with the datagram as SCM_RIGHTS (sent with
// fdsend.Send). Other address forms, such as systemd 254's "vsock:", are an
// error that says so.
//
// Every call returns (false, nil) when NOTIFY_SOCKET is unset or empty: the
// process is not running under a manager, which libsystemd's sd_notify
// treats the same way. A call returns (true, nil) once the datagram has been
// sent; the protocol has no reply, so that says nothing about whether the
// manager accepted it (see Barrier for that). Bad arguments (an invalid
// name, a status with a newline, Store without files) are errors wrapping
// syscall.EINVAL whether or not there is a manager, so that they show up
// when the program runs bare too.
//
// The package-level functions read NOTIFY_SOCKET at each call and never
// change the environment, so that a process may notify many times. A program
// that must keep the variable from its own children can take it once with
// TakeEnv (libsystemd's unset_environment flag) and notify through the
// returned Client.
//
// Descriptors: every call opens one close-on-exec socket, sends one
// datagram and closes the socket before returning; nothing stays open
// between calls. The caller keeps the files it passes to Send and Store: the
// manager receives duplicates, and the caller may close its own copies as
// soon as the call returns.
package notify
