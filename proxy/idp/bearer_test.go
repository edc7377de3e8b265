package idp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/proxy/idp"
	"github.com/authgate/authgate/proxy/idp/idptest"
)

// jwksServer serves a JWKS that a test can rotate, and counts fetches. The
// idptest provider's discovery document points at it, so that the test can
// mint access tokens with keys it holds (idptest signs only ID tokens).
type jwksServer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	keys    []jose.JSONWebKey
	down    bool
	fetches atomic.Int64
}

func newJWKSServer(t testing.TB) *jwksServer {
	j := &jwksServer{}
	j.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.fetches.Add(1)
		j.mu.Lock()
		keys, down := slices.Clone(j.keys), j.down
		j.mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: keys})
	}))
	t.Cleanup(j.srv.Close)
	return j
}

// publish replaces the served keys with the public halves of keys.
func (j *jwksServer) publish(keys ...testKey) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.keys = nil
	for _, k := range keys {
		j.keys = append(j.keys, jose.JSONWebKey{Key: k.public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
	}
}

func (j *jwksServer) setDown(down bool) {
	j.mu.Lock()
	j.down = down
	j.mu.Unlock()
}

type testKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv any
}

func (k testKey) public() any {
	switch p := k.priv.(type) {
	case *ecdsa.PrivateKey:
		return p.Public()
	case *rsa.PrivateKey:
		return p.Public()
	}
	panic("unknown key type")
}

func newECKey(t testing.TB, kid string) testKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{kid: kid, alg: jose.ES256, priv: k}
}

func newRSAKey(t testing.TB, kid string) testKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{kid: kid, alg: jose.RS256, priv: k}
}

