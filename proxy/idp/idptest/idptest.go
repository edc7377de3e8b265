// Package idptest is a small, test-only OpenID Provider that injects faults
// a real provider will not produce: ID tokens signed with the wrong key or
// not at all, wrong issuer, audience, nonce or azp, expired tokens, iat in
// the future, a bad at_hash, a userinfo answer about someone else, a token
// endpoint that fails or hangs, discovery that fails a few times.
//
// It also emulates documented behaviour of providers that cannot run in
// tests: refresh tokens only with prompt=consent (node-oidc-provider) or
// access_type=offline (Google), an issuer with a path (Entra ID tenants),
// JWT access tokens carrying claims the ID token lacks (Keycloak), JWT
// access tokens only with an audience parameter (Auth0), the RFC 9207 iss
// parameter, and private_key_jwt client authentication, whose assertions it
// verifies and records.
//
// Use a real provider (the zitadel example OP) for the happy path; use this
// one for what a real provider will not do. It is NOT an OpenID Provider to
// run anywhere but in tests: it approves every authorization request
// without a login page, keeps everything in memory and trusts its caller.
//
// ID tokens are signed with go-jose (ES256). The one exception is
// Faults.AlgNone: go-jose refuses to produce an unsigned JWS, so that token
// is assembled by hand, which is the point of the fault.
package idptest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// TokenFault makes the token endpoint misbehave; the zero value answers
// normally.
type TokenFault int

const (
	// TokenOK answers normally.
	TokenOK TokenFault = iota
	// TokenServerError answers 500 with an empty body.
	TokenServerError
	// TokenInvalidGrant answers 400 {"error":"invalid_grant"} (RFC 6749
	// section 5.2), as for a dead code or refresh token.
	TokenInvalidGrant
	// TokenHang never answers: the handler waits until the client gives up
	// or the test ends.
	TokenHang
)

// Faults are the misbehaviours to inject. They apply to every answer from
// the moment they are set (Options.Faults, then SetFaults); the zero value
// is a well-behaved provider.
type Faults struct {
	// WrongKey signs ID tokens with a key that is not in the JWKS (same kid).
	WrongKey bool
	// AlgNone sends unsigned ID tokens with header {"alg":"none"}.
	AlgNone bool
	// Issuer, when set, replaces the "iss" claim.
	Issuer string
	// Audience, when set, replaces the "aud" claim (an array when it has
	// several values).
	Audience []string
	// AZP, when set, adds an "azp" claim; by default there is none.
	AZP string
	// Nonce, when set, replaces the nonce the client sent.
	Nonce string
	// Subject, when set, replaces "sub" in ID tokens (not in userinfo).
	Subject string
	// ExpiresIn sets "exp" relative to now; zero means 5 minutes, negative
	// values give an expired token.
	ExpiresIn time.Duration
	// IssuedAtOffset shifts "iat" from now (positive: in the future).
	IssuedAtOffset time.Duration
	// OmitIssuedAt leaves "iat" out.
	OmitIssuedAt bool
	// StringDates sends "exp" and "iat" as JSON strings ("1700000000"),
	// which RFC 7519's NumericDate does not allow.
	StringDates bool
	// BadAtHash sends an "at_hash" that does not match the access token.
	BadAtHash bool
	// OmitIDToken leaves "id_token" out of token responses.
	OmitIDToken bool
	// OmitRefreshToken leaves "refresh_token" out of refresh responses and
	// keeps the old refresh token valid (RFC 6749 section 6 allows both).
	OmitRefreshToken bool
	// UserinfoSubject, when set, replaces "sub" in userinfo answers.
	UserinfoSubject string
	// UserinfoUnavailable makes the userinfo endpoint answer 503.
	UserinfoUnavailable bool
	// KeysUnavailable makes the JWKS endpoint answer 503.
	KeysUnavailable bool
	// Token makes the token endpoint misbehave.
	Token TokenFault
	// ResponseIssuer, when set, replaces the "iss" parameter of
	// authorization responses (RFC 9207), as a mix-up attack would.
	ResponseIssuer string
	// OmitResponseIssuer leaves "iss" out of authorization responses even
	// when Options.ResponseIss is set.
	OmitResponseIssuer bool
}

