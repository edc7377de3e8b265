package demoidp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// The relying party's URLs. Nothing listens there: the test browser stops
// at the first redirect that leaves the provider.
const (
	rpOrigin     = "http://127.0.0.1:5555"
	callbackURL  = rpOrigin + "/oauth2/callback"
	signedOutURL = rpOrigin + "/signed-out"
	cliCallback  = "http://127.0.0.1/cli/callback"
)

type env struct {
	p        *Provider
	issuer   string
	host     string
	rp       *oidc.Provider
	verifier *oidc.IDTokenVerifier
	app      *oauth2.Config // confidential client
	cli      *oauth2.Config // public client
	logs     *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newEnv starts a Provider on a real loopback server, with a confidential
// client "app" and a public client "cli", and discovers it with go-oidc.
func newEnv(t *testing.T, mod func(*Options)) *env {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String() + "/"
	logs := new(syncBuffer)
	o := Options{
		Issuer: issuer,
		Clients: []Client{
			{ID: "app", Secret: "app-secret", RedirectURIs: []string{callbackURL}, PostLogoutRedirectURIs: []string{signedOutURL}},
			{ID: "cli", RedirectURIs: []string{cliCallback}},
		},
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&o)
	}
	p, err := New(o)
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	srv.Config.Handler = p.Handler()
	srv.Start()
	t.Cleanup(srv.Close)

	rp, err := oidc.NewProvider(context.Background(), issuer)
	if err != nil {
		t.Fatalf("oidc.NewProvider(%q) error = %v", issuer, err)
	}
	scopes := []string{oidc.ScopeOpenID, "email", "profile", oidc.ScopeOfflineAccess}
	cliEndpoint := rp.Endpoint()
	cliEndpoint.AuthStyle = oauth2.AuthStyleInParams
	return &env{
		p:        p,
		issuer:   issuer,
		host:     srv.Listener.Addr().String(),
		rp:       rp,
		verifier: rp.Verifier(&oidc.Config{ClientID: "app"}),
		app:      &oauth2.Config{ClientID: "app", ClientSecret: "app-secret", RedirectURL: callbackURL, Endpoint: rp.Endpoint(), Scopes: scopes},
		cli:      &oauth2.Config{ClientID: "cli", RedirectURL: cliCallback, Endpoint: cliEndpoint, Scopes: scopes},
		logs:     logs,
	}
}

// browser returns an HTTP client with a cookie jar that follows redirects
// within the provider and stops at the first one leaving it.
func (e *env) browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host != e.host {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

type page struct {
	status   int
	location string // set when the provider redirected away
	body     string
	header   http.Header
}

func do(t *testing.T, b *http.Client, req *http.Request) page {
	t.Helper()
	resp, err := b.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(body), header: resp.Header}
}

func get(t *testing.T, b *http.Client, u string) page {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, b, req)
}

var authRequestIDRE = regexp.MustCompile(`name="authRequestID" value="([^"]+)"`)

// submitLogin fills the login form on pg.
func (e *env) submitLogin(t *testing.T, b *http.Client, pg page, username, password string) page {
	t.Helper()
	m := authRequestIDRE.FindStringSubmatch(pg.body)
	if m == nil {
		t.Fatalf("no login form on page (status %d): %.300s", pg.status, pg.body)
	}
	form := url.Values{"authRequestID": {m[1]}, "username": {username}, "password": {password}}
	req, err := http.NewRequest(http.MethodPost, e.issuer+"login", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, b, req)
}

type flow struct {
	state, nonce, verifier string
	authURL                string
}

func newFlow(conf *oauth2.Config, opts ...oauth2.AuthCodeOption) flow {
	f := flow{state: oauth2.GenerateVerifier(), nonce: oauth2.GenerateVerifier(), verifier: oauth2.GenerateVerifier()}
	opts = append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(f.verifier), oidc.Nonce(f.nonce)}, opts...)
	f.authURL = conf.AuthCodeURL(f.state, opts...)
	return f
}

// code returns the code from a redirect to the client, checking state.
func (f flow) code(t *testing.T, pg page) string {
	t.Helper()
	if pg.location == "" {
		t.Fatalf("no redirect to the client (status %d): %.300s", pg.status, pg.body)
	}
	u, err := url.Parse(pg.location)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if got := q.Get("state"); got != f.state {
		t.Fatalf("callback state = %q, want %q", got, f.state)
	}
	if q.Get("code") == "" {
		t.Fatalf("callback %q has no code", pg.location)
	}
	return q.Get("code")
}