// mint signs claims with k; typ is the JWS "typ" header ("" for none).
func mint(t testing.TB, k testKey, typ string, claims map[string]any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// handMade assembles a compact JWS from a header and claims with the given
// signature function; go-jose refuses to produce "none" and keyless HMAC
// tokens, which are the attacks.
func handMade(header, claims map[string]any, sign func(signingInput string) []byte) string {
	enc := base64.RawURLEncoding.EncodeToString
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := enc(h) + "." + enc(c)
	return input + "." + enc(sign(input))
}

type bearerEnv struct {
	op   *idptest.Server
	jwks *jwksServer
	p    *idp.Provider
	now  atomic.Pointer[time.Time]
	ec   testKey
	rsa  testKey
}

func (e *bearerEnv) clock() time.Time { return *e.now.Load() }

func (e *bearerEnv) advance(d time.Duration) {
	t := e.clock().Add(d)
	e.now.Store(&t)
}

func newBearerEnv(t testing.TB) *bearerEnv {
	t.Helper()
	e := &bearerEnv{jwks: newJWKSServer(t), ec: newECKey(t, "ec-1"), rsa: newRSAKey(t, "rsa-1")}
	start := time.Now()
	e.now.Store(&start)
	e.jwks.publish(e.ec, e.rsa)
	e.op = idptest.New(t, idptest.Options{Discovery: func(doc map[string]any) {
		doc["jwks_uri"] = e.jwks.srv.URL
		doc["id_token_signing_alg_values_supported"] = []string{"ES256", "RS256", "HS256", "none"}
	}})
	p, err := idp.New(idp.Options{
		IssuerURL: e.op.URL, ClientID: e.op.ClientID, RedirectURL: "http://127.0.0.1:1/oauth2/callback",
		Logger: slog.New(slog.DiscardHandler), Now: e.clock,
		DiscoveryRetryMin: time.Millisecond, DiscoveryRetryMax: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p.Run(ctx)
	if !p.Ready() {
		t.Fatal("provider not ready")
	}
	e.p = p
	return e
}

// claims are a valid access token's claims for the API "api-1".
func (e *bearerEnv) claims(edit func(map[string]any)) map[string]any {
	now := e.clock()
	c := map[string]any{
		"iss":            e.op.URL,
		"sub":            "user-7",
		"aud":            []string{"api-1", "other"},
		"exp":            now.Add(5 * time.Minute).Unix(),
		"iat":            now.Unix(),
		"email":          "u7@example.test",
		"email_verified": true,
		"groups":         []string{"dev"},
		"client_id":      "cli",
	}
	if edit != nil {
		edit(c)
	}
	return c
}

var audiences = []string{"api-1", "api-2"}

func TestVerifyBearer(t *testing.T) {
	e := newBearerEnv(t)
	rsaDER, _ := x509.MarshalPKIXPublicKey(e.rsa.public())
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaDER})
	otherEC := newECKey(t, "ec-1") // same kid as the published key, other key
	hs256 := func(secret []byte) func(string) []byte {
		return func(in string) []byte {
			m := hmac.New(sha256.New, secret)
			m.Write([]byte(in))
			return m.Sum(nil)
		}
	}
	tests := []struct {
		name     string
		token    func() string
		wantDesc string // empty: valid
	}{
		{"valid ES256", func() string { return mint(t, e.ec, "at+jwt", e.claims(nil)) }, ""},
		{"valid RS256, typ JWT", func() string { return mint(t, e.rsa, "JWT", e.claims(nil)) }, ""},
		{"valid, single string audience", func() string {
			return mint(t, e.ec, "", e.claims(func(c map[string]any) { c["aud"] = "api-2" }))
		}, ""},
		{"wrong audience", func() string {
			return mint(t, e.ec, "", e.claims(func(c map[string]any) { c["aud"] = []string{"api-3"} }))
		}, "audience not accepted"},
		{"no audience", func() string {
			return mint(t, e.ec, "", e.claims(func(c map[string]any) { delete(c, "aud") }))
		}, "audience not accepted"},
		{"authgate's own ID token audience", func() string {
			return mint(t, e.ec, "", e.claims(func(c map[string]any) { c["aud"] = e.op.ClientID }))
		}, "audience not accepted"},
		{"wrong issuer", func() string {
			return mint(t, e.ec, "", e.claims(func(c map[string]any) { c["iss"] = "https://evil.example" }))
		}, "token issued by another issuer"},
		{"issuer with trailing slash", func() string {
			return mint(t, e.ec, "", e.claims(func(c map[string]any) { c["iss"] = e.op.URL + "/" }))
		}, "token issued by another issuer"},
		{"expired", func() string {
			return mint(t, e.ec, "", e.claims(func(c map[string]any) { c["exp"] = e.clock().Add(-time.Second).Unix() }))
		}, "token expired"},
		{"no exp", func() string {
			return mint(t, e.ec, "", e.claims(func(c map[string]any) { delete(c, "exp") }))
		}, "token expired"},
		{"not yet valid", func() string {
			return mint(t, e.ec, "", e.claims(func(c map[string]any) { c["nbf"] = e.clock().Add(time.Hour).Unix() }))
		}, "token not yet valid"},
		{"exp as a string", func() string {
			return mint(t, e.ec, "", e.claims(func(c map[string]any) { c["exp"] = "9999999999" }))
		}, "token dates are not numbers"},
		{"iat as a string", func() string {
			return mint(t, e.ec, "", e.claims(func(c map[string]any) { c["iat"] = fmt.Sprint(e.clock().Unix()) }))
		}, "token dates are not numbers"},
		{"nbf as a string", func() string {
			return mint(t, e.ec, "", e.claims(func(c map[string]any) { c["nbf"] = "0" }))
		}, "token dates are not numbers"},
		{"valid, fractional exp", func() string {
			return mint(t, e.ec, "", e.claims(func(c map[string]any) { c["exp"] = float64(e.clock().Add(time.Hour).Unix()) + 0.5 }))
		}, ""},
		{"no subject", func() string {
			return mint(t, e.ec, "", e.claims(func(c map[string]any) { delete(c, "sub") }))
		}, "token has no subject"},
		{"alg none", func() string {
			return handMade(map[string]any{"alg": "none", "kid": "ec-1"}, e.claims(nil), func(string) []byte { return nil })
		}, "signing algorithm not accepted"},
		{"alg None", func() string {
			return handMade(map[string]any{"alg": "None"}, e.claims(nil), func(string) []byte { return nil })
		}, "signing algorithm not accepted"},
		{"HS256 signed with the public key (PEM)", func() string {
			return handMade(map[string]any{"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}, e.claims(nil), hs256(rsaPEM))
		}, "signing algorithm not accepted"},
		{"HS256 signed with the public key (DER)", func() string {
			return handMade(map[string]any{"alg": "HS256", "kid": "rsa-1"}, e.claims(nil), hs256(rsaDER))
		}, "signing algorithm not accepted"},
		{"ES256 header over an RS256 key id", func() string {
			k := e.ec
			k.kid = "rsa-1"
			return mint(t, k, "", e.claims(nil))
		}, "unknown signing key"},
		{"unknown kid", func() string {
			return mint(t, newECKey(t, "never-published"), "", e.claims(nil))
		}, "unknown signing key"},
		{"known kid, other key", func() string { return mint(t, otherEC, "", e.claims(nil)) }, "invalid signature"},
		{"signature of another token", func() string {
			a := mint(t, e.ec, "", e.claims(nil))
			b := mint(t, e.ec, "", e.claims(func(c map[string]any) { c["sub"] = "admin" }))
			return b[:strings.LastIndexByte(b, '.')] + a[strings.LastIndexByte(a, '.'):]
		}, "invalid signature"},
		{"logout token type", func() string { return mint(t, e.ec, "logout+jwt", e.claims(nil)) }, "not an access token"},
		{"critical header", func() string {
			return handMade(map[string]any{"alg": "ES256", "kid": "ec-1", "crit": []string{"exp"}, "exp": 1}, e.claims(nil), func(string) []byte { return make([]byte, 64) })
		}, "unsupported critical header"},
		{"two parts", func() string { return "eyJhbGciOiJFUzI1NiJ9.e30" }, "malformed token"},
		{"garbage", func() string { return "not a jwt at all" }, "malformed token"},
		{"header not JSON", func() string { return "bm9wZQ.e30.AA" }, "malformed token"},
		{"empty", func() string { return "" }, "malformed token"},
		{"huge", func() string { return strings.Repeat("a", 20000) + ".b.c" }, "malformed token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := tt.token()
			id, err := e.p.VerifyBearer(context.Background(), token, audiences)
			if tt.wantDesc == "" {
				if err != nil {
					t.Fatalf("VerifyBearer() error = %v, want nil", err)
				}
				if id.Subject != "user-7" || id.Email != "u7@example.test" || id.EmailVerified == nil || !*id.EmailVerified || !slices.Equal(id.Groups, []string{"dev"}) {
					t.Errorf("VerifyBearer() = %+v, want user-7 with email and groups", id)
				}
				return
			}
			if err == nil {
				t.Fatalf("VerifyBearer() = %+v, want an error %q", id, tt.wantDesc)
			}
			var te *idp.TokenError
			if !errors.As(err, &te) || !errors.Is(err, idp.ErrInvalidToken) {
				t.Fatalf("VerifyBearer() error = %v, want a *TokenError wrapping ErrInvalidToken", err)
			}
			if te.Description != tt.wantDesc {
				t.Errorf("Description = %q, want %q (error %v)", te.Description, tt.wantDesc, err)
			}
			// RFC 6750 section 3: error_description is %x20-21 / %x23-5B / %x5D-7E.
			if strings.ContainsAny(te.Description, "\"\\") || len(token) > 20 && strings.Contains(err.Error(), token[:20]) {
				t.Errorf("error %q echoes the token or is not a safe description", err)
			}
		})
	}
}

// TestVerifyBearerGroupsClaim: an absent groups claim gives nil groups
// (unknown), an empty one an empty, non-nil list.
func TestVerifyBearerGroupsClaim(t *testing.T) {
	e := newBearerEnv(t)
	absent, err := e.p.VerifyBearer(context.Background(), mint(t, e.ec, "", e.claims(func(c map[string]any) { delete(c, "groups") })), audiences)
	if err != nil {
		t.Fatal(err)
	}
	if absent.Groups != nil {
		t.Errorf("Groups without the claim = %#v, want nil", absent.Groups)
	}
	empty, err := e.p.VerifyBearer(context.Background(), mint(t, e.ec, "", e.claims(func(c map[string]any) { c["groups"] = []string{} })), audiences)
	if err != nil {
		t.Fatal(err)
	}
	if empty.Groups == nil || len(empty.Groups) != 0 {
		t.Errorf("Groups with an empty claim = %#v, want an empty non-nil list", empty.Groups)
	}
}

// TestVerifyBearerKeyRotation: a key the provider starts using after the
// keys were cached still verifies (the unknown kid triggers a fetch), made-up
// key ids cannot make authgate fetch more than once per interval, and a key
// the provider withdrew stops verifying once the cache is refreshed.
func TestVerifyBearerKeyRotation(t *testing.T) {
	e := newBearerEnv(t)
	ctx := context.Background()
	verify := func(k testKey) error {
		_, err := e.p.VerifyBearer(ctx, mint(t, k, "", e.claims(nil)), audiences)
		return err
	}
	if err := verify(e.ec); err != nil {
		t.Fatalf("first token: %v", err)
	}
	if got := e.jwks.fetches.Load(); got != 1 {
		t.Fatalf("JWKS fetches after the first token = %d, want 1", got)
	}
	if err := verify(e.ec); err != nil || e.jwks.fetches.Load() != 1 {
		t.Fatalf("second token: err %v, fetches %d, want nil and 1 (cached)", err, e.jwks.fetches.Load())
	}

	rotated := newECKey(t, "ec-2")
	e.jwks.publish(rotated)
	e.advance(bearerRefetchMin)
	if err := verify(rotated); err != nil {
		t.Fatalf("token signed with the rotated key: %v", err)
	}
	if got := e.jwks.fetches.Load(); got != 2 {
		t.Errorf("JWKS fetches after rotation = %d, want 2", got)
	}

	// A burst of forged tokens naming unknown keys: at most one fetch per interval.
	for i := range 20 {
		err := verify(newECKey(t, "forged-"+string(rune('a'+i))))
		if !errors.Is(err, idp.ErrInvalidToken) {
			t.Fatalf("forged kid: %v, want ErrInvalidToken", err)
		}
	}
	if got := e.jwks.fetches.Load(); got != 2 {
		t.Errorf("JWKS fetches after 20 unknown kids within the interval = %d, want 2", got)
	}
	e.advance(bearerRefetchMin)
	verify(newECKey(t, "forged-later"))
	if got := e.jwks.fetches.Load(); got != 3 {
		t.Errorf("JWKS fetches after the interval = %d, want 3", got)
	}

	// ec-1 was withdrawn by the rotation, but the cache refreshed on the
	// unknown kid already dropped it.
	if err := verify(e.ec); !errors.Is(err, idp.ErrInvalidToken) {
		t.Errorf("token signed with the withdrawn key: %v, want ErrInvalidToken", err)
	}
}

// TestVerifyBearerKeysMaxAge: cached keys are refreshed when old, so that
// a withdrawn key stops verifying even when no unknown kid shows up; a
// failed refresh keeps the old keys.
func TestVerifyBearerKeysMaxAge(t *testing.T) {
	e := newBearerEnv(t)
	ctx := context.Background()
	token := func() string { return mint(t, e.ec, "", e.claims(nil)) }
	if _, err := e.p.VerifyBearer(ctx, token(), audiences); err != nil {
		t.Fatal(err)
	}
	e.jwks.setDown(true)
	e.advance(bearerKeysMaxAge)
	if _, err := e.p.VerifyBearer(ctx, token(), audiences); err != nil {
		t.Fatalf("with the JWKS endpoint down and keys cached: %v, want the cached key to verify", err)
	}
	e.jwks.setDown(false)
	e.jwks.publish(e.rsa) // ec-1 withdrawn
	e.advance(bearerRefetchMin)
	if _, err := e.p.VerifyBearer(ctx, token(), audiences); !errors.Is(err, idp.ErrInvalidToken) {
		t.Errorf("withdrawn key after the refresh: %v, want ErrInvalidToken", err)
	}
}

// TestVerifyBearerUnavailable: with no key cached and the JWKS endpoint
// down, the answer is an outage, not a verdict on the token.
func TestVerifyBearerUnavailable(t *testing.T) {
	e := newBearerEnv(t)
	e.jwks.setDown(true)
	_, err := e.p.VerifyBearer(context.Background(), mint(t, e.ec, "", e.claims(nil)), audiences)
	if !errors.Is(err, idp.ErrUnavailable) || errors.Is(err, idp.ErrInvalidToken) {
		t.Fatalf("VerifyBearer() error = %v, want ErrUnavailable only", err)
	}
}

func TestVerifyBearerNotReady(t *testing.T) {
	p, err := idp.New(idp.Options{IssuerURL: "http://127.0.0.1:1", ClientID: "c", RedirectURL: "http://127.0.0.1:1/cb"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.VerifyBearer(context.Background(), "a.b.c", audiences); !errors.Is(err, idp.ErrNotReady) {
		t.Errorf("VerifyBearer() before discovery = %v, want ErrNotReady", err)
	}
}

// Durations of the key cache, as documented on VerifyBearer.
const (
	bearerRefetchMin = 10 * time.Second
	bearerKeysMaxAge = 15 * time.Minute
)

// BenchmarkVerifyBearer measures one verification with cached keys
// (ES256), the cost a bearer request adds.
func BenchmarkVerifyBearer(b *testing.B) {
	e := newBearerEnv(b)
	token := mint(b, e.ec, "", e.claims(nil))
	ctx := context.Background()
	for b.Loop() {
		if _, err := e.p.VerifyBearer(ctx, token, audiences); err != nil {
			b.Fatal(err)
		}
	}
}
