package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/proxy/idp/idptest"
)

// quirkEnv is one run of authgate in front of idptest emulating a
// provider's documented behaviour.
type quirkEnv struct {
	t *testing.T
	g *gate
	s *idptest.Server
	b *browser
}

// login navigates to /app and expects to land on it, signed in.
func (e *quirkEnv) login() *http.Request {
	e.t.Helper()
	resp := e.b.navigate(e.g.URL + "/app")
	if body := readBody(e.t, resp); resp.StatusCode != http.StatusOK || body != "upstream /app" {
		e.t.Fatalf("login: %d %.300q, want the upstream page", resp.StatusCode, body)
	}
	return e.g.upstream.last()
}

// signOut posts a same-origin sign-out and returns the redirect target.
func (e *quirkEnv) signOut() string {
	e.t.Helper()
	resp := e.b.request(http.MethodPost, e.g.URL+"/oauth2/sign_out", map[string]string{"Origin": e.g.URL, "Sec-Fetch-Site": "same-origin"})
	readBody(e.t, resp)
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("sign_out = %d, want 302", resp.StatusCode)
	}
	return resp.Header.Get("Location")
}

// signedIn reports whether a navigation to /app reaches the upstream
// without a new login (a new login would go through the provider's
// authorization endpoint).
func (e *quirkEnv) signedIn() bool {
	e.t.Helper()
	before := len(e.s.AuthRequests())
	resp := e.b.navigate(e.g.URL + "/app")
	readBody(e.t, resp)
	return resp.StatusCode == http.StatusOK && len(e.s.AuthRequests()) == before
}

