package ready

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Probe prepares the readiness check of each generation.
type Probe interface {
	// Start prepares the check of generation gen before its process is
	// started. The Check belongs to the caller, who closes it when the
	// generation is over.
	Start(gen int) (Check, error)
	// String gives the probe as --ready takes it.
	String() string
}

// Check is the readiness check of one generation.
type Check interface {
	// Env returns the NAME=VALUE assignments the generation's process must
	// find in its environment (none for most probes).
	Env() []string
	// Wait waits until process pid is ready, and returns nil then. It
	// returns an error wrapping ErrExited as soon as exited is closed, and
	// one wrapping ctx.Err() when ctx is done first. Wait is called at most
	// once, after the process has started.
	Wait(ctx context.Context, pid int, exited <-chan struct{}) error
	// Close releases what the check holds. It may be called while Wait
	// runs, and more than once.
	Close() error
}

// ErrExited is wrapped by Check.Wait's error when the process exited before
// it was ready.
var ErrExited = errors.New("exited before it was ready")

// retry is the pause between two attempts of a polling probe, and attempt
// the longest one attempt may take.
const (
	retry   = 100 * time.Millisecond
	attempt = 2 * time.Second
)

// Parse reads the value of --ready: "notify", "tcp:HOST:PORT",
// "http:URL" (or an http:// or https:// URL alone) or "delay:DURATION".
// An error names the argument, says what is wrong, and wraps
// syscall.EINVAL (or errors.ErrUnsupported for notify where the system
// cannot check who sends).
func Parse(s string) (Probe, error) {
	kind, rest, _ := strings.Cut(s, ":")
	switch kind {
	case "notify":
		if rest != "" || strings.Contains(s, ":") {
			return nil, parseError(s, "notify takes no argument")
		}
		if !notifySupported {
			return nil, fmt.Errorf("--ready=%s: the notify probe needs the kernel to tell who sends (SO_PASSCRED), which only Linux does; use tcp:, http: or delay: here: %w", s, errors.ErrUnsupported)
		}
		return &Notify{}, nil
	case "tcp":
		if err := checkHostPort(expand(rest, 1, 1)); err != nil {
			return nil, parseError(s, "want tcp:HOST:PORT: "+err.Error())
		}
		return &TCP{Addr: rest}, nil
	case "http", "https":
		u := rest
		if strings.HasPrefix(rest, "//") {
			u = kind + ":" + rest // the value was a URL itself
		}
		if err := checkURL(expand(u, 1, 1)); err != nil {
			return nil, parseError(s, "want http:URL with an http:// or https:// URL: "+err.Error())
		}
		return &HTTP{URL: u}, nil
	case "delay":
		d, err := time.ParseDuration(rest)
		if err != nil || d < 0 {
			return nil, parseError(s, "want delay:DURATION, a duration such as 2s or 500ms")
		}
		return Delay(d), nil
	}
	return nil, parseError(s, "want notify, tcp:HOST:PORT, http:URL or delay:DURATION")
}

func parseError(s, why string) error {
	return fmt.Errorf("--ready=%s: %s: %w", s, why, syscall.EINVAL)
}

func checkHostPort(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return errors.New(ae.Err)
		}
		return err
	}
	if host == "" {
		return errors.New("no host")
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return ue.Err
		}
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %q", u.Scheme)
	}
	if u.Hostname() == "" {
		return errors.New("no host")
	}
	return nil
}

// expand replaces {gen} and {pid} in s.
func expand(s string, gen, pid int) string {
	return strings.NewReplacer("{gen}", strconv.Itoa(gen), "{pid}", strconv.Itoa(pid)).Replace(s)
}

// noEnv is embedded by the checks that give the process nothing.
type noEnv struct{}

func (noEnv) Env() []string { return nil }
func (noEnv) Close() error  { return nil }

// sleep waits d, and reports why it stopped early: ctx done or the process
// gone.
func sleep(ctx context.Context, d time.Duration, exited <-chan struct{}) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-exited:
		return ErrExited
	case <-ctx.Done():
		return ctx.Err()
	}
}

// poll runs try every retry until it succeeds, the process exits or ctx is
// done; the error then says what the last attempt met.
func poll(ctx context.Context, exited <-chan struct{}, try func(context.Context) error) error {
	var last error
	for {
		select {
		case <-exited:
			return ErrExited
		default:
		}
		actx, cancel := context.WithTimeout(ctx, attempt)
		err := try(actx)
		cancel()
		if err == nil {
			return nil
		}
		last = err
		if err := sleep(ctx, retry, exited); err != nil {
			if errors.Is(err, ErrExited) {
				return err
			}
			return fmt.Errorf("%w (last attempt: %v)", err, last)
		}
	}
}

// Delay is the probe delay:DURATION: a generation is ready once its process
// has run that long.
type Delay time.Duration

func (d Delay) String() string { return "delay:" + time.Duration(d).String() }

// Start returns the check of one generation.
func (d Delay) Start(int) (Check, error) { return delayCheck{d: time.Duration(d)}, nil }

type delayCheck struct {
	noEnv
	d time.Duration
}

func (c delayCheck) Wait(ctx context.Context, _ int, exited <-chan struct{}) error {
	return sleep(ctx, c.d, exited)
}

// TCP is the probe tcp:ADDR: a generation is ready once a TCP connection to
// Addr ({gen} and {pid} replaced) succeeds. The connection is closed at
// once.
type TCP struct{ Addr string }

func (p *TCP) String() string { return "tcp:" + p.Addr }

// Start returns the check of generation gen.
func (p *TCP) Start(gen int) (Check, error) { return &tcpCheck{addr: p.Addr, gen: gen}, nil }

type tcpCheck struct {
	noEnv
	addr string
	gen  int
}

func (c *tcpCheck) Wait(ctx context.Context, pid int, exited <-chan struct{}) error {
	addr := expand(c.addr, c.gen, pid)
	var d net.Dialer
	return poll(ctx, exited, func(ctx context.Context) error {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return conn.Close()
	})
}

// HTTP is the probe http:URL: a generation is ready once a GET of URL
// ({gen} and {pid} replaced) is answered with a 2xx status. No connection
// is kept between attempts; proxies from the environment are not used.
type HTTP struct{ URL string }

func (p *HTTP) String() string { return "http:" + p.URL }

// Start returns the check of generation gen.
func (p *HTTP) Start(gen int) (Check, error) { return &httpCheck{url: p.URL, gen: gen}, nil }

type httpCheck struct {
	noEnv
	url string
	gen int
}

func (c *httpCheck) Wait(ctx context.Context, pid int, exited <-chan struct{}) error {
	u := expand(c.url, c.gen, pid)
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport: tr,
		// A redirect is an answer, not readiness.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return poll(ctx, exited, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				return ue.Err
			}
			return err
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("answered %s", resp.Status)
		}
		return nil
	})
}
