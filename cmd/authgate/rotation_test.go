package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/example/server/storage"

	"github.com/authgate/authgate/internal/redistest"
	"github.com/authgate/authgate/internal/secretfile/secretfiletest"
	"github.com/authgate/authgate/proxy/idp/idptest"
)

// waitReload waits until variable's file has been applied n times in all
// (successes), or failed n times when failed is set.
func waitReload(t *testing.T, g *gate, variable string, n int, failed bool) {
	t.Helper()
	result := "success"
	if failed {
		result = "failure"
	}
	series := fmt.Sprintf(`authgate_secret_reloads_total{result=%q,variable=%q}`, result, variable)
	redistest.Eventually(t, 5*time.Second, series, func() bool { return metricValue(t, g, series) >= n })
}

// TestSecretRotation: the cookie key list and the client secret rotate
// through a Secret volume updated the way the kubelet does it, with no
// restart: a new first key keeps existing sessions, the IdP gets the new
// client secret, a retired key's session becomes a fresh login, and an
// invalid file keeps the last good value.
func TestSecretRotation(t *testing.T) {
	keyA := testCookieSecret
	keyB := base64.StdEncoding.EncodeToString([]byte("BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	op, clientID, secret := startOP(t, base+"/oauth2/callback")
	up := startUpstream(t)
	vol := secretfiletest.NewKubeletDir(t, map[string]string{"client_secret": secret, "cookie_secret": keyA})
	env := gateEnv(base, op, clientID, secret, up, func(env map[string]string) {
		delete(env, "AUTHGATE_CLIENT_SECRET")
		delete(env, "AUTHGATE_COOKIE_SECRET")
		env["AUTHGATE_CLIENT_SECRET_FILE"] = vol.Path("client_secret")
		env["AUTHGATE_COOKIE_SECRET_FILE"] = vol.Path("cookie_secret")
	})
	g := startGateWith(t, ln, env, op, up)

	// passes reports whether a navigation with cookie reaches the
	// upstream (true) or is sent to log in (false).
	passes := func(cookie string) bool {
		t.Helper()
		before := up.count()
		// Without Fetch Metadata a login is a plain 302, not the
		// deep-link page.
		resp := rawRequest(t, "GET", g.URL+"/app", cookie, map[string]string{"Accept": "text/html"})
		readBody(t, resp)
		switch {
		case resp.StatusCode == http.StatusOK && up.count() == before+1:
			return true
		case resp.StatusCode == http.StatusFound && strings.HasPrefix(resp.Header.Get("Location"), op.URL):
			return false
		}
		t.Fatalf("GET /app = %d (Location %q), want 200 from the upstream or a login redirect", resp.StatusCode, resp.Header.Get("Location"))
		return false
	}

	b1 := newBrowser(t)
	readBody(t, b1.signIn(g, g.URL+"/app"))
	underA := sessionCookie(t, b1, g)
	if !passes(underA) {
		t.Fatal("session sealed with key A does not pass before any rotation")
	}

	// Rotate: a new first key, and a new client secret that the IdP
	// alone now accepts.
	const secret2 = "rotated-client-secret"
	storage.RegisterClients(storage.WebClient(clientID, secret2, base+"/oauth2/callback"))
	vol.Update(map[string]string{"client_secret": secret2, "cookie_secret": keyB + "," + keyA})
	waitReload(t, g, "AUTHGATE_COOKIE_SECRET_FILE", 1, false)
	waitReload(t, g, "AUTHGATE_CLIENT_SECRET_FILE", 1, false)

	if !passes(underA) {
		t.Error("after adding a new first key, the session sealed with the old key no longer passes")
	}
	b2 := newBrowser(t)
	resp := b2.signIn(g, g.URL+"/app")
	if body := readBody(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, "upstream /app") {
		t.Fatalf("login after the client secret rotated = %d %.200q, want the upstream page (the IdP must get the new secret)", resp.StatusCode, body)
	}
	underB := sessionCookie(t, b2, g)

	// An invalid key list keeps the last good one.
	vol.Update(map[string]string{"client_secret": secret2, "cookie_secret": "not base64 at all!"})
	waitReload(t, g, "AUTHGATE_COOKIE_SECRET_FILE", 1, true)
	if !passes(underA) || !passes(underB) {
		t.Error("an invalid cookie secret file replaced the keys in use")
	}
	if v := metricValue(t, g, `authgate_secret_file_stale{variable="AUTHGATE_COOKIE_SECRET_FILE"}`); v != 1 {
		t.Errorf("authgate_secret_file_stale = %d, want 1", v)
	}

	// Retire key A: its session becomes a fresh login; B's stays.
	vol.Update(map[string]string{"client_secret": secret2, "cookie_secret": keyB})
	waitReload(t, g, "AUTHGATE_COOKIE_SECRET_FILE", 2, false)
	if passes(underA) {
		t.Error("the session sealed with the retired key still passes")
	}
	if !passes(underB) {
		t.Error("the session sealed with the new key does not pass")
	}
	if v := metricValue(t, g, `authgate_secret_file_stale{variable="AUTHGATE_COOKIE_SECRET_FILE"}`); v != 0 {
		t.Errorf("authgate_secret_file_stale = %d after a good file, want 0", v)
	}
	logs := g.logs.String()
	for _, s := range []string{secret2, secret, keyB, "not base64 at all"} {
		if strings.Contains(logs, s) {
			t.Errorf("logs contain a secret file's content %q", s)
		}
	}
}

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// serverCert issues a certificate for 127.0.0.1.
func (ca *testCA) serverCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "upstream"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestUpstreamCARotation: AUTHGATE_UPSTREAM_CA_FILE is re-read; an https
// upstream signed by a CA that is not trusted gets 502 until the bundle
// holds its CA, with no restart.
func TestUpstreamCARotation(t *testing.T) {
	right, wrong := newTestCA(t, "right"), newTestCA(t, "wrong")
	tlsUp := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "tls upstream")
	}))
	tlsUp.TLS = &tls.Config{Certificates: []tls.Certificate{right.serverCert(t)}}
	tlsUp.StartTLS()
	defer tlsUp.Close()

	vol := secretfiletest.NewKubeletDir(t, map[string]string{"ca.crt": wrong.pem})
	g := startGate(t,
		withEnv("AUTHGATE_UPSTREAM", tlsUp.URL),
		withEnv("AUTHGATE_UPSTREAM_CA_FILE", vol.Path("ca.crt")),
		withEnv("AUTHGATE_PUBLIC_PATHS", "/public/"))
	get := func() (int, string) {
		code, _, body := send(t, "GET", g.URL+"/public/x", "", nil)
		return code, body
	}
	if code, body := get(); code != http.StatusBadGateway {
		t.Fatalf("upstream signed by an untrusted CA: %d %q, want 502", code, body)
	}
	vol.Update(map[string]string{"ca.crt": right.pem})
	waitReload(t, g, "AUTHGATE_UPSTREAM_CA_FILE", 1, false)
	// Idle connections are not kept after a failed handshake, so the next
	// request makes a new one with the new pool.
	if code, body := get(); code != http.StatusOK || body != "tls upstream" {
		t.Errorf("after the CA rotated: %d %q, want 200 from the upstream\n%s", code, body, g.logs.String())
	}
	vol.Update(map[string]string{"ca.crt": "garbage"})
	waitReload(t, g, "AUTHGATE_UPSTREAM_CA_FILE", 1, true)
	if code, _ := get(); code != http.StatusOK {
		t.Errorf("an invalid CA file replaced the bundle in use: %d", code)
	}
}