// signIn runs a whole code flow for the confidential client and exchanges
// the code.
func (e *env) signIn(t *testing.T, b *http.Client, username, password string) (*oauth2.Token, flow) {
	t.Helper()
	f := newFlow(e.app)
	pg := get(t, b, f.authURL)
	if pg.location == "" {
		pg = e.submitLogin(t, b, pg, username, password)
	}
	tok, err := e.app.Exchange(context.Background(), f.code(t, pg), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatalf("Exchange() error = %v", err)
	}
	return tok, f
}

type idClaims struct {
	Email             string   `json:"email"`
	EmailVerified     bool     `json:"email_verified"`
	Name              string   `json:"name"`
	PreferredUsername string   `json:"preferred_username"`
	Groups            []string `json:"groups"`
	SID               string   `json:"sid"`
	Nonce             string   `json:"nonce"`
	AMR               []string `json:"amr"`
}

func (e *env) verifyIDToken(t *testing.T, tok *oauth2.Token) (*oidc.IDToken, idClaims) {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("token response has no id_token")
	}
	idt, err := e.verifier.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("Verify(id_token) error = %v", err)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return idt, c
}

func TestDiscovery(t *testing.T) {
	e := newEnv(t, nil)
	var d struct {
		Issuer            string   `json:"issuer"`
		EndSession        string   `json:"end_session_endpoint"`
		Revocation        string   `json:"revocation_endpoint"`
		JWKS              string   `json:"jwks_uri"`
		CodeChallenge     []string `json:"code_challenge_methods_supported"`
		Scopes            []string `json:"scopes_supported"`
		Claims            []string `json:"claims_supported"`
		IDTokenAlgorithms []string `json:"id_token_signing_alg_values_supported"`
		Backchannel       bool     `json:"backchannel_logout_supported"`
		BackchannelSID    bool     `json:"backchannel_logout_session_supported"`
	}
	if err := e.rp.Claims(&d); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, got, want string }{
		{"issuer", d.Issuer, e.issuer},
		{"end_session_endpoint", d.EndSession, e.issuer + "end_session"},
		{"revocation_endpoint", d.Revocation, e.issuer + "revoke"},
		{"jwks_uri", d.JWKS, e.issuer + "keys"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	for _, c := range []struct {
		name string
		list []string
		want string
	}{
		{"code_challenge_methods_supported", d.CodeChallenge, "S256"},
		{"scopes_supported", d.Scopes, "groups"},
		{"claims_supported", d.Claims, "sid"},
		{"id_token_signing_alg_values_supported", d.IDTokenAlgorithms, "RS256"},
	} {
		if !slices.Contains(c.list, c.want) {
			t.Errorf("%s = %q, want it to contain %q", c.name, c.list, c.want)
		}
	}
	if !d.Backchannel || !d.BackchannelSID {
		t.Errorf("backchannel_logout_supported, backchannel_logout_session_supported = %t, %t; want true, true", d.Backchannel, d.BackchannelSID)
	}
	if got := e.p.Issuer(); got != e.issuer {
		t.Errorf("Issuer() = %q, want %q", got, e.issuer)
	}
}

func TestCodeFlow(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.AccessTokenLifetime = 5 * time.Minute })
	b := e.browser(t)
	tok, f := e.signIn(t, b, "alice", "alice-pw")

	idt, c := e.verifyIDToken(t, tok)
	want := idClaims{
		Email: "alice@example.com", EmailVerified: true, Name: "Alice Adams", PreferredUsername: "alice",
		Groups: []string{"admins", "staff"}, Nonce: f.nonce, AMR: []string{"pwd"}, SID: c.SID,
	}
	if c.SID == "" {
		t.Error("ID token sid is empty")
	}
	if !equalClaims(c, want) {
		t.Errorf("ID token claims = %+v, want %+v", c, want)
	}
	if idt.Subject != "user-alice" {
		t.Errorf("ID token sub = %q, want %q", idt.Subject, "user-alice")
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}

	at := e.accessTokenClaims(t, tok.AccessToken)
	if got := at["exp"].(float64) - at["iat"].(float64); got < 299 || got > 301 {
		t.Errorf("access token exp - iat = %v s, want 300", got)
	}
	for k, v := range map[string]any{"sub": "user-alice", "client_id": "app", "sid": c.SID, "email": "alice@example.com", "iss": e.issuer} {
		if at[k] != v {
			t.Errorf("access token claim %q = %v, want %v", k, at[k], v)
		}
	}
	if got := time.Until(tok.Expiry); got < 4*time.Minute || got > 5*time.Minute+time.Second {
		t.Errorf("expires_in gives expiry in %v, want about 5m", got)
	}
	if got := e.p.TokenRequests("authorization_code"); got != 1 {
		t.Errorf(`TokenRequests("authorization_code") = %d, want 1`, got)
	}

}