// TestProviderQuirks emulates, one row per quirk, the documented behaviour
// of providers that cannot run here (Google, Amazon Cognito, Microsoft Entra
// ID, Keycloak, Auth0), and asserts what authgate does with it, end to end.
// docs/providers.md cites these rows by name.
func TestProviderQuirks(t *testing.T) {
	entraUser := idptest.User{Subject: "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", Name: "Jane", PreferredUsername: "jane@contoso.example"}
	tests := []struct {
		name  string
		opts  idptest.Options
		env   []gateOption
		check func(e *quirkEnv)
	}{
		{
			name: "google/no-end-session-endpoint",
			opts: idptest.Options{Discovery: func(doc map[string]any) { delete(doc, "end_session_endpoint") }},
			env:  []gateOption{withEnv("AUTHGATE_POST_LOGOUT_REDIRECT_URL", "https://app.example/goodbye")},
			check: func(e *quirkEnv) {
				e.login()
				if loc := e.signOut(); loc != "https://app.example/goodbye" {
					e.t.Errorf("sign-out without end_session_endpoint went to %q, want the post-logout URL", loc)
				}
				if e.signedIn() {
					e.t.Error("still signed in after sign-out")
				}
			},
		},
		{
			name: "google/refresh-token-needs-access_type=offline",
			opts: idptest.Options{RefreshTokens: idptest.RefreshAccessTypeOffline},
			env:  []gateOption{withEnv("AUTHGATE_SCOPES", "openid,email,profile"), withEnv("AUTHGATE_AUTH_PARAMS", "access_type=offline")},
			check: func(e *quirkEnv) {
				e.login()
				if got := e.s.AuthRequests()[0].Get("access_type"); got != "offline" {
					e.t.Fatalf("authorization request access_type = %q, want offline", got)
				}
				e.g.clock.Advance(10 * time.Minute)
				if !e.signedIn() || e.s.TokenCalls("refresh_token") != 1 {
					e.t.Errorf("after the access token expired: refreshes = %d, want 1 and the session kept", e.s.TokenCalls("refresh_token"))
				}
			},
		},
		{
			name: "google/without-access_type=offline-warns-once",
			opts: idptest.Options{RefreshTokens: idptest.RefreshAccessTypeOffline},
			check: func(e *quirkEnv) {
				e.login()
				e.b = newBrowser(e.t)
				e.login()
				if n := strings.Count(e.g.logs.String(), "had none"); n != 1 {
					e.t.Errorf("no-refresh-token warning logged %d times over 2 logins, want 1", n)
				}
				if !strings.Contains(e.g.logs.String(), "access_type=offline") {
					e.t.Errorf("warning does not name access_type=offline:\n%s", e.g.logs)
				}
			},
		},
		{
			name: "node-oidc-provider/offline_access-needs-prompt=consent",
			opts: idptest.Options{RefreshTokens: idptest.RefreshOfflineConsent},
			env:  []gateOption{withEnv("AUTHGATE_PROMPT", "consent")},
			check: func(e *quirkEnv) {
				e.login()
				e.g.clock.Advance(10 * time.Minute)
				if !e.signedIn() || e.s.TokenCalls("refresh_token") != 1 {
					e.t.Errorf("with AUTHGATE_PROMPT=consent: refreshes = %d, want 1 and the session kept", e.s.TokenCalls("refresh_token"))
				}
			},
		},
		{
			name: "cognito/cognito:groups",
			opts: idptest.Options{User: idptest.User{Subject: "c-1", Email: "c@example.test"},
				ExtraClaims: map[string]any{"cognito:groups": []string{"eu-admins", "staff"}, "email_verified": "true"}},
			env: []gateOption{withEnv("AUTHGATE_GROUPS_CLAIM", "cognito:groups"), withEnv("AUTHGATE_ALLOWED_GROUPS", "eu-admins")},
			check: func(e *quirkEnv) {
				r := e.login()
				if got := r.Header.Get("X-Forwarded-Groups"); got != "eu-admins,staff" {
					e.t.Errorf("X-Forwarded-Groups = %q, want eu-admins,staff", got)
				}
				if got := r.Header.Get("X-Forwarded-Email"); got != "c@example.test" {
					e.t.Errorf("X-Forwarded-Email = %q, want c@example.test (email_verified as the string \"true\")", got)
				}
			},
		},
		{
			name: "cognito/logout-endpoint-outside-discovery",
			opts: idptest.Options{Discovery: func(doc map[string]any) { delete(doc, "end_session_endpoint") }},
			env: []gateOption{withEnv("AUTHGATE_END_SESSION_URL", "https://auth.example.com/logout?logout_uri="+url.QueryEscape("https://app.example/")),
				withEnv("AUTHGATE_POST_LOGOUT_REDIRECT_URL", "https://app.example/")},
			check: func(e *quirkEnv) {
				e.login()
				loc, err := url.Parse(e.signOut())
				if err != nil {
					e.t.Fatal(err)
				}
				q := loc.Query()
				if loc.Host != "auth.example.com" || loc.Path != "/logout" || q.Get("logout_uri") != "https://app.example/" || q.Get("client_id") != e.s.ClientID {
					e.t.Errorf("sign-out went to %s, want Cognito's /logout with logout_uri and client_id", loc)
				}
				if e.signedIn() {
					e.t.Error("still signed in after sign-out")
				}
			},
		},
		{
			name: "entra/tenant-issuer-with-path",
			opts: idptest.Options{IssuerPath: "/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0", User: entraUser,
				ExtraClaims: map[string]any{"oid": "00000000-0000-0000-66f3-3332eca7ea81", "tid": "9188040d-6c67-4c5b-b112-36a304b66dad"}},
			env: []gateOption{withEnv("AUTHGATE_USER_CLAIM", "oid"), withEnv("AUTHGATE_EMAIL_CLAIM", "preferred_username"),
				withEnv("AUTHGATE_ALLOWED_EMAIL_DOMAINS", "contoso.example")},
			check: func(e *quirkEnv) {
				if !strings.HasSuffix(e.s.URL, "/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0") {
					e.t.Fatalf("issuer %q lacks the tenant path", e.s.URL)
				}
				r := e.login()
				if got := r.Header.Get("X-Forwarded-User"); got != "00000000-0000-0000-66f3-3332eca7ea81" {
					e.t.Errorf("X-Forwarded-User = %q, want the oid", got)
				}
				if got := r.Header.Get("X-Forwarded-Email"); got != "jane@contoso.example" {
					e.t.Errorf("X-Forwarded-Email = %q, want preferred_username", got)
				}
				// The user claim survives in the session across a refresh.
				e.g.clock.Advance(10 * time.Minute)
				if !e.signedIn() {
					e.t.Fatal("session lost at refresh")
				}
				if got := e.g.upstream.last().Header.Get("X-Forwarded-User"); got != "00000000-0000-0000-66f3-3332eca7ea81" {
					e.t.Errorf("after refresh X-Forwarded-User = %q, want the oid", got)
				}
			},
		},
		{
			name: "entra/group-overage",
			opts: idptest.Options{User: entraUser, ExtraClaims: map[string]any{
				"_claim_names":   map[string]any{"groups": "src1"},
				"_claim_sources": map[string]any{"src1": map[string]any{"endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}},
			}},
			env: []gateOption{withEnv("AUTHGATE_ALLOWED_GROUPS", "b8b3c5a4-0000-0000-0000-000000000001")},
			check: func(e *quirkEnv) {
				resp := e.b.navigate(e.g.URL + "/app")
				body := readBody(e.t, resp)
				if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "too many groups") {
					e.t.Errorf("overage login = %d %.200q, want 403 naming the cause", resp.StatusCode, body)
				}
				logs := e.g.logs.String()
				if !strings.Contains(logs, "group overage") || strings.Contains(logs, "not allowed by policy") {
					e.t.Errorf("log must say group overage, not a policy refusal:\n%s", logs)
				}
				if e.g.upstream.count() != 0 {
					e.t.Error("upstream reached")
				}
			},
		},
		{
			name: "keycloak/realm-roles-only-in-access-token",
			opts: idptest.Options{User: idptest.User{Subject: "kc-1", Email: "k@example.test", EmailVerified: true},
				AccessTokens:      idptest.AccessJWT,
				AccessTokenClaims: map[string]any{"realm_access": map[string]any{"roles": []string{"admin", "offline_access"}}}},
			env: []gateOption{withEnv("AUTHGATE_GROUPS_CLAIM", "realm_access.roles"), withEnv("AUTHGATE_ALLOWED_GROUPS", "admin")},
			check: func(e *quirkEnv) {
				r := e.login()
				if got := r.Header.Get("X-Forwarded-Groups"); got != "admin,offline_access" {
					e.t.Errorf("X-Forwarded-Groups = %q, want the realm roles from the access token", got)
				}
			},
		},
		{
			name: "keycloak/forged-access-token-roles-ignored",
			opts: idptest.Options{User: idptest.User{Subject: "kc-1", Email: "k@example.test", EmailVerified: true},
				AccessTokens: idptest.AccessJWT, AccessTokenWrongKey: true,
				AccessTokenClaims: map[string]any{"realm_access": map[string]any{"roles": []string{"admin"}}}},
			env: []gateOption{withEnv("AUTHGATE_GROUPS_CLAIM", "realm_access.roles"), withEnv("AUTHGATE_ALLOWED_GROUPS", "admin")},
			check: func(e *quirkEnv) {
				resp := e.b.navigate(e.g.URL + "/app")
				readBody(e.t, resp)
				if resp.StatusCode != http.StatusForbidden {
					e.t.Errorf("roles from an access token not signed by the issuer: %d, want 403", resp.StatusCode)
				}
			},
		},
		{
			name: "auth0/audience-param-gives-jwt-access-token",
			opts: idptest.Options{AccessTokens: idptest.AccessJWTWithAudience},
			env:  []gateOption{withEnv("AUTHGATE_AUTH_PARAMS", "audience=https://api.example.com")},
			check: func(e *quirkEnv) {
				r := e.login()
				tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
				if c := jwtClaims(e.t, tok); c == nil || c["aud"] != "https://api.example.com" {
					e.t.Errorf("forwarded access token claims = %v, want a JWT for https://api.example.com", c)
				}
			},
		},
		{
			name: "auth0/without-audience-opaque-access-token",
			opts: idptest.Options{AccessTokens: idptest.AccessJWTWithAudience},
			check: func(e *quirkEnv) {
				r := e.login()
				tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
				if tok == "" || strings.Count(tok, ".") == 2 {
					e.t.Errorf("forwarded access token %.20q…, want an opaque one", tok)
				}
			},
		},
		{
			name: "auth0/namespaced-roles-claim",
			opts: idptest.Options{User: idptest.User{Subject: "auth0|1", Email: "a@example.test", EmailVerified: true},
				ExtraClaims: map[string]any{"https://example.com/roles": []string{"ops"}}},
			env: []gateOption{withEnv("AUTHGATE_GROUPS_CLAIM", "https://example.com/roles"), withEnv("AUTHGATE_ALLOWED_GROUPS", "ops")},
			check: func(e *quirkEnv) {
				if got := e.login().Header.Get("X-Forwarded-Groups"); got != "ops" {
					e.t.Errorf("X-Forwarded-Groups = %q, want ops", got)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, s := startFakeGate(t, tt.opts, tt.env...)
			tt.check(&quirkEnv{t: t, g: g, s: s, b: newBrowser(t)})
		})
	}
}