// TestVerifyWithPool: the swapped-pool verification still checks the
// chain and the server's name.
func TestVerifyWithPool(t *testing.T) {
	right, wrong := newTestCA(t, "right"), newTestCA(t, "wrong")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{right.serverCert(t)}}
	srv.StartTLS()
	defer srv.Close()
	pool := func(ca *testCA) func() *x509.CertPool {
		return func() *x509.CertPool { p := x509.NewCertPool(); p.AddCert(ca.cert); return p }
	}
	for _, tc := range []struct {
		name   string
		config *tls.Config
		ok     bool
	}{
		{"trusted, IP name", verifyWithPool(pool(right), "127.0.0.1"), true},
		{"untrusted CA", verifyWithPool(pool(wrong), "127.0.0.1"), false},
		{"wrong name", verifyWithPool(pool(right), "example.com"), false},
		{"no name at all", verifyWithPool(pool(right), ""), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc.config}}
			resp, err := c.Get(srv.URL)
			if err == nil {
				resp.Body.Close()
			}
			if (err == nil) != tc.ok {
				t.Errorf("GET = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// TestClientKeyRotation: a rotated AUTHGATE_CLIENT_PRIVATE_KEY_FILE signs
// the next client assertion (its kid is the new key's thumbprint), with no
// restart; an invalid key file keeps the key in use.
func TestClientKeyRotation(t *testing.T) {
	file1, key1 := writeClientKey(t)
	file2, key2 := writeClientKey(t)
	pem1, _ := os.ReadFile(file1)
	pem2, _ := os.ReadFile(file2)
	vol := secretfiletest.NewKubeletDir(t, map[string]string{"client.pem": string(pem1)})
	g, s := startFakeGate(t, idptest.Options{ClientSecret: "unused", ClientPublicKey: key1.Public()},
		withoutEnv("AUTHGATE_CLIENT_SECRET"), withEnv("AUTHGATE_CLIENT_PRIVATE_KEY_FILE", vol.Path("client.pem")))
	thumb := func(k *ecdsa.PrivateKey) string {
		tp, err := (&jose.JSONWebKey{Key: k.Public()}).Thumbprint(crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(tp)
	}
	lastKid := func() string {
		a := s.Assertions()
		if len(a) == 0 {
			t.Fatal("no client assertion")
		}
		return a[len(a)-1].Header.KeyID
	}
	b := newBrowser(t)
	if resp := b.navigate(g.URL + "/app"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %.200q", resp.StatusCode, readBody(t, resp))
	}
	if got := lastKid(); got != thumb(key1) {
		t.Fatalf("login assertion kid = %q, want key 1's thumbprint %q", got, thumb(key1))
	}
	refresh := func() {
		g.clock.Advance(10 * time.Minute) // past the access token: the next request refreshes
		readBody(t, b.navigate(g.URL+"/again"))
	}

	vol.Update(map[string]string{"client.pem": "not a key"})
	waitReload(t, g, "AUTHGATE_CLIENT_PRIVATE_KEY_FILE", 1, true)
	refresh()
	if got := lastKid(); got != thumb(key1) {
		t.Errorf("after an invalid key file, kid = %q, want key 1's %q kept", got, thumb(key1))
	}

	vol.Update(map[string]string{"client.pem": string(pem2)})
	waitReload(t, g, "AUTHGATE_CLIENT_PRIVATE_KEY_FILE", 1, false)
	refresh()
	if got := lastKid(); got != thumb(key2) {
		t.Errorf("after the key rotated, kid = %q, want key 2's thumbprint %q", got, thumb(key2))
	}
	if logs := g.logs.String(); strings.Contains(logs, "PRIVATE KEY") {
		t.Error("logs contain a private key")
	}
}
