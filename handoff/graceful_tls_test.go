//go:build linux

package handoff

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fdsend/fdsend/internal/fdtest"
)

// selfSigned writes a certificate for 127.0.0.1 and its key into dir and
// returns their paths and a pool that trusts it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "graceful test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  nil,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}

// TestGracefulTLS: HTTPS keep-alive clients of examples/graceful across
// restarts. TLS connections cannot move: they drain, without a failed
// request; and the clients' sessions, made with the old instances, resume
// on the new ones (the hand-off carries the session-ticket keys).
func TestGracefulTLS(t *testing.T) {
	fdtest.Check(t)
	dir := shortDir(t)
	certFile, keyFile, pool := selfSigned(t, dir)
	addr := freeAddr(t)
	args := []string{"-listen", addr, "-handoff", filepath.Join(dir, "g.sock"), "-idle-grace", "500ms", "-tls-cert", certFile, "-tls-key", keyFile}

	first := startGraceful(t, args)
	first.waitReady(t)
	const clients = 20
	var failed, ok, handshakes, resumed atomic.Int64
	var errMu sync.Mutex
	var errs []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost", ClientSessionCache: tls.NewLRUClientSessionCache(4)}}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				trace := &httptrace.ClientTrace{TLSHandshakeDone: func(cs tls.ConnectionState, err error) {
					if err == nil {
						handshakes.Add(1)
						if cs.DidResume {
							resumed.Add(1)
						}
					}
				}}
				req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), "GET", "https://"+addr+"/", nil)
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				if err != nil {
					failed.Add(1)
					errMu.Lock()
					errs = append(errs, err.Error())
					errMu.Unlock()
				} else {
					ok.Add(1)
				}
				time.Sleep(20 * time.Millisecond) // pacing, not synchronisation
			}
		}()
	}
	time.Sleep(200 * time.Millisecond) // every client has a session with the first instance (pacing)
	instances := []*instance{first}
	for i := range 3 {
		in := startGraceful(t, args)
		in.waitReady(t)
		old := instances[len(instances)-1]
		instances = append(instances, in)
		if err := old.wait(30 * time.Second); err != nil {
			t.Fatalf("restart %d: old instance %d: %v; stderr:\n%s", i+1, old.pid, err, old.stderr)
		}
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	last := instances[len(instances)-1]
	last.cmd.Process.Signal(syscall.SIGTERM)
	last.wait(30 * time.Second)
	t.Logf("%d requests, %d failed, %d handshakes, %d resumed", ok.Load(), failed.Load(), handshakes.Load(), resumed.Load())
	if failed.Load() > 0 {
		t.Errorf("%d requests failed: %q", failed.Load(), errs[:min(len(errs), 5)])
	}
	// Every client makes a full handshake with the first instance; the
	// handshakes after that, one per client per drained connection, are
	// with newer instances, and must resume.
	if full := handshakes.Load() - resumed.Load(); full > clients {
		t.Errorf("%d full handshakes for %d clients: sessions did not resume on the newer instances (%d resumed)", full, clients, resumed.Load())
	}
	if resumed.Load() < clients {
		t.Errorf("only %d resumed handshakes for %d clients across 3 restarts", resumed.Load(), clients)
	}
}
