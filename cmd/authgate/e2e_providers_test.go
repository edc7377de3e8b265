package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/redistest"
	"github.com/authgate/authgate/session"
)

// This file holds what the end-to-end tests against real third-party
// providers (e2e_hydra_test.go, e2e_nodeop_test.go) share: one set of flows
// run against each provider, and the helpers they need.

// clientSpec is what a test asks of a provider's client registration for
// one authgate reached at base.
type clientSpec struct {
	base string
	// authMethod is token_endpoint_auth_method; empty means
	// client_secret_basic.
	authMethod string
	// alg is the ID token signing algorithm, where the provider lets a
	// client choose; empty means RS256.
	alg             string
	pairwise        bool
	requirePKCE     bool
	jwtAccessTokens bool
	// jwks is the client's public key set for private_key_jwt.
	jwks json.RawMessage
	// shortTokens asks for access tokens of a few seconds, so that a
	// refresh comes by real time, not by moving authgate's clock: a
	// provider that checks the iat of authgate's client assertions (Hydra)
	// refuses one from a clock running ahead.
	shortTokens bool
}

func (c clientSpec) redirectURI() string   { return c.base + "/oauth2/callback" }
func (c clientSpec) postLogoutURI() string { return c.base + "/signed-out" }
func (c clientSpec) backchannelURI() string {
	return c.base + "/oauth2/backchannel_logout"
}

// realOP is one real provider as the shared flows see it.
type realOP struct {
	name   string
	issuer string
	// register registers a client and returns its id and secret (empty
	// for a public or private_key_jwt client).
	register func(t *testing.T, c clientSpec) (id, secret string)
	// introspect reports whether the provider holds token active.
	introspect func(t *testing.T, token string) bool
	// rotateKey makes the provider sign with a new key for alg and returns
	// its kid.
	rotateKey func(t *testing.T, alg string) string
	// endSession signs b out at the provider itself, not through authgate,
	// which makes the provider send its back-channel logouts.
	endSession func(t *testing.T, b *browser)
	// confirmLogout completes the provider's RP-initiated logout page, if
	// it shows one, and returns the response after every redirect.
	confirmLogout func(t *testing.T, b *browser, resp *http.Response) *http.Response
	// env is what authgate needs in front of this provider.
	env map[string]string
	// noJWTIntrospection: the provider cannot introspect its JWT access
	// tokens (node-oidc-provider answers unsupported_token_type); their
	// claims are checked instead.
	noJWTIntrospection bool
	// authorizePath is the authorization endpoint's path.
	authorizePath string
}

// rpGate is an authgate in front of a real provider, with its client.
type rpGate struct {
	*gate
	op       *realOP
	spec     clientSpec
	clientID string
	store    *session.CookieStore
}