// RefreshPolicy chooses when a code exchange yields a refresh token.
type RefreshPolicy int

const (
	// RefreshAlways issues a refresh token at every code exchange.
	RefreshAlways RefreshPolicy = iota
	// RefreshOfflineConsent issues one only when the authorization request
	// had the offline_access scope and prompt=consent, as node-oidc-provider
	// does with its defaults (OpenID Connect Core 11).
	RefreshOfflineConsent
	// RefreshAccessTypeOffline issues one only when the authorization
	// request had access_type=offline, as Google documents.
	RefreshAccessTypeOffline
)

// AccessTokenPolicy chooses the form of access tokens.
type AccessTokenPolicy int

const (
	// AccessOpaque issues random opaque access tokens.
	AccessOpaque AccessTokenPolicy = iota
	// AccessJWT issues JWT access tokens signed with the provider's key,
	// as Keycloak does: iss, sub, aud (AccessTokenAudience, or "account"),
	// exp, iat, typ header "JWT", and AccessTokenClaims.
	AccessJWT
	// AccessJWTWithAudience issues a JWT access token (aud = the
	// parameter) only when the authorization request carried "audience",
	// and an opaque one otherwise, as Auth0 documents.
	AccessJWTWithAudience
)

// User is the one user every login signs in as.
type User struct {
	Subject           string
	Email             string
	EmailVerified     bool
	Name              string
	PreferredUsername string
	Groups            []string
}

// Options configures a Server; the zero value gives a public client
// "authgate", the default User and no faults.
type Options struct {
	// ClientID is the only client; empty means "authgate".
	ClientID string
	// ClientSecret, when set, requires client_secret_basic or
	// client_secret_post; empty makes a public client (client_id only).
	ClientSecret string
	// User signs in at every login; a zero User means subject "user-1",
	// email "user@example.test" (verified), name "Test User", preferred
	// username "tuser", groups ["admins", "dev"].
	User User
	// ClaimsInUserinfoOnly keeps email, names, groups and ExtraClaims out of
	// the ID token, as the zitadel example OP does; userinfo has them.
	ClaimsInUserinfoOnly bool
	// GroupsInUserinfoOnly keeps only the groups out of ID tokens, as
	// providers do whose group lists are too large for a token.
	GroupsInUserinfoOnly bool
	// ExtraClaims are added to ID tokens and userinfo answers.
	ExtraClaims map[string]any
	// DiscoveryFailures is how many discovery requests answer 503 before
	// the document is served.
	DiscoveryFailures int
	// Discovery, when set, edits the discovery document before it is
	// served (for example to delete "revocation_endpoint").
	Discovery func(doc map[string]any)
	// ClientPublicKey, when set, requires private_key_jwt client
	// authentication (RFC 7523) at the token and revocation endpoints: a
	// client_assertion signed by this key's private half, with iss and sub
	// the client ID, aud the token endpoint, exp in the future, iat and a
	// jti not seen before. Secrets are then refused.
	ClientPublicKey crypto.PublicKey
	// AssertionAlgs is the discovery document's
	// token_endpoint_auth_signing_alg_values_supported (and the algorithms
	// accepted); nil means RS256, PS256, ES256, ES384, ES512 and EdDSA.
	AssertionAlgs []string
	// IssuerPath is appended to the server's address to make the issuer,
	// and every endpoint lives under it, as with Microsoft Entra ID's
	// tenant issuer "https://login.microsoftonline.com/<tenant>/v2.0".
	// Empty means the bare address.
	IssuerPath string
	// ResponseIss sends "iss" with every authorization response and
	// advertises authorization_response_iss_parameter_supported (RFC 9207).
	ResponseIss bool
	// AccessTokens chooses the form of access tokens; the zero value is
	// opaque.
	AccessTokens AccessTokenPolicy
	// AccessTokenAudience is the "aud" of AccessJWT tokens; empty means
	// "account" (Keycloak's default).
	AccessTokenAudience string
	// AccessTokenClaims are added to JWT access tokens only.
	AccessTokenClaims map[string]any
	// AccessTokenWrongKey signs JWT access tokens with a key the JWKS does
	// not publish.
	AccessTokenWrongKey bool
	// RefreshTokens chooses when a code exchange yields a refresh token;
	// the zero value always does.
	RefreshTokens RefreshPolicy
	// Faults to inject from the start.
	Faults Faults
	// Now is the clock for iat and exp; nil means time.Now.
	Now func() time.Time
}

