package idp_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/proxy/idp"
	"github.com/authgate/authgate/proxy/idp/idptest"
)

// testKeys are generated once: RSA generation is slow.
var testKeys = sync.OnceValue(func() map[string]crypto.Signer {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	return map[string]crypto.Signer{"rsa": rsaKey, "p256": p256, "p384": p384, "ed25519": ed}
})

func pemPKCS8(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func TestParseClientKey(t *testing.T) {
	keys := testKeys()
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	sec1, _ := x509.MarshalECPrivateKey(keys["p256"].(*ecdsa.PrivateKey))
	pkix, _ := x509.MarshalPKIXPublicKey(keys["p256"].Public())
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	p224der, _ := x509.MarshalECPrivateKey(p224)
	tests := []struct {
		name     string
		pem      []byte
		wantAlgs []string
		wantErr  string
	}{
		{name: "RSA PKCS #8", pem: pemPKCS8(t, keys["rsa"]), wantAlgs: []string{"RS256", "PS256", "RS384", "PS384", "RS512", "PS512"}},
		{name: "RSA PKCS #1", pem: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(keys["rsa"].(*rsa.PrivateKey))}), wantAlgs: []string{"RS256", "PS256", "RS384", "PS384", "RS512", "PS512"}},
		{name: "EC P-256 SEC 1", pem: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), wantAlgs: []string{"ES256"}},
		{name: "EC P-384 PKCS #8", pem: pemPKCS8(t, keys["p384"]), wantAlgs: []string{"ES384"}},
		{name: "Ed25519", pem: pemPKCS8(t, keys["ed25519"]), wantAlgs: []string{"EdDSA"}},
		{name: "RSA 1024", pem: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)}), wantErr: "1024 bits"},
		{name: "EC P-224", pem: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: p224der}), wantErr: "P-224"},
		{name: "public key", pem: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix}), wantErr: "not a private key"},
		{name: "encrypted", pem: pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), wantErr: "encrypted"},
		{name: "not PEM", pem: []byte("-----BEGIN nothing"), wantErr: "no PEM block"},
		{name: "two keys", pem: append(pemPKCS8(t, keys["p256"]), pemPKCS8(t, keys["p384"])...), wantErr: "more than one"},
		{name: "corrupt", pem: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("junk")}), wantErr: "parse PRIVATE KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := idp.ParseClientKey(tt.pem, "")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseClientKey error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseClientKey error = %v", err)
			}
			if !slices.Equal(k.Algorithms(), tt.wantAlgs) {
				t.Errorf("Algorithms() = %q, want %q", k.Algorithms(), tt.wantAlgs)
			}
			if k.KeyID() == "" {
				t.Errorf("KeyID() is empty, want the thumbprint")
			}
		})
	}
}

// TestClientKeyThumbprint checks the default kid against RFC 7638 computed
// by hand: SHA-256 of the required members in lexicographic order.
func TestClientKeyThumbprint(t *testing.T) {
	key := testKeys()["p256"].(*ecdsa.PrivateKey)
	k, err := idp.ParseClientKey(pemPKCS8(t, key), "")
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	pub, _ := key.PublicKey.Bytes() // 0x04 || X || Y
	canonical := fmt.Sprintf(`{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}`, enc(pub[1:33]), enc(pub[33:]))
	sum := sha256.Sum256([]byte(canonical))
	if got, want := k.KeyID(), enc(sum[:]); got != want {
		t.Errorf("KeyID() = %q, want RFC 7638 thumbprint %q", got, want)
	}
	named, _ := idp.ParseClientKey(pemPKCS8(t, key), "my-kid")
	if named.KeyID() != "my-kid" {
		t.Errorf("KeyID() = %q, want my-kid", named.KeyID())
	}
}

