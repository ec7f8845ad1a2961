# A server that knows nothing of fdsend: it listens on 127.0.0.1:PORT (0:
# any free port) and on the Unix socket PATH, answers each line a client
# sends with "old PID", and on SIGTERM stops accepting, finishes the
# connections it has and exits. It writes "ready PORT" once listening.
import os
import signal
import socketserver
import sys
import threading


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        self.rfile.readline()
        self.wfile.write(b"old %d\n" % os.getpid())


class TCP(socketserver.ThreadingTCPServer):
    daemon_threads = False


class Unix(socketserver.ThreadingUnixStreamServer):
    daemon_threads = False


tcp = TCP(("127.0.0.1", int(sys.argv[1])), Handler)
unix = Unix(sys.argv[2], Handler)
# SIGTERM is blocked before any thread starts, so that every thread
# inherits the mask and the main thread takes it with sigwait. A Python
# handler would run only if the kernel chose the main thread to deliver the
# signal to; delivered to another, it would leave the main thread asleep.
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
for s in (tcp, unix):
    threading.Thread(target=s.serve_forever, daemon=True).start()
print("ready", tcp.server_address[1], flush=True)
signal.sigwait({signal.SIGTERM})
for s in (tcp, unix):
    s.shutdown()
    s.server_close()