// startRPGate registers a client at op for a new authgate and starts it
// with env on top of the provider's own.
func startRPGate(t *testing.T, op *realOP, spec clientSpec, env map[string]string) *rpGate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	spec.base = "http://" + ln.Addr().String()
	id, secret := op.register(t, spec)
	up := startUpstream(t)
	e := map[string]string{
		"AUTHGATE_UPSTREAM":                 up.srv.URL,
		"AUTHGATE_OIDC_ISSUER_URL":          op.issuer,
		"AUTHGATE_CLIENT_ID":                id,
		"AUTHGATE_CLIENT_SECRET":            secret,
		"AUTHGATE_COOKIE_SECRET":            testCookieSecret,
		"AUTHGATE_REDIRECT_URL":             spec.redirectURI(),
		"AUTHGATE_POST_LOGOUT_REDIRECT_URL": spec.postLogoutURI(),
		"AUTHGATE_PUBLIC_PATHS":             "/signed-out",
		"AUTHGATE_COOKIE_SECURE":            "false",
		"AUTHGATE_INTERNAL_ADDR":            "127.0.0.1:0",
		"AUTHGATE_SCOPES":                   "openid,email,profile,offline_access",
		"AUTHGATE_LOG_LEVEL":                "debug",
	}
	for k, v := range op.env {
		e[k] = v
	}
	for k, v := range env {
		e[k] = v
	}
	g := startGateWith(t, ln, e, nil, up)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("authgate logs:\n%s", g.logs.String())
		}
	})
	store, err := session.NewCookieStore(session.CookieStoreOptions{
		Cookie: session.CookieOptions{Name: g.cfg.CookieName, Secure: false},
		Keys:   g.cfg.cookieKeys,
		Now:    g.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &rpGate{gate: g, op: op, spec: spec, clientID: id, store: store}
}

// login signs in with a fresh browser: both providers accept at once, so
// the navigation lands back on the page it asked for.
func (g *rpGate) login(t *testing.T) *browser {
	t.Helper()
	b := newBrowser(t)
	resp := b.navigate(g.URL + "/landing?x=1")
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK || body != "upstream /landing?x=1" {
		t.Fatalf("login through %s: %d at %s: %.300q, want the upstream's /landing?x=1", g.op.name, resp.StatusCode, resp.Request.URL, body)
	}
	return b
}

// session opens b's session cookie (cookie store only), as authgate would.
func (g *rpGate) session(t *testing.T, b *browser) *session.Session {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, g.URL, nil)
	req.Header.Set("Cookie", b.cookieHeader(g.gate))
	s, err := g.store.Load(req)
	if err != nil {
		t.Fatalf("open the session cookie: %v", err)
	}
	return s
}

// api sends an API request (no redirects to login) with b's cookies.
func (g *rpGate) api(t *testing.T, b *browser, path string) int {
	t.Helper()
	resp := b.request("GET", g.URL+path, apiHeader)
	readBody(t, resp)
	return resp.StatusCode
}

// jwtHeader returns a compact JWS's header, failing the test when tok is
// not one.
func jwtHeader(t *testing.T, tok string) (alg, kid string) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want a JWS", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatalf("JWS header: %v", err)
	}
	var h struct{ Alg, Kid string }
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatalf("JWS header: %v", err)
	}
	return h.Alg, h.Kid
}

// forceRefresh moves authgate's clock to just before the access token
// expires, sends parallel API requests with b's cookies at once,
// and returns the session after them.
func (g *rpGate) forceRefresh(t *testing.T, b *browser, parallel int) *session.Session {
	t.Helper()
	before := g.session(t, b)
	// Halfway into the refresh window: authgate refreshes within its skew
	// of expiry, the skew capped at half the token's lifetime as it
	// measured it (TokenIssuedAt on its clock, Expiry as x/oauth2 computed
	// it on the real clock: after a refresh on a clock moved ahead, that
	// lifetime looks short, so the window is computed, not assumed).
	window := min(g.cfg.RefreshSkew, before.Expiry.Sub(before.TokenIssuedAt)/2)
	if g.spec.shortTokens {
		// Waiting on the provider's clock, which no injected clock moves.
		time.Sleep(time.Until(before.Expiry.Add(-window / 2)))
	} else {
		g.clock.Advance(time.Until(before.Expiry) - g.clock.offsetNow() - window/2)
	}
	var wg sync.WaitGroup
	statuses := make([]int, parallel)
	for i := range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp := b.request("GET", g.URL+"/burst", apiHeader)
			readBody(t, resp)
			statuses[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusOK {
			t.Fatalf("request %d of %d at refresh time = %d, want 200", i, parallel, s)
		}
	}
	after := g.session(t, b)
	// Whatever happened, the refresh token the session holds must still be
	// good at the provider: one the provider has spent would be replayed at
	// the next refresh, and a rotating provider then revokes the chain.
	if !g.op.introspect(t, after.RefreshToken) {
		t.Errorf("the session holds a refresh token %s no longer honours: its next refresh is a replay", g.op.name)
	}
	if after.RefreshToken == before.RefreshToken || after.AccessToken == before.AccessToken {
		t.Fatalf("session after the refresh burst still has the old tokens (refresh token changed %v, access token changed %v)",
			after.RefreshToken != before.RefreshToken, after.AccessToken != before.AccessToken)
	}
	return after
}

