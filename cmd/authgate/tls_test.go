package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate for 127.0.0.1 named cn.
func writeCert(t *testing.T, certFile, keyFile, cn string, mtime time.Time) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	os.Chtimes(certFile, mtime, mtime)
	os.Chtimes(keyFile, mtime, mtime)
}

func servedCN(t *testing.T, c *certReloader) string {
	t.Helper()
	cert, err := c.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.Subject.CommonName
}

func TestCertReloader(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	base := time.Now().Add(-time.Hour)
	writeCert(t, certFile, keyFile, "first", base)

	var logs bytes.Buffer
	c, err := newCertReloader(certFile, keyFile, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c.now = func() time.Time { return now }
	if got := servedCN(t, c); got != "first" {
		t.Fatalf("served %q, want first", got)
	}

	writeCert(t, certFile, keyFile, "second", base.Add(time.Minute))
	if got := servedCN(t, c); got != "first" {
		t.Errorf("reloaded within the check interval: %q", got)
	}
	now = now.Add(2 * certCheckInterval)
	if got := servedCN(t, c); got != "second" {
		t.Errorf("after the files changed: served %q, want second", got)
	}

	// A half-written pair is logged and the previous certificate kept.
	os.WriteFile(keyFile, []byte("garbage"), 0o600)
	os.Chtimes(keyFile, base.Add(2*time.Minute), base.Add(2*time.Minute))
	now = now.Add(2 * certCheckInterval)
	if got := servedCN(t, c); got != "second" {
		t.Errorf("after a broken key: served %q, want second", got)
	}
	if !bytes.Contains(logs.Bytes(), []byte("does not load")) {
		t.Errorf("broken certificate not logged: %s", logs.String())
	}
}

// TestTLSListenerServesHTTP2 starts authgate with a certificate and checks
// that the proxy listener speaks HTTP/2 over TLS.
func TestTLSListenerServesHTTP2(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeCert(t, certFile, keyFile, "authgate-test", time.Now())
	g := startGate(t, withEnv("AUTHGATE_TLS_CERT_FILE", certFile), withEnv("AUTHGATE_TLS_KEY_FILE", keyFile))

	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(certFile)
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Get("https://" + g.ProxyAddr() + "/oauth2/start")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusFound {
		t.Errorf("got %s %d, want HTTP/2 302", resp.Proto, resp.StatusCode)
	}
}

func TestHealthcheck(t *testing.T) {
	g := startGate(t)
	t.Setenv("AUTHGATE_INTERNAL_ADDR", g.InternalAddr())
	var stderr bytes.Buffer
	if code := runHealthcheck(context.Background(), &stderr); code != 0 {
		t.Errorf("healthcheck against a live authgate: exit %d (%s)", code, stderr.String())
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	t.Setenv("AUTHGATE_INTERNAL_ADDR", closed)
	if code := runHealthcheck(context.Background(), &stderr); code != 1 {
		t.Errorf("healthcheck against a closed port: exit %d, want 1", code)
	}
}

func TestHealthURL(t *testing.T) {
	for addr, want := range map[string]string{
		":4181":         "http://127.0.0.1:4181/healthz",
		"0.0.0.0:9":     "http://127.0.0.1:9/healthz",
		"[::]:9":        "http://127.0.0.1:9/healthz",
		"10.0.0.5:4181": "http://10.0.0.5:4181/healthz",
		"[::1]:4181":    "http://[::1]:4181/healthz",
	} {
		if got, err := healthURL(addr); err != nil || got != want {
			t.Errorf("healthURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
	if _, err := healthURL("nonsense"); err == nil {
		t.Error("healthURL accepted an address without a port")
	}
}