func equalClaims(a, b idClaims) bool {
	return a.Email == b.Email && a.EmailVerified == b.EmailVerified && a.Name == b.Name &&
		a.PreferredUsername == b.PreferredUsername && slices.Equal(a.Groups, b.Groups) &&
		a.SID == b.SID && a.Nonce == b.Nonce && slices.Equal(a.AMR, b.AMR)
}

// accessTokenClaims checks the access token's signature against the JWKS
// and returns its claims.
func (e *env) accessTokenClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	ks := oidc.NewRemoteKeySet(context.Background(), e.issuer+"keys")
	payload, err := ks.VerifySignature(context.Background(), token)
	if err != nil {
		t.Fatalf("access token VerifySignature() error = %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func TestCodeReplay(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser(t)
	f := newFlow(e.app)
	code := f.code(t, e.submitLogin(t, b, get(t, b, f.authURL), "alice", "alice-pw"))
	if _, err := e.app.Exchange(context.Background(), code, oauth2.VerifierOption(f.verifier)); err != nil {
		t.Fatalf("first Exchange() error = %v", err)
	}
	_, err := e.app.Exchange(context.Background(), code, oauth2.VerifierOption(f.verifier))
	if got := errorCode(err); got != "invalid_grant" {
		t.Errorf("second Exchange() error code = %q (%v), want invalid_grant", got, err)
	}
}

func errorCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

func TestPKCE(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name      string
		conf      *oauth2.Config
		authURL   func(f flow) string
		verifier  func(f flow) string
		wantError string // at the authorization endpoint or the token endpoint; "" for success
	}{
		{
			name:     "public client with S256",
			conf:     e.cli,
			authURL:  func(f flow) string { return f.authURL },
			verifier: func(f flow) string { return f.verifier },
		},
		{
			name:      "public client without code_challenge",
			conf:      e.cli,
			authURL:   func(f flow) string { return e.cli.AuthCodeURL(f.state) },
			wantError: "invalid_request",
		},
		{
			name: "plain method refused",
			conf: e.app,
			authURL: func(f flow) string {
				return e.app.AuthCodeURL(f.state, oauth2.SetAuthURLParam("code_challenge", f.verifier), oauth2.SetAuthURLParam("code_challenge_method", "plain"))
			},
			wantError: "invalid_request",
		},
		{
			name:      "wrong verifier",
			conf:      e.cli,
			authURL:   func(f flow) string { return f.authURL },
			verifier:  func(flow) string { return oauth2.GenerateVerifier() },
			wantError: "invalid_grant",
		},
		{
			name:      "missing verifier",
			conf:      e.app,
			authURL:   func(f flow) string { return f.authURL },
			verifier:  func(flow) string { return "" },
			wantError: "invalid_request",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := e.browser(t)
			f := newFlow(tt.conf)
			pg := get(t, b, tt.authURL(f))
			if pg.location == "" {
				pg = e.submitLogin(t, b, pg, "bob", "bob-pw")
			}
			u, err := url.Parse(pg.location)
			if err != nil {
				t.Fatal(err)
			}
			if tt.verifier == nil {
				if got := u.Query().Get("error"); got != tt.wantError {
					t.Fatalf("authorization error = %q, want %q (redirect %q)", got, tt.wantError, pg.location)
				}
				return
			}
			var opts []oauth2.AuthCodeOption
			if v := tt.verifier(f); v != "" {
				opts = append(opts, oauth2.VerifierOption(v))
			}
			_, err = tt.conf.Exchange(context.Background(), f.code(t, pg), opts...)
			if got := errorCode(err); got != tt.wantError {
				t.Errorf("Exchange() error code = %q (%v), want %q", got, err, tt.wantError)
			}
		})
	}
}