// offsetNow is how far the fake clock runs ahead of the real one.
func (c *fakeClock) offsetNow() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

// testProviderFlows runs the flows every real provider must pass with one
// client (client_secret_basic, opaque access tokens, RS256).
func testProviderFlows(t *testing.T, op *realOP) {
	t.Run("login bearer userinfo refresh sign-out", func(t *testing.T) {
		g := startRPGate(t, op, clientSpec{}, nil)
		b := g.login(t)
		s := g.session(t, b)

		// The provider's own access token reaches the upstream as Bearer,
		// and the provider says it is its token, for this client.
		if got := g.upstream.last().Header.Get("Authorization"); got != "Bearer "+s.AccessToken || s.AccessToken == "" {
			t.Errorf("upstream Authorization = %.20q…, want Bearer and the session's access token", got)
		}
		if !op.introspect(t, s.AccessToken) {
			t.Errorf("the forwarded access token is not active at %s", op.name)
		}
		if got := g.upstream.last().Header.Get("X-Forwarded-Email"); got != "alice@example.com" {
			t.Errorf("upstream Header(%q) = %q, want %q", "X-Forwarded-Email", got, "alice@example.com")
		}

		// authgate's userinfo shows the identity and no token.
		resp := b.request("GET", g.URL+"/oauth2/userinfo", apiHeader)
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"alice@example.com"`) || !strings.Contains(body, `"sub":"`+s.Subject+`"`) {
			t.Errorf("userinfo = %d %s, want alice's identity", resp.StatusCode, body)
		}
		if strings.Contains(body, s.AccessToken) || strings.Contains(body, s.IDToken) {
			t.Errorf("userinfo leaks a token")
		}

		// Refresh, twice, each time with a burst of parallel requests: the
		// provider rotates refresh tokens and revokes the whole chain when
		// a spent one comes back, so the newest token still being active
		// proves that authgate never replayed one.
		if s.RefreshToken == "" {
			t.Fatalf("no refresh token after login at %s", op.name)
		}
		tokens := []string{s.RefreshToken}
		for round := range 2 {
			s = g.forceRefresh(t, b, 8)
			tokens = append(tokens, s.RefreshToken)
			if got := g.upstream.last().Header.Get("Authorization"); got != "Bearer "+s.AccessToken {
				t.Errorf("round %d: upstream did not receive the refreshed access token", round)
			}
		}
		for i, rt := range tokens {
			want := i == len(tokens)-1
			if got := op.introspect(t, rt); got != want {
				t.Errorf("refresh token %d of %d: active = %v, want %v", i+1, len(tokens), got, want)
			}
		}
		if !op.introspect(t, s.AccessToken) {
			t.Errorf("the refreshed access token is not active")
		}

		// Sign-out: authgate revokes the refresh token and sends the
		// browser to the provider's end_session with id_token_hint; after
		// the provider's own steps it lands on post_logout_redirect_uri.
		resp = b.request("GET", g.URL+"/oauth2/sign_out", sameOriginLink)
		readBody(t, resp)
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, op.issuer) || !strings.Contains(loc, "id_token_hint=") {
			t.Fatalf("sign_out = %d Location %q, want the provider's end_session with id_token_hint", resp.StatusCode, loc)
		}
		resp = b.navigate(loc)
		if op.confirmLogout != nil {
			resp = op.confirmLogout(t, b, resp)
		}
		body = readBody(t, resp)
		if resp.StatusCode != http.StatusOK || resp.Request.URL.Host != strings.TrimPrefix(g.URL, "http://") || resp.Request.URL.Path != "/signed-out" {
			t.Errorf("after the provider's logout: %d at %s (%.200q), want 200 at %s", resp.StatusCode, resp.Request.URL, body, g.spec.postLogoutURI())
		}
		if op.introspect(t, s.RefreshToken) {
			t.Errorf("refresh token still active at %s after sign-out", op.name)
		}
		if code := g.api(t, b, "/after"); code != http.StatusUnauthorized {
			t.Errorf("API request after sign-out = %d, want 401", code)
		}
	})

	for _, store := range []string{"cookie", "redis"} {
		t.Run("back-channel logout/"+store+" store", func(t *testing.T) {
			env := map[string]string{}
			if store == "redis" {
				env = redisEnv(redistest.Start(t))
			}
			g := startRPGate(t, op, clientSpec{}, env)
			b := g.login(t)
			if code := g.api(t, b, "/before"); code != http.StatusOK {
				t.Fatalf("API request before the logout = %d, want 200", code)
			}
			op.endSession(t, b)
			redistest.Eventually(t, 10*time.Second, "session ended by the provider's back-channel logout", func() bool {
				return g.api(t, b, "/after") == http.StatusUnauthorized
			})
			// The handler logs after it revoked the session.
			redistest.Eventually(t, 5*time.Second, "authgate logs an accepted back-channel logout", func() bool {
				return strings.Contains(g.logs.String(), `"msg":"back-channel logout"`)
			})
		})
	}

	t.Run("groups from the provider", func(t *testing.T) {
		scopes := "openid,email,profile,offline_access,groups"
		g := startRPGate(t, op, clientSpec{}, map[string]string{"AUTHGATE_SCOPES": scopes, "AUTHGATE_ALLOWED_GROUPS": "staff"})
		g.login(t)
		if got := g.upstream.last().Header.Get("X-Forwarded-Groups"); !strings.Contains(got, "admins") || !strings.Contains(got, "staff") {
			t.Errorf("upstream Header(%q) = %q, want alice's groups admins and staff", "X-Forwarded-Groups", got)
		}
		denied := startRPGate(t, op, clientSpec{}, map[string]string{"AUTHGATE_SCOPES": scopes, "AUTHGATE_ALLOWED_GROUPS": "nobody"})
		resp := newBrowser(t).navigate(denied.URL + "/landing")
		readBody(t, resp)
		if resp.StatusCode != http.StatusForbidden || denied.upstream.count() != 0 {
			t.Errorf("login of a user outside AUTHGATE_ALLOWED_GROUPS = %d (upstream saw %d requests), want 403 and none", resp.StatusCode, denied.upstream.count())
		}
	})

	t.Run("signing key rotation", func(t *testing.T) {
		g := startRPGate(t, op, clientSpec{}, nil)
		b := g.login(t)
		_, oldKid := jwtHeader(t, g.session(t, b).IDToken)
		newKid := op.rotateKey(t, "RS256")
		if newKid == oldKid {
			t.Fatalf("rotation kept kid %q", oldKid)
		}
		// A new login brings an ID token signed with a key authgate has
		// never seen: it fetches the provider's keys again.
		if _, kid := jwtHeader(t, g.session(t, g.login(t)).IDToken); kid != newKid {
			t.Errorf("ID token of a login after rotation signed by %q, want the new key %q", kid, newKid)
		}
		// The running session's refresh brings one too. Ory Hydra up to at
		// least v2.3.0 signs it with the new key but names the old key's kid
		// (ory/hydra#3573), which no key verifies: authgate then keeps the
		// new access and refresh tokens (forceRefresh checks them, and that
		// the provider still honours the refresh token: no replay) and the
		// login's ID token, and says so in a warning.
		before := g.session(t, b).IDToken
		s := g.forceRefresh(t, b, 1)
		_, kid := jwtHeader(t, s.IDToken)
		switch {
		case kid == newKid:
		case s.IDToken == before && strings.Contains(g.logs.String(), "refreshed id token not verified"):
			t.Logf("%s signed the refreshed ID token under a stale kid; the session kept its login's ID token", op.name)
		default:
			t.Errorf("ID token after the refresh signed by %q (unchanged %t), want the new key %q or the login's ID token with a warning", kid, s.IDToken == before, newKid)
		}
	})
}

// requireRefused checks that the provider refuses an authorization request
// of clientID without PKCE: the setting under test is really in force.
func requireRefused(t *testing.T, op *realOP, clientID, redirectURI string) {
	t.Helper()
	q := url.Values{
		"client_id": {clientID}, "response_type": {"code"}, "scope": {"openid"},
		"redirect_uri": {redirectURI}, "state": {"s0123456789"}, "nonce": {"n0123456789"},
	}
	b := newBrowser(t)
	b.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), redirectURI) {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp := b.navigate(op.issuer + op.authorizePath + "?" + q.Encode())
	readBody(t, resp)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc == nil || loc.Query().Get("error") == "" || loc.Query().Get("code") != "" {
		t.Errorf("authorization request without PKCE: %d Location %q, want an error sent back, not a code", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// clientKey is a private_key_jwt client key: the PEM file authgate reads
// and the public JWKS the provider registers.
type clientKey struct {
	file string
	kid  string
	jwks json.RawMessage
}

func newClientKey(t *testing.T) clientKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	file := writePKCS8(t, k)
	kid := "authgate-test-client-key"
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
		"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes()),
	}}})
	return clientKey{file: file, kid: kid, jwks: jwks}
}

// privateKeyEnv is authgate's configuration for private_key_jwt with k.
func (k clientKey) env() map[string]string {
	return map[string]string{
		"AUTHGATE_CLIENT_PRIVATE_KEY_FILE": k.file,
		"AUTHGATE_CLIENT_KEY_ID":           k.kid,
	}
}

// checkVariant logs in through g and checks the session: the forwarded
// token is the provider's, still active, and a refresh works.
func checkVariant(t *testing.T, g *rpGate) (*browser, string) {
	t.Helper()
	b := g.login(t)
	s := g.session(t, b)
	if got := g.upstream.last().Header.Get("Authorization"); got != "Bearer "+s.AccessToken || s.AccessToken == "" {
		t.Errorf("upstream did not receive the session's access token")
	}
	if g.spec.jwtAccessTokens && g.op.noJWTIntrospection {
		c := jwtClaims(t, s.AccessToken)
		if c["iss"] != g.op.issuer || c["client_id"] != g.clientID {
			t.Errorf("JWT access token iss, client_id = %v, %v; want %q, %q", c["iss"], c["client_id"], g.op.issuer, g.clientID)
		}
	} else if !g.op.introspect(t, s.AccessToken) {
		t.Errorf("the forwarded access token is not active at %s", g.op.name)
	}
	if s.RefreshToken == "" {
		t.Fatalf("no refresh token after login")
	}
	s2 := g.forceRefresh(t, b, 2)
	if !g.op.introspect(t, s2.RefreshToken) {
		t.Errorf("the newest refresh token is not active")
	}
	return b, s2.AccessToken
}

// forwardedUser is the X-Forwarded-User the upstream last received.
func (g *rpGate) forwardedUser() string {
	return g.upstream.last().Header.Get("X-Forwarded-User")
}

// signOutRevokes signs b out through g and checks that the provider no
// longer holds the session's refresh token: the revocation call
// authenticated the way the token calls do.
func (g *rpGate) signOutRevokes(t *testing.T, b *browser) {
	t.Helper()
	s := g.session(t, b)
	resp := b.request("GET", g.URL+"/oauth2/sign_out", sameOriginLink)
	readBody(t, resp)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("sign_out = %d, want 302", resp.StatusCode)
	}
	if g.op.introspect(t, s.RefreshToken) {
		t.Errorf("refresh token still active at %s after sign-out: the revocation failed", g.op.name)
	}
}