// Server is a running fault-injecting provider. Its methods are safe for
// concurrent use. The zero Server is not usable; use New.
type Server struct {
	// URL is the issuer, e.g. "http://127.0.0.1:41234".
	URL string
	// ClientID and ClientSecret are the one registered client.
	ClientID     string
	ClientSecret string

	srv      *httptest.Server
	opts     Options
	user     User
	key      *ecdsa.PrivateKey
	wrongKey *ecdsa.PrivateKey
	closing  chan struct{}

	mu             sync.Mutex
	faults         Faults
	discoveryLeft  int
	discoveryCalls int
	tokenCalls     map[string]int
	codes          map[string]grant
	access         map[string]grant
	refresh        map[string]grant
	revoked        []string
	issued         []string
	authRequests   []url.Values
	assertions     []Assertion
	assertionJTIs  map[string]bool
}

// Assertion is a client assertion the server received and accepted or
// refused (private_key_jwt), for tests to inspect.
type Assertion struct {
	// Endpoint is "token" or "revoke".
	Endpoint string
	// Header is the JOSE header; Claims the verified payload (nil when the
	// signature did not verify).
	Header jose.Header
	Claims map[string]any
	// Err says why the assertion was refused; nil when accepted.
	Err error
}

// grant is what an authorization code, access or refresh token stands for.
type grant struct {
	redirectURI string
	challenge   string
	nonce       string
	sid         string
	// offline is whether the grant may have a refresh token.
	offline bool
	// audience is the authorization request's "audience" parameter.
	audience string
}

const keyID = "idptest-1"

// New starts a Server on 127.0.0.1 and stops it when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{
		opts:          opts,
		user:          opts.User,
		closing:       make(chan struct{}),
		faults:        opts.Faults,
		discoveryLeft: opts.DiscoveryFailures,
		tokenCalls:    map[string]int{},
		codes:         map[string]grant{},
		access:        map[string]grant{},
		refresh:       map[string]grant{},
		assertionJTIs: map[string]bool{},
	}
	if s.opts.ClientID == "" {
		s.opts.ClientID = "authgate"
	}
	if s.opts.Now == nil {
		s.opts.Now = time.Now
	}
	if s.user.Subject == "" {
		s.user = User{
			Subject: "user-1", Email: "user@example.test", EmailVerified: true,
			Name: "Test User", PreferredUsername: "tuser", Groups: []string{"admins", "dev"},
		}
	}
	var err error
	if s.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatalf("generate key: %v", err)
	}
	if s.wrongKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatalf("generate key: %v", err)
	}
	mux := http.NewServeMux()
	pre := strings.TrimSuffix(opts.IssuerPath, "/")
	mux.HandleFunc("GET "+pre+"/.well-known/openid-configuration", s.serveDiscovery)
	mux.HandleFunc("GET "+pre+"/authorize", s.serveAuthorize)
	mux.HandleFunc("POST "+pre+"/token", s.serveToken)
	mux.HandleFunc("GET "+pre+"/keys", s.serveKeys)
	mux.HandleFunc("GET "+pre+"/userinfo", s.serveUserinfo)
	mux.HandleFunc("POST "+pre+"/revoke", s.serveRevoke)
	mux.HandleFunc("GET "+pre+"/end_session", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "signed out")
	})
	s.srv = httptest.NewServer(mux)
	// Cleanups run last-in first-out: release hanging handlers, then close.
	t.Cleanup(s.srv.Close)
	t.Cleanup(func() { close(s.closing) })
	s.URL = s.srv.URL + pre
	s.ClientID = s.opts.ClientID
	s.ClientSecret = s.opts.ClientSecret
	return s
}