func TestUserinfo(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name, username, password string
		want                     map[string]any
		wantNoGroups             bool
	}{
		{
			name: "alice", username: "alice", password: "alice-pw",
			want: map[string]any{"sub": "user-alice", "email": "alice@example.com", "email_verified": true, "name": "Alice Adams", "preferred_username": "alice", "groups": []any{"admins", "staff"}},
		},
		{
			name: "carol has no groups and an unverified email", username: "carol", password: "carol-pw",
			want:         map[string]any{"sub": "user-carol", "email": "carol@example.com", "email_verified": false, "name": "Carol Clark", "preferred_username": "carol"},
			wantNoGroups: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, _ := e.signIn(t, e.browser(t), tt.username, tt.password)
			info, err := e.rp.UserInfo(context.Background(), oauth2.StaticTokenSource(tok))
			if err != nil {
				t.Fatalf("UserInfo() error = %v", err)
			}
			var got map[string]any
			if err := info.Claims(&got); err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				if g, w := jsonString(got[k]), jsonString(v); g != w {
					t.Errorf("userinfo %q = %s, want %s", k, g, w)
				}
			}
			if _, ok := got["groups"]; ok && tt.wantNoGroups {
				t.Errorf("userinfo groups = %v, want none", got["groups"])
			}
		})
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func refresh(conf *oauth2.Config, refreshToken string) (*oauth2.Token, error) {
	return conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: refreshToken}).Token()
}

