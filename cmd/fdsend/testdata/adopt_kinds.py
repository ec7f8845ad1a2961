# Opens one descriptor of every kind, writes "NAME FD" for each, then
# "ready" and waits to be killed.
import os
import select
import signal
import socket
import sys

d = sys.argv[1]
fds = {}
t = socket.socket()
t.bind(("127.0.0.1", 0))
t.listen()
fds["tcplisten"] = t
c = socket.create_connection(t.getsockname())
fds["tcpconn"] = c
a, _ = t.accept()
fds["tcpaccepted"] = a
t6 = socket.socket(socket.AF_INET6)
t6.bind(("::1", 0))
t6.listen()
fds["tcp6listen"] = t6
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 0))
fds["udp"] = u
ul = socket.socket(socket.AF_UNIX)
ul.bind(os.path.join(d, "l.sock"))
ul.listen()
fds["unixlisten"] = ul
ab = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
ab.bind("\0fdsend-adopt-kinds-%d" % os.getpid())
ab.listen()
fds["abstract"] = ab
ug = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
ug.bind(os.path.join(d, "g.sock"))
fds["unixgram"] = ug
sp, _ = socket.socketpair()
fds["socketpair"] = sp
r, w = os.pipe()
fds["pipe"] = r
os.mkfifo(os.path.join(d, "fifo"))
fds["fifo"] = os.open(os.path.join(d, "fifo"), os.O_RDWR)
fds["file"] = os.open(os.path.join(d, "file"), os.O_RDWR | os.O_CREAT)
fds["dir"] = os.open(d, os.O_RDONLY)
fds["null"] = os.open("/dev/null", os.O_RDONLY)
fds["eventfd"] = os.eventfd(0)
fds["epoll"] = select.epoll()
for name, f in fds.items():
    print(name, f if isinstance(f, int) else f.fileno())
print("ready", flush=True)
while True:
    signal.pause()
