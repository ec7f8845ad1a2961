// Command graceful is an HTTP server that restarts without dropping a
// request. Every answer is the server's process ID. Start it, then start it
// again with the same flags: the second process takes the listening socket
// from the first through the hand-off point, the first drains and exits.
//
//	export RUN="${XDG_RUNTIME_DIR:-$HOME/.run}"; mkdir -p -m 0700 "$RUN"
//	go run ./examples/graceful -listen 127.0.0.1:8080 -handoff "$RUN"/handoff.sock &
//	curl http://127.0.0.1:8080/        # the first pid
//	go run ./examples/graceful -listen 127.0.0.1:8080 -handoff "$RUN"/handoff.sock &
//	curl http://127.0.0.1:8080/        # the second pid; the first has exited
//
// It also takes the old instance's idle HTTP/1.1 keep-alive connections
// (handoff.Config.TakeConns, HTTPDrainer.PassIdle and ServePassed): their
// clients keep their TCP connections across the restart. -pass-conns=false
// makes it drain them as before: the old instance closes each after its
// current request.
//
// With -crash-before-ready (or GRACEFUL_CRASH_BEFORE_READY=1 in the
// environment) it plays a broken new version: it takes the socket and exits
// with status 3 before Ready, and the old process goes on serving.
//
// It prints "ready pid=PID inherited=BOOL addr=ADDR" on standard output when
// it serves, and "drained pid=PID" before it exits; errors and progress go
// to standard error. SIGTERM or SIGINT drains it too.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/fdsend/fdsend/handoff"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "TCP `address` to serve HTTP on")
	point := flag.String("handoff", "", "hand-off point: the Unix socket `path` instances meet at (required)")
	idleGrace := flag.Duration("idle-grace", 2*time.Second, "how long a draining server keeps an idle keep-alive connection open for a last request")
	drainTimeout := flag.Duration("drain-timeout", 30*time.Second, "how long a draining server waits for requests in flight")
	lockTimeout := flag.Duration("lock-timeout", 0, "how long to wait for another upgrade in progress (0: the package default)")
	readyTimeout := flag.Duration("ready-timeout", 0, "how long an upgrade may take before it is abandoned (0: the package default)")
	crash := flag.Bool("crash-before-ready", false, "take the sockets, then exit with status 3 before Ready (a broken new version)")
	tlsCert := flag.String("tls-cert", "", "serve HTTPS with this certificate `file` (PEM; with -tls-key): TLS connections drain, they cannot move, but clients resume their sessions on the new instance (the hand-off carries the session-ticket keys)")
	tlsKey := flag.String("tls-key", "", "the certificate's private key `file` (PEM)")
	logRequests := flag.Bool("log-requests", false, "log every numbered request (?c=CLIENT&s=SEQ) on standard error")
	passConns := flag.Bool("pass-conns", true, "take the old instance's idle keep-alive connections, and pass ours to the next instance that asks")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix(fmt.Sprintf("graceful[%d]: ", os.Getpid()))
	if *point == "" {
		log.Print("-handoff is required")
		flag.Usage()
		os.Exit(2)
	}
	if v, _ := strconv.ParseBool(os.Getenv("GRACEFUL_CRASH_BEFORE_READY")); v {
		*crash = true
	}

	upg, err := handoff.Open(handoff.Config{Path: *point, LockTimeout: *lockTimeout, ReadyTimeout: *readyTimeout, TakeConns: *passConns})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := upg.Listen("http", "tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}

	body := []byte(strconv.Itoa(os.Getpid()) + "\n")
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			// A client that numbers its requests (?c=CLIENT&s=SEQ) gets
			// the numbers back, and with -log-requests each is logged,
			// so that a test can tell that every request was served once.
			q := r.URL.Query()
			if c, s := q.Get("c"), q.Get("s"); c != "" && s != "" {
				if *logRequests {
					log.Printf("served c=%s s=%s", c, s)
				}
				fmt.Fprintf(w, "%d %s %s\n", os.Getpid(), c, s)
				return
			}
			w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
	}
	drainer := handoff.NewHTTPDrainer(srv, *idleGrace)
	if (*tlsCert == "") != (*tlsKey == "") {
		log.Fatal("-tls-cert and -tls-key go together")
	}
	if *tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			log.Fatal(err)
		}
		// The older instance's session-ticket keys (or fresh ones), so
		// that its clients resume here; taken before Ready.
		keys, err := upg.TicketKeys()
		if err != nil {
			log.Fatal(err)
		}
		cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
		cfg.SetSessionTicketKeys(keys)
		ln = tls.NewListener(ln, cfg)
	}

	if *crash {
		log.Print("crashing before ready, as asked")
		os.Exit(3)
	}
	// Ready before serving: until Ready the old process answers everyone,
	// and connections that arrive in between wait in the shared backlog.
	if err := upg.Ready(); err != nil {
		if !errors.Is(err, handoff.ErrUnconfirmed) {
			log.Fatal(err)
		}
		log.Print(err)
	}
	served := make(chan error, 1)
	go func() { served <- drainer.Serve(ln) }()
	// The old instance's keep-alive connections, as it passes them.
	go drainer.ServePassed(upg, "http")
	fmt.Printf("ready pid=%d inherited=%v addr=%s\n", os.Getpid(), upg.Inherited("http"), ln.Addr())

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-upg.Draining():
		log.Print("a newer instance took over: draining")
	case sig := <-sigs:
		log.Printf("%v: draining", sig)
	case err := <-served:
		log.Fatalf("serving: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *drainTimeout)
	defer cancel()
	select {
	case <-upg.Draining():
		if *tlsCert != "" {
			break // TLS connections cannot move: they drain
		}
		// Hand the idle keep-alive connections to the newer instance
		// (it gets none unless it asked); the rest drain below.
		n, err := drainer.PassIdle(ctx, upg, "http")
		log.Printf("passed %d keep-alive connections to the newer instance", n)
		if err != nil && !errors.Is(err, handoff.ErrNoTaker) {
			log.Printf("passing connections: %v", err)
		}
	default:
	}
	if err := drainer.Drain(ctx); err != nil {
		log.Printf("drain: %v", err)
	}
	if err := upg.Close(); err != nil {
		log.Print(err)
	}
	fmt.Printf("drained pid=%d\n", os.Getpid())
}