func TestRefreshRotation(t *testing.T) {
	e := newEnv(t, nil)
	tok, _ := e.signIn(t, e.browser(t), "alice", "alice-pw")
	_, first := e.verifyIDToken(t, tok)
	if tok.RefreshToken == "" {
		t.Fatal("code exchange with offline_access returned no refresh token")
	}

	tok2, err := refresh(e.app, tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh error = %v", err)
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken {
		t.Errorf("refresh returned refresh token equal to the old one or empty (%t), want a new one", tok2.RefreshToken == "")
	}
	if tok2.AccessToken == tok.AccessToken {
		t.Error("refresh returned the same access token")
	}
	_, second := e.verifyIDToken(t, tok2)
	if second.SID != first.SID || second.Email != "alice@example.com" {
		t.Errorf("refreshed ID token sid, email = %q, %q; want %q, alice@example.com", second.SID, second.Email, first.SID)
	}

	_, err = refresh(e.app, tok.RefreshToken)
	if got := errorCode(err); got != "invalid_grant" {
		t.Errorf("reusing the old refresh token: error code = %q (%v), want invalid_grant", got, err)
	}
	if _, err := refresh(e.app, tok2.RefreshToken); err != nil {
		t.Errorf("refresh with the new refresh token error = %v", err)
	}
	if got := e.p.TokenRequests("refresh_token"); got != 3 {
		t.Errorf(`TokenRequests("refresh_token") = %d, want 3`, got)
	}
	if got := e.p.TokenRequests("authorization_code"); got != 1 {
		t.Errorf(`TokenRequests("authorization_code") = %d, want 1`, got)
	}
}

// RevokeRefreshTokens cuts off one user's refresh tokens: their next
// refresh is refused, other users' tokens still refresh.
func TestRevokeRefreshTokens(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser(t)
	tok, _ := e.signIn(t, b, "alice", "alice-pw")
	other, _ := e.signIn(t, e.browser(t), "bob", "bob-pw")
	if n := e.p.RevokeRefreshTokens("user-alice"); n != 1 {
		t.Errorf("RevokeRefreshTokens = %d, want 1", n)
	}
	if _, err := refresh(e.app, tok.RefreshToken); errorCode(err) != "invalid_grant" {
		t.Errorf("refresh after revocation: error = %v, want invalid_grant", err)
	}
	if _, err := refresh(e.app, other.RefreshToken); err != nil {
		t.Errorf("another user's refresh after revocation: error = %v", err)
	}
}

// Of concurrent refreshes with one token, exactly one wins.
func TestRefreshConcurrent(t *testing.T) {
	e := newEnv(t, nil)
	tok, _ := e.signIn(t, e.browser(t), "bob", "bob-pw")
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = refresh(e.app, tok.RefreshToken) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch code := errorCode(err); {
		case err == nil:
			ok++
		case code != "invalid_grant":
			t.Errorf("refresh error = %v, want invalid_grant", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent refreshes succeeded, want 1", ok, n)
	}
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestRefreshTokenLifetime(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	e := newEnv(t, func(o *Options) { o.RefreshTokenLifetime = time.Hour })
	e.p.store.now = clock.Now // before any request, so no race
	tok, _ := e.signIn(t, e.browser(t), "alice", "alice-pw")

	clock.Add(59 * time.Minute)
	tok2, err := refresh(e.app, tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh at 59m error = %v", err)
	}
	clock.Add(2 * time.Minute) // rotation does not extend the lifetime
	_, err = refresh(e.app, tok2.RefreshToken)
	if got := errorCode(err); got != "invalid_grant" {
		t.Errorf("refresh at 61m: error code = %q (%v), want invalid_grant", got, err)
	}
}

func TestRevocation(t *testing.T) {
	e := newEnv(t, nil)
	tok, _ := e.signIn(t, e.browser(t), "alice", "alice-pw")
	form := url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}}
	req, err := http.NewRequest(http.MethodPost, e.issuer+"revoke", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", "app-secret")
	if pg := do(t, http.DefaultClient, req); pg.status != http.StatusOK {
		t.Fatalf("revoke status = %d, want 200: %s", pg.status, pg.body)
	}
	_, err = refresh(e.app, tok.RefreshToken)
	if got := errorCode(err); got != "invalid_grant" {
		t.Errorf("refresh after revocation: error code = %q (%v), want invalid_grant", got, err)
	}
}

func TestWrongPassword(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser(t)
	f := newFlow(e.app)
	form := get(t, b, f.authURL)
	pg := e.submitLogin(t, b, form, "alice", "wrong")
	if pg.status != http.StatusOK || pg.location != "" {
		t.Errorf("wrong password: status %d, Location %q; want 200 and no redirect", pg.status, pg.location)
	}
	for _, want := range []string{"Unknown user or wrong password.", `name="password"`, `value="alice"`} {
		if !strings.Contains(pg.body, want) {
			t.Errorf("wrong password page does not contain %q", want)
		}
	}
	if got := pg.header.Values("Set-Cookie"); len(got) != 0 {
		t.Errorf("wrong password Set-Cookie = %q, want none", got)
	}
	// The same request can still be completed.
	pg = e.submitLogin(t, b, pg, "alice", "alice-pw")
	f.code(t, pg)
	if strings.Contains(e.logs.String(), "wrong") {
		t.Error("logs contain the typed password")
	}
}

func TestLoginPage(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser(t)
	pg := get(t, b, newFlow(e.app).authURL)
	for _, u := range DefaultUsers() {
		for _, want := range []string{u.Username, u.Password} {
			if !strings.Contains(pg.body, want) {
				t.Errorf("login page does not show %q", want)
			}
		}
	}
	if got := pg.header.Get("Content-Security-Policy"); !strings.Contains(got, "frame-ancestors 'none'") {
		t.Errorf("Header(%q) = %q, want frame-ancestors 'none'", "Content-Security-Policy", got)
	}
	if strings.Contains(pg.body, "<link") || strings.Contains(pg.body, "<script") {
		t.Error("login page loads an external asset or script")
	}

	unknown := get(t, b, e.issuer+"login?authRequestID=nope")
	if unknown.status != http.StatusBadRequest {
		t.Errorf("unknown auth request: status = %d, want 400", unknown.status)
	}
}

// A live login session signs the next request in without a page; prompt
// and max_age are honoured.
func TestLoginSession(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser(t)
	e.signIn(t, b, "alice", "alice-pw")

	tests := []struct {
		name      string
		browser   *http.Client
		opts      []oauth2.AuthCodeOption
		wantPage  bool   // the login page is shown
		wantError string // error on the redirect to the client
	}{
		{name: "session reused", browser: b},
		{name: "prompt=none with session", browser: b, opts: []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "none")}},
		{name: "prompt=login", browser: b, opts: []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "login")}, wantPage: true},
		{name: "max_age=0", browser: b, opts: []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("max_age", "0")}, wantPage: true},
		{name: "new browser", browser: e.browser(t), wantPage: true},
		{name: "prompt=none without session", browser: e.browser(t), opts: []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "none")}, wantError: "login_required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlow(e.app, tt.opts...)
			pg := get(t, tt.browser, f.authURL)
			if gotPage := pg.location == ""; gotPage != tt.wantPage {
				t.Fatalf("login page shown = %t, want %t (status %d, Location %q)", gotPage, tt.wantPage, pg.status, pg.location)
			}
			if tt.wantPage {
				return
			}
			u, _ := url.Parse(pg.location)
			if got := u.Query().Get("error"); got != tt.wantError {
				t.Fatalf("redirect error = %q, want %q", got, tt.wantError)
			}
			if tt.wantError == "" {
				tok, err := e.app.Exchange(context.Background(), f.code(t, pg), oauth2.VerifierOption(f.verifier))
				if err != nil {
					t.Fatalf("Exchange() error = %v", err)
				}
				if _, c := e.verifyIDToken(t, tok); c.PreferredUsername != "alice" {
					t.Errorf("preferred_username = %q, want alice", c.PreferredUsername)
				}
			}
		})
	}
}