// Client returns an HTTP client for the server (no redirects followed).
func (s *Server) Client() *http.Client {
	c := *s.srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// SetFaults replaces the faults for every later answer.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// SetDiscoveryFailures makes the next n discovery requests answer 503
// (zero: serve the document from now on).
func (s *Server) SetDiscoveryFailures(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.discoveryLeft = n
}

// TokenCalls reports how many token requests arrived with the grant_type
// (e.g. "authorization_code", "refresh_token"), faulty answers included.
func (s *Server) TokenCalls(grantType string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenCalls[grantType]
}

// DiscoveryCalls reports how many discovery requests arrived.
func (s *Server) DiscoveryCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.discoveryCalls
}

// Revoked returns the tokens revoked so far, in order.
func (s *Server) Revoked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.revoked)
}

// AuthRequests returns the query of every authorization request so far,
// in order.
func (s *Server) AuthRequests() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.authRequests)
}

// Assertions returns every client assertion received so far, in order.
func (s *Server) Assertions() []Assertion {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.assertions)
}

func (s *Server) assertionAlgs() []string {
	if s.opts.AssertionAlgs != nil {
		return s.opts.AssertionAlgs
	}
	return []string{"RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"}
}

// checkAssertion verifies private_key_jwt client authentication (RFC 7523
// section 3, OpenID Connect Core 9).
func (s *Server) checkAssertion(r *http.Request, endpoint string) Assertion {
	a := Assertion{Endpoint: endpoint}
	fail := func(format string, args ...any) Assertion {
		a.Err = fmt.Errorf(format, args...)
		return a
	}
	if _, _, basic := r.BasicAuth(); basic || r.PostForm.Has("client_secret") {
		return fail("a secret was sent besides the assertion")
	}
	if got := r.PostForm.Get("client_assertion_type"); got != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return fail("client_assertion_type = %q", got)
	}
	var algs []jose.SignatureAlgorithm
	for _, alg := range s.assertionAlgs() {
		algs = append(algs, jose.SignatureAlgorithm(alg))
	}
	jws, err := jose.ParseSignedCompact(r.PostForm.Get("client_assertion"), algs)
	if err != nil {
		return fail("parse client_assertion: %w", err)
	}
	a.Header = jws.Signatures[0].Header
	payload, err := jws.Verify(s.opts.ClientPublicKey)
	if err != nil {
		return fail("verify client_assertion: %w", err)
	}
	if err := json.Unmarshal(payload, &a.Claims); err != nil {
		return fail("decode client_assertion: %w", err)
	}
	c := a.Claims
	exp, _ := c["exp"].(float64)
	_, hasIAT := c["iat"].(float64)
	jti, _ := c["jti"].(string)
	now := s.opts.Now()
	switch {
	case c["iss"] != s.ClientID || c["sub"] != s.ClientID:
		return fail("iss %v / sub %v is not the client ID", c["iss"], c["sub"])
	case !audienceHas(c["aud"], s.URL+"/token"):
		return fail("aud %v lacks the token endpoint", c["aud"])
	case time.Unix(int64(exp), 0).Before(now):
		return fail("expired or no exp")
	case !hasIAT:
		return fail("no iat")
	case jti == "":
		return fail("no jti")
	case r.PostForm.Has("client_id") && r.PostForm.Get("client_id") != s.ClientID:
		return fail("client_id %q differs", r.PostForm.Get("client_id"))
	}
	s.mu.Lock()
	seen := s.assertionJTIs[jti]
	s.assertionJTIs[jti] = true
	s.mu.Unlock()
	if seen {
		return fail("jti replayed")
	}
	return a
}

func audienceHas(aud any, want string) bool {
	switch v := aud.(type) {
	case string:
		return v == want
	case []any:
		return slices.Contains(v, any(want))
	}
	return false
}

// Issued returns every token issued so far (codes, access, refresh and ID
// tokens), for tests asserting that none leaks into logs.
func (s *Server) Issued() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.issued)
}