// TestPrivateKeyJWT runs a login, a refresh and a revocation with each key
// type against idptest, which verifies every assertion's signature with the
// public key and its claims (iss, sub, aud, exp, iat, unique jti) and
// refuses secrets; the test then checks what was sent.
func TestPrivateKeyJWT(t *testing.T) {
	tests := []struct {
		name    string
		key     string
		kid     string
		algs    []string // the provider's token_endpoint_auth_signing_alg_values_supported
		wantAlg string
	}{
		{name: "RSA", key: "rsa", wantAlg: "RS256"},
		{name: "RSA, provider lists only PS256", key: "rsa", algs: []string{"PS256"}, wantAlg: "PS256"},
		{name: "EC P-256", key: "p256", kid: "configured-kid", wantAlg: "ES256"},
		{name: "EC P-384", key: "p384", wantAlg: "ES384"},
		{name: "Ed25519", key: "ed25519", wantAlg: "EdDSA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			signer := testKeys()[tt.key]
			ck, err := idp.ParseClientKey(pemPKCS8(t, signer), tt.kid)
			if err != nil {
				t.Fatal(err)
			}
			s := idptest.New(t, idptest.Options{ClientPublicKey: signer.Public(), AssertionAlgs: tt.algs})
			logs := &logBuffer{}
			p := startProvider(t, idp.Options{IssuerURL: s.URL, ClientID: s.ClientID, ClientKey: ck, RedirectURL: testRedirectURL, Logger: logs.logger()})
			ar, code := login(t, s, p)
			tokens, id, err := p.Exchange(context.Background(), code, ar.CodeVerifier, ar.Nonce)
			if err != nil {
				t.Fatalf("Exchange() error = %v", err)
			}
			refreshed, err := p.Refresh(context.Background(), tokens.RefreshToken, id.Subject)
			if err != nil {
				t.Fatalf("Refresh() error = %v", err)
			}
			if err := p.Revoke(context.Background(), refreshed.RefreshToken); err != nil {
				t.Fatalf("Revoke() error = %v", err)
			}
			if !slices.Contains(s.Revoked(), refreshed.RefreshToken) {
				t.Errorf("provider did not revoke the refresh token")
			}
			got := s.Assertions()
			if len(got) != 3 {
				t.Fatalf("provider received %d assertions, want 3 (code, refresh, revoke)", len(got))
			}
			jtis := map[any]bool{}
			for i, a := range got {
				if a.Err != nil {
					t.Errorf("assertion %d (%s) refused: %v", i, a.Endpoint, a.Err)
					continue
				}
				if a.Header.Algorithm != tt.wantAlg || a.Header.KeyID != ck.KeyID() || a.Header.ExtraHeaders["typ"] != "JWT" {
					t.Errorf("assertion %d header alg=%q kid=%q typ=%v, want %q %q JWT", i, a.Header.Algorithm, a.Header.KeyID, a.Header.ExtraHeaders["typ"], tt.wantAlg, ck.KeyID())
				}
				if tt.kid != "" && a.Header.KeyID != tt.kid {
					t.Errorf("assertion kid = %q, want the configured %q", a.Header.KeyID, tt.kid)
				}
				c := a.Claims
				if c["aud"] != s.URL+"/token" && !slices.Contains(anySlice(c["aud"]), any(s.URL+"/token")) {
					t.Errorf("assertion %d aud = %v, want the token endpoint", i, c["aud"])
				}
				iat, _ := c["iat"].(float64)
				exp, _ := c["exp"].(float64)
				if life := exp - iat; life <= 0 || life > 120 {
					t.Errorf("assertion %d lives %v s, want a short positive lifetime", i, life)
				}
				if time.Since(time.Unix(int64(iat), 0)) > time.Minute {
					t.Errorf("assertion %d iat is not now", i)
				}
				jtis[c["jti"]] = true
			}
			if len(jtis) != 3 {
				t.Errorf("assertions share a jti: %v", jtis)
			}
			assertNoSecrets(t, "logs", logs.String(), s.Issued())
		})
	}
}

func anySlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// TestPrivateKeyJWTAlgorithmNotAccepted: a key whose algorithms the provider
// does not list never becomes ready, and the log says why at ERROR.
func TestPrivateKeyJWTAlgorithmNotAccepted(t *testing.T) {
	signer := testKeys()["rsa"]
	ck, err := idp.ParseClientKey(pemPKCS8(t, signer), "")
	if err != nil {
		t.Fatal(err)
	}
	s := idptest.New(t, idptest.Options{ClientPublicKey: signer.Public(), AssertionAlgs: []string{"ES256"}})
	logs := &logBuffer{}
	p, err := idp.New(idp.Options{IssuerURL: s.URL, ClientID: s.ClientID, ClientKey: ck, RedirectURL: testRedirectURL, Logger: logs.logger(),
		DiscoveryRetryMin: time.Millisecond, DiscoveryRetryMax: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	p.Run(ctx)
	if p.Ready() {
		t.Fatal("Ready() = true, want false: the provider cannot verify this key's algorithm")
	}
	if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "accepts only [ES256]") {
		t.Errorf("logs lack the reason at ERROR:\n%.600s", l)
	}
}

func TestNewRefusesSecretAndKey(t *testing.T) {
	ck, err := idp.ParseClientKey(pemPKCS8(t, testKeys()["p256"]), "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = idp.New(idp.Options{IssuerURL: "https://idp.example", ClientID: "c", RedirectURL: "https://app.example/cb", ClientSecret: "s", ClientKey: ck})
	if err == nil || !strings.Contains(err.Error(), "both set") {
		t.Fatalf("New() error = %v, want secret and key refused together", err)
	}
}

// TestPrivateKeyJWTWrongKey: a provider holding another public key refuses
// the assertion (invalid_client), and the login fails.
func TestPrivateKeyJWTWrongKey(t *testing.T) {
	ck, err := idp.ParseClientKey(pemPKCS8(t, testKeys()["p256"]), "")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s := idptest.New(t, idptest.Options{ClientPublicKey: other.Public()})
	p := startProvider(t, idp.Options{IssuerURL: s.URL, ClientID: s.ClientID, ClientKey: ck, RedirectURL: testRedirectURL, Logger: (&logBuffer{}).logger()})
	ar, code := login(t, s, p)
	if _, _, err := p.Exchange(context.Background(), code, ar.CodeVerifier, ar.Nonce); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("Exchange() error = %v, want invalid_client", err)
	}
	if a := s.Assertions(); len(a) != 1 || a[0].Err == nil {
		t.Fatalf("provider assertions = %+v, want one refused", a)
	}
}
