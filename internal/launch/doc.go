// Package launch runs and supervises the children of `fdsend activate`: one
// child restarted by policy (Supervisor), or one child per accepted
// connection (Acceptor), with signals forwarded to them.
//
// The package knows nothing of how a child's descriptors are arranged: the
// caller builds each *exec.Cmd (with package activation/spawn, say) in a callback,
// and launch starts it, waits for it, forwards signals to it and decides
// whether and when to start the next one. Listening sockets stay with the
// caller the whole time, so connections made while no child runs wait in
// the kernel's backlog.
package launch