// Login plays the user at the authorization endpoint: it GETs authURL and
// returns the code and state from the redirect to the client.
func (s *Server) Login(authURL string) (code, state string, err error) {
	resp, err := s.Client().Get(authURL)
	if err != nil {
		return "", "", fmt.Errorf("get authorization URL: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return "", "", fmt.Errorf("authorization endpoint answered %s", resp.Status)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return "", "", fmt.Errorf("parse redirect: %w", err)
	}
	return loc.Query().Get("code"), loc.Query().Get("state"), nil
}

func (s *Server) currentFaults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

func (s *Server) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.discoveryCalls++
	fail := s.discoveryLeft > 0
	if fail {
		s.discoveryLeft--
	}
	s.mu.Unlock()
	if fail {
		http.Error(w, "discovery unavailable (idptest fault)", http.StatusServiceUnavailable)
		return
	}
	doc := map[string]any{
		"issuer":                                s.URL,
		"authorization_endpoint":                s.URL + "/authorize",
		"token_endpoint":                        s.URL + "/token",
		"jwks_uri":                              s.URL + "/keys",
		"userinfo_endpoint":                     s.URL + "/userinfo",
		"revocation_endpoint":                   s.URL + "/revoke",
		"end_session_endpoint":                  s.URL + "/end_session",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post", "none"},
		"code_challenge_methods_supported":      []string{"S256"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
		"backchannel_logout_supported":          true,
		"backchannel_logout_session_supported":  true,
	}
	if s.opts.ResponseIss {
		doc["authorization_response_iss_parameter_supported"] = true
	}
	if s.opts.ClientPublicKey != nil {
		doc["token_endpoint_auth_methods_supported"] = []string{"private_key_jwt"}
		doc["token_endpoint_auth_signing_alg_values_supported"] = s.assertionAlgs()
	}
	if s.opts.Discovery != nil {
		s.opts.Discovery(doc)
	}
	writeJSON(w, http.StatusOK, doc)
}

func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch {
	case q.Get("client_id") != s.ClientID:
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return
	case q.Get("response_type") != "code":
		http.Error(w, "response_type must be code", http.StatusBadRequest)
		return
	case q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "":
		http.Error(w, "PKCE S256 required", http.StatusBadRequest)
		return
	case !slices.Contains(strings.Fields(q.Get("scope")), "openid"):
		http.Error(w, "scope must include openid", http.StatusBadRequest)
		return
	}
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || !redirect.IsAbs() {
		http.Error(w, "redirect_uri must be absolute", http.StatusBadRequest)
		return
	}
	var offline bool
	switch s.opts.RefreshTokens {
	case RefreshAlways:
		offline = true
	case RefreshOfflineConsent:
		offline = slices.Contains(strings.Fields(q.Get("scope")), "offline_access") &&
			slices.Contains(strings.Fields(q.Get("prompt")), "consent")
	case RefreshAccessTypeOffline:
		offline = q.Get("access_type") == "offline"
	}
	code := s.newSecret()
	s.mu.Lock()
	s.authRequests = append(s.authRequests, q)
	s.codes[code] = grant{
		redirectURI: q.Get("redirect_uri"),
		challenge:   q.Get("code_challenge"),
		nonce:       q.Get("nonce"),
		sid:         randomString(),
		offline:     offline,
		audience:    q.Get("audience"),
	}
	s.mu.Unlock()
	rq := redirect.Query()
	rq.Set("code", code)
	rq.Set("state", q.Get("state"))
	f := s.currentFaults()
	switch {
	case f.ResponseIssuer != "":
		rq.Set("iss", f.ResponseIssuer)
	case s.opts.ResponseIss && !f.OmitResponseIssuer:
		rq.Set("iss", s.URL)
	}
	redirect.RawQuery = rq.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	grantType := r.PostForm.Get("grant_type")
	s.mu.Lock()
	s.tokenCalls[grantType]++
	s.mu.Unlock()
	f := s.currentFaults()
	switch f.Token {
	case TokenServerError:
		w.WriteHeader(http.StatusInternalServerError)
		return
	case TokenInvalidGrant:
		tokenError(w, http.StatusBadRequest, "invalid_grant")
		return
	case TokenHang:
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
		return
	}
	if !s.clientAuthenticated(r, "token") {
		w.Header().Set("WWW-Authenticate", `Basic realm="idptest"`)
		tokenError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	var (
		g     grant
		nonce string
		ok    bool
	)
	switch grantType {
	case "authorization_code":
		code := r.PostForm.Get("code")
		s.mu.Lock()
		g, ok = s.codes[code]
		delete(s.codes, code) // single use: RFC 6749 section 4.1.2
		s.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if !ok || g.redirectURI != r.PostForm.Get("redirect_uri") ||
			base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			tokenError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		nonce = g.nonce
	case "refresh_token":
		old := r.PostForm.Get("refresh_token")
		s.mu.Lock()
		g, ok = s.refresh[old]
		if ok && !f.OmitRefreshToken {
			delete(s.refresh, old) // rotation
		}
		s.mu.Unlock()
		if !ok {
			tokenError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
	default:
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	access, err := s.accessToken(g)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error")
		return
	}
	resp := map[string]any{
		"access_token": access,
		"token_type":   "Bearer",
		"expires_in":   300,
	}
	s.mu.Lock()
	s.access[access] = g
	s.mu.Unlock()
	if g.offline && (grantType == "authorization_code" || !f.OmitRefreshToken) {
		refresh := s.newSecret()
		s.mu.Lock()
		s.refresh[refresh] = g
		s.mu.Unlock()
		resp["refresh_token"] = refresh
	}
	if !f.OmitIDToken {
		idt, err := s.idToken(f, g, nonce, access)
		if err != nil {
			tokenError(w, http.StatusInternalServerError, "server_error")
			return
		}
		resp["id_token"] = idt
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}

// clientAuthenticated checks client_secret_basic (RFC 6749 section 2.3.1,
// form-encoded id and secret), client_secret_post, or client_id alone for a
// public client.
func (s *Server) clientAuthenticated(r *http.Request, endpoint string) bool {
	if s.opts.ClientPublicKey != nil {
		a := s.checkAssertion(r, endpoint)
		s.mu.Lock()
		s.assertions = append(s.assertions, a)
		s.mu.Unlock()
		return a.Err == nil
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return false
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	return id == s.ClientID && subtle.ConstantTimeCompare([]byte(secret), []byte(s.ClientSecret)) == 1
}

func (s *Server) idToken(f Faults, g grant, nonce, access string) (string, error) {
	now := s.opts.Now()
	exp := f.ExpiresIn
	if exp == 0 {
		exp = 5 * time.Minute
	}
	claims := map[string]any{
		"iss": s.URL,
		"sub": s.user.Subject,
		"aud": s.ClientID,
		"exp": now.Add(exp).Unix(),
		"iat": now.Add(f.IssuedAtOffset).Unix(),
		"sid": g.sid,
	}
	if f.OmitIssuedAt {
		delete(claims, "iat")
	}
	if f.StringDates {
		claims["exp"] = fmt.Sprint(claims["exp"])
		claims["iat"] = fmt.Sprint(claims["iat"])
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	if f.Nonce != "" {
		claims["nonce"] = f.Nonce
	}
	if f.Issuer != "" {
		claims["iss"] = f.Issuer
	}
	if f.Subject != "" {
		claims["sub"] = f.Subject
	}
	switch len(f.Audience) {
	case 0:
	case 1:
		claims["aud"] = f.Audience[0]
	default:
		claims["aud"] = f.Audience
	}
	if f.AZP != "" {
		claims["azp"] = f.AZP
	}
	// OpenID Connect Core 3.1.3.6: the left half of SHA-256 (for ES256).
	hashed := access
	if f.BadAtHash {
		hashed = "not-" + access
	}
	sum := sha256.Sum256([]byte(hashed))
	claims["at_hash"] = base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
	if !s.opts.ClaimsInUserinfoOnly {
		s.addProfile(claims)
		if s.opts.GroupsInUserinfoOnly {
			delete(claims, "groups")
		}
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	var raw string
	if f.AlgNone {
		// go-jose will not sign with "none"; this is the unsigned token
		// (RFC 7519 section 6.1) that the fault is about.
		enc := base64.RawURLEncoding.EncodeToString
		raw = enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(payload) + "."
	} else {
		key := s.key
		if f.WrongKey {
			key = s.wrongKey
		}
		signer, err := jose.NewSigner(jose.SigningKey{
			Algorithm: jose.ES256,
			Key:       jose.JSONWebKey{Key: key, KeyID: keyID, Algorithm: string(jose.ES256)},
		}, (&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			return "", err
		}
		jws, err := signer.Sign(payload)
		if err != nil {
			return "", err
		}
		if raw, err = jws.CompactSerialize(); err != nil {
			return "", err
		}
	}
	s.mu.Lock()
	s.issued = append(s.issued, raw)
	s.mu.Unlock()
	return raw, nil
}

// accessToken mints an access token for g in the configured form.
func (s *Server) accessToken(g grant) (string, error) {
	aud := s.opts.AccessTokenAudience
	switch s.opts.AccessTokens {
	case AccessOpaque:
		return s.newSecret(), nil
	case AccessJWTWithAudience:
		if g.audience == "" {
			return s.newSecret(), nil
		}
		aud = g.audience
	}
	if aud == "" {
		aud = "account"
	}
	now := s.opts.Now()
	claims := map[string]any{
		"iss": s.URL, "sub": s.user.Subject, "aud": aud, "azp": s.ClientID,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": randomString(),
	}
	for k, v := range s.opts.AccessTokenClaims {
		claims[k] = v
	}
	return s.Sign(claims, "JWT", s.opts.AccessTokenWrongKey)
}

func (s *Server) addProfile(claims map[string]any) {
	if s.user.Email != "" {
		claims["email"] = s.user.Email
		claims["email_verified"] = s.user.EmailVerified
	}
	claims["name"] = s.user.Name
	claims["preferred_username"] = s.user.PreferredUsername
	if s.user.Groups != nil {
		claims["groups"] = s.user.Groups
	}
	for k, v := range s.opts.ExtraClaims {
		claims[k] = v
	}
}

func (s *Server) serveKeys(w http.ResponseWriter, r *http.Request) {
	if s.currentFaults().KeysUnavailable {
		http.Error(w, "keys unavailable (idptest fault)", http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: s.key.Public(), KeyID: keyID, Algorithm: string(jose.ES256), Use: "sig",
	}}})
}

func (s *Server) serveUserinfo(w http.ResponseWriter, r *http.Request) {
	f := s.currentFaults()
	if f.UserinfoUnavailable {
		http.Error(w, "userinfo unavailable (idptest fault)", http.StatusServiceUnavailable)
		return
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	_, known := s.access[token]
	s.mu.Unlock()
	if !ok || !known {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "invalid token", http.StatusUnauthorized)
		return
	}
	claims := map[string]any{"sub": s.user.Subject}
	s.addProfile(claims)
	if f.UserinfoSubject != "" {
		claims["sub"] = f.UserinfoSubject
	}
	writeJSON(w, http.StatusOK, claims)
}

func (s *Server) serveRevoke(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	if !s.clientAuthenticated(r, "revoke") {
		tokenError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	token := r.PostForm.Get("token")
	s.mu.Lock()
	s.revoked = append(s.revoked, token)
	delete(s.refresh, token)
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK) // RFC 7009 section 2.2, also for unknown tokens
}

// newSecret returns a random token and records it as issued.
func (s *Server) newSecret() string {
	v := randomString()
	s.mu.Lock()
	s.issued = append(s.issued, v)
	s.mu.Unlock()
	return v
}

func randomString() string {
	return rand.Text()
}

func tokenError(w http.ResponseWriter, status int, code string) {
	writeJSON(w, status, map[string]string{"error": code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Sign returns claims signed as a compact JWS with the server's key (or, with
// wrongKey, a key the JWKS does not publish) and the given "typ" header
// ("" omits it). It mints what the provider does not issue on its own, such
// as back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0
// section 2.4) and tokens for other audiences.
func (s *Server) Sign(claims map[string]any, typ string, wrongKey bool) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	key := s.key
	if wrongKey {
		key = s.wrongKey
	}
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	signer, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.ES256,
		Key:       jose.JSONWebKey{Key: key, KeyID: keyID, Algorithm: string(jose.ES256)},
	}, opts)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.issued = append(s.issued, raw)
	s.mu.Unlock()
	return raw, nil
}
