//go:build linux

package handoff

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fdsend/fdsend/internal/fdtest"
)

func init() {
	children["tlsInstance"] = childTLSInstance
}

// writeTestCert writes a self-signed certificate for 127.0.0.1 and its key
// in dir, and returns the pool that trusts it.
func writeTestCert(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "handoff test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// serveTLS answers each TLS client of l with who, then closes it.
func serveTLS(l net.Listener, cfg *tls.Config, who string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			tc := tls.Server(c, cfg)
			if tc.Handshake() == nil {
				io.WriteString(tc, who+"\n")
				io.Copy(io.Discard, tc) // until the client closes
			}
		}()
	}
}

// childTLSInstance takes the TLS listener "tls" at TLS_ADDR over from the
// instance at TLS_POINT with the certificate in TLS_DIR, and its session-
// ticket keys unless TLS_FRESH=1, and serves "new" until stdin closes.
func childTLSInstance() error {
	dir := os.Getenv("TLS_DIR")
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		return err
	}
	u, err := Open(Config{Path: os.Getenv("TLS_POINT"), LockTimeout: 30 * time.Second})
	if err != nil {
		return err
	}
	defer u.Close()
	l, err := u.Listen("tls", "tcp", os.Getenv("TLS_ADDR"))
	if err != nil {
		return err
	}
	defer l.Close()
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	if os.Getenv("TLS_FRESH") != "1" {
		keys, err := u.TicketKeys()
		if err != nil {
			return err
		}
		cfg.SetSessionTicketKeys(keys)
	}
	if err := u.Ready(); err != nil {
		return err
	}
	go serveTLS(l, cfg, "new")
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// A TLS client that began a session with the older instance resumes it on
// the newer one, which took the session-ticket keys over; without them
// (TLS_FRESH) it cannot.
func TestTicketKeysResume(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fresh  bool
		resume bool
	}{{"handed over", false, true}, {"fresh keys", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			fdtest.Check(t)
			dir := shortDir(t)
			roots := writeTestCert(t, dir)
			cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
			if err != nil {
				t.Fatal(err)
			}
			point := filepath.Join(dir, "h.sock")
			u, err := Open(Config{Path: point})
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			l, err := u.Listen("tls", "tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			keys, err := u.TicketKeys()
			if err != nil || len(keys) != 1 {
				t.Fatalf("TicketKeys of the first instance: %d keys, %v", len(keys), err)
			}
			again, _ := u.TicketKeys()
			if len(again) != 1 || again[0] != keys[0] {
				t.Fatalf("TicketKeys changed between calls")
			}
			cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
			cfg.SetSessionTicketKeys(keys)
			if err := u.Ready(); err != nil {
				t.Fatal(err)
			}
			go serveTLS(l, cfg, "old")

			ccfg := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", ClientSessionCache: tls.NewLRUClientSessionCache(4)}
			visit := func() (string, bool) {
				t.Helper()
				c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", l.Addr().String(), ccfg)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				return strings.TrimSpace(line), c.ConnectionState().DidResume
			}
			if who, resumed := visit(); who != "old" || resumed {
				t.Fatalf("first visit: served by %s, resumed %v", who, resumed)
			}
			env := []string{"TLS_DIR=" + dir, "TLS_POINT=" + point, "TLS_ADDR=" + l.Addr().String()}
			if tc.fresh {
				env = append(env, "TLS_FRESH=1")
			}
			child := fdtest.StartChild(t, childEnv, "tlsInstance", false, env...)
			if line, err := child.ReadLine(60 * time.Second); err != nil || strings.TrimSpace(line) != "ready" {
				t.Fatalf("the newer instance: %q, %v", line, err)
			}
			select {
			case <-u.Draining():
			case <-time.After(30 * time.Second):
				t.Fatal("not draining after the newer instance's Ready")
			}
			l.Close()
			who, resumed := visit()
			if who != "new" || resumed != tc.resume {
				t.Errorf("second visit: served by %s, resumed %v; want new, %v", who, resumed, tc.resume)
			}
			child.In.Close()
			if err := child.Wait(30 * time.Second); err != nil {
				t.Errorf("the newer instance: %v", err)
			}
		})
	}
}