func TestEndSession(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name         string
		params       func(idToken string) url.Values
		wantStatus   int
		wantLocation string
		wantEnded    bool
	}{
		{
			name: "registered post_logout_redirect_uri with id_token_hint",
			params: func(idToken string) url.Values {
				return url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {signedOutURL}, "state": {"s1"}}
			},
			wantStatus: http.StatusFound, wantLocation: signedOutURL + "?state=s1", wantEnded: true,
		},
		{
			name: "registered post_logout_redirect_uri with client_id",
			params: func(string) url.Values {
				return url.Values{"client_id": {"app"}, "post_logout_redirect_uri": {signedOutURL}}
			},
			wantStatus: http.StatusFound, wantLocation: signedOutURL, wantEnded: true,
		},
		{
			name: "unregistered post_logout_redirect_uri",
			params: func(idToken string) url.Values {
				return url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {"http://evil.example/"}}
			},
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "no parameters ends on the provider's page",
			params:     func(string) url.Values { return url.Values{} },
			wantStatus: http.StatusFound, wantLocation: "/logged-out", wantEnded: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := e.browser(t)
			tok, _ := e.signIn(t, b, "alice", "alice-pw")
			idToken, _ := tok.Extra("id_token").(string)

			issuerURL, _ := url.Parse(e.issuer)
			oldCookies := b.Jar.Cookies(issuerURL)
			if len(oldCookies) == 0 {
				t.Fatal("no login session cookie after sign-in")
			}
			// Stop at the first redirect, even one within the provider.
			b.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			pg := get(t, b, e.issuer+"end_session?"+tt.params(idToken).Encode())
			if pg.status != tt.wantStatus || pg.location != tt.wantLocation {
				t.Fatalf("end_session = %d, Location %q; want %d, %q", pg.status, pg.location, tt.wantStatus, tt.wantLocation)
			}

			if cleared := strings.Contains(pg.header.Get("Set-Cookie"), cookieName+"=;"); cleared != tt.wantEnded {
				t.Errorf("end_session cleared the cookie = %t, want %t", cleared, tt.wantEnded)
			}
			// Even a browser that kept the old cookie must sign in again.
			replay := e.browser(t)
			replay.Jar.SetCookies(issuerURL, oldCookies)
			next := get(t, replay, newFlow(e.app).authURL)
			if gotEnded := next.location == ""; gotEnded != tt.wantEnded {
				t.Errorf("next authorization with the old cookie shows the login page = %t, want %t", gotEnded, tt.wantEnded)
			}
			_, err := refresh(e.app, tok.RefreshToken)
			if gotEnded := errorCode(err) == "invalid_grant"; gotEnded != tt.wantEnded {
				t.Errorf("refresh after end_session refused = %t (%v), want %t", gotEnded, err, tt.wantEnded)
			}
		})
	}
}

func TestLogsHoldNoSecrets(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser(t)
	tok, _ := e.signIn(t, b, "alice", "alice-pw")
	tok2, err := refresh(e.app, tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	idToken, _ := tok2.Extra("id_token").(string)
	b.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	get(t, b, e.issuer+"end_session?"+url.Values{"id_token_hint": {idToken}}.Encode())

	logs := e.logs.String()
	if !strings.Contains(logs, "signed in") || !strings.Contains(logs, "signed out") {
		t.Errorf("logs = %q, want sign-in and sign-out lines", logs)
	}
	u, _ := url.Parse(e.issuer)
	secrets := []string{"alice-pw", "app-secret", tok.AccessToken, tok.RefreshToken, tok2.RefreshToken, idToken}
	for _, c := range b.Jar.Cookies(u) {
		secrets = append(secrets, c.Value)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("logs contain a secret starting %.8q", s)
		}
	}
}

func TestNew(t *testing.T) {
	good := Client{ID: "a", RedirectURIs: []string{callbackURL}}
	tests := []struct {
		name    string
		o       Options
		wantErr string
	}{
		{name: "ok", o: Options{Issuer: "http://127.0.0.1:9000/", Clients: []Client{good}}},
		{name: "ok without trailing slash", o: Options{Issuer: "http://[::1]:9000"}},
		{name: "ok https", o: Options{Issuer: "https://idp.example/"}},
		{name: "no issuer", o: Options{}, wantErr: "issuer is required"},
		{name: "http not loopback", o: Options{Issuer: "http://idp.example/"}, wantErr: "not loopback"},
		{name: "issuer with path", o: Options{Issuer: "http://127.0.0.1:9000/idp/"}, wantErr: "has a path"},
		{name: "client without redirect", o: Options{Issuer: "http://127.0.0.1/", Clients: []Client{{ID: "a"}}}, wantErr: "no redirect URI"},
		{name: "ok back-channel logout", o: Options{Issuer: "http://127.0.0.1/", Clients: []Client{{ID: "a", RedirectURIs: []string{callbackURL}, BackchannelLogoutURI: rpOrigin + "/oauth2/backchannel_logout"}}}},
		{name: "relative back-channel logout", o: Options{Issuer: "http://127.0.0.1/", Clients: []Client{{ID: "a", RedirectURIs: []string{callbackURL}, BackchannelLogoutURI: "/oauth2/backchannel_logout"}}}, wantErr: "BackchannelLogoutURI"},
		{name: "back-channel logout not http", o: Options{Issuer: "http://127.0.0.1/", Clients: []Client{{ID: "a", RedirectURIs: []string{callbackURL}, BackchannelLogoutURI: "ftp://127.0.0.1/x"}}}, wantErr: "not an http or https URL"},
		{name: "back-channel logout with fragment", o: Options{Issuer: "http://127.0.0.1/", Clients: []Client{{ID: "a", RedirectURIs: []string{callbackURL}, BackchannelLogoutURI: rpOrigin + "/bc#x"}}}, wantErr: "has a fragment"},
		{name: "duplicate client", o: Options{Issuer: "http://127.0.0.1/", Clients: []Client{good, good}}, wantErr: "registered twice"},
		{name: "duplicate user", o: Options{Issuer: "http://127.0.0.1/", Users: []User{{ID: "1", Username: "x"}, {ID: "2", Username: "x"}}}, wantErr: "registered twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.o)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("New() error = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("New() error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// The access token is a JWT whose payload anyone can read; the whoami page
// relies on that.
func TestAccessTokenIsJWT(t *testing.T) {
	e := newEnv(t, nil)
	tok, _ := e.signIn(t, e.browser(t), "bob", "bob-pw")
	parts := strings.Split(tok.AccessToken, ".")
	if len(parts) != 3 {
		t.Fatalf("access token has %d parts, want 3", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Groups []string `json:"groups"`
		Scope  string   `json:"scope"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Groups, []string{"staff"}) || !strings.Contains(c.Scope, "openid") {
		t.Errorf("access token groups, scope = %q, %q; want [staff] and a scope with openid", c.Groups, c.Scope)
	}
}

// Of concurrent exchanges of one code, exactly one gets tokens.
func TestCodeExchangeConcurrent(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser(t)
	f := newFlow(e.app)
	code := f.code(t, e.submitLogin(t, b, get(t, b, f.authURL), "alice", "alice-pw"))
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = e.app.Exchange(context.Background(), code, oauth2.VerifierOption(f.verifier))
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch code := errorCode(err); {
		case err == nil:
			ok++
		case code != "invalid_grant":
			t.Errorf("Exchange() error = %v, want invalid_grant", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent exchanges succeeded, want 1", ok, n)
	}
}
