package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/authgate/authgate/session"
)

// TestAccessConfigErrors: every access-control variable is validated at
// start, and the message names the variable.
func TestAccessConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string // substring of the error; "" means valid
	}{
		{"valid, with spaces after commas", map[string]string{
			"AUTHGATE_PUBLIC_PATHS":           "GET /static/, /healthz, POST /hooks/",
			"AUTHGATE_ALLOWED_EMAILS":         "a@example.com, B@Example.com",
			"AUTHGATE_ALLOWED_EMAIL_DOMAINS":  "example.com, @example.org",
			"AUTHGATE_ALLOWED_GROUPS":         "admins, dev team",
			"AUTHGATE_BEARER_AUDIENCES":       "api-1, api-2",
			"AUTHGATE_TRUSTED_PROXIES":        "10.0.0.0/8, 127.0.0.1, ::1",
			"AUTHGATE_COOKIE_DOMAIN":          "example.com",
			"AUTHGATE_ALLOWED_REDIRECT_HOSTS": ".example.com, other.example.com:8443",
		}, ""},
		{"public pattern not canonical", map[string]string{"AUTHGATE_PUBLIC_PATHS": "/static/../admin/"}, "AUTHGATE_PUBLIC_PATHS:"},
		{"public pattern everything", map[string]string{"AUTHGATE_PUBLIC_PATHS": "/"}, "AUTHGATE_PUBLIC_PATHS:"},
		{"public pattern wildcard", map[string]string{"AUTHGATE_PUBLIC_PATHS": "/api/{id}"}, "AUTHGATE_PUBLIC_PATHS:"},
		{"public pattern lower-case method", map[string]string{"AUTHGATE_PUBLIC_PATHS": "get /static/"}, "AUTHGATE_PUBLIC_PATHS:"},
		{"public pattern empty entry", map[string]string{"AUTHGATE_PUBLIC_PATHS": "/a,,/b"}, "AUTHGATE_PUBLIC_PATHS:"},
		{"email with two @", map[string]string{"AUTHGATE_ALLOWED_EMAILS": "a@evil.com@example.com"}, "AUTHGATE_ALLOWED_EMAILS:"},
		{"domain wildcard", map[string]string{"AUTHGATE_ALLOWED_EMAIL_DOMAINS": "*.example.com"}, "AUTHGATE_ALLOWED_EMAIL_DOMAINS:"},
		{"domain suffix rule", map[string]string{"AUTHGATE_ALLOWED_EMAIL_DOMAINS": ".example.com"}, "AUTHGATE_ALLOWED_EMAIL_DOMAINS:"},
		{"empty group", map[string]string{"AUTHGATE_ALLOWED_GROUPS": "admins,,dev"}, "AUTHGATE_ALLOWED_GROUPS:"},
		{"bearer audience is the client id", map[string]string{"AUTHGATE_BEARER_AUDIENCES": "authgate"}, "AUTHGATE_BEARER_AUDIENCES:"},
		{"trust everyone", map[string]string{"AUTHGATE_TRUSTED_PROXIES": "0.0.0.0/0"}, "AUTHGATE_TRUSTED_PROXIES:"},
		{"trusted prefix with host bits", map[string]string{"AUTHGATE_TRUSTED_PROXIES": "10.0.0.1/8"}, "AUTHGATE_TRUSTED_PROXIES:"},
		{"trusted proxy by name", map[string]string{"AUTHGATE_TRUSTED_PROXIES": "nginx"}, "AUTHGATE_TRUSTED_PROXIES:"},
		{"redirect hosts without cookie domain", map[string]string{"AUTHGATE_ALLOWED_REDIRECT_HOSTS": ".example.com"}, "needs AUTHGATE_COOKIE_DOMAIN"},
		{"redirect host outside the cookie domain", map[string]string{"AUTHGATE_ALLOWED_REDIRECT_HOSTS": "app.other.com", "AUTHGATE_COOKIE_DOMAIN": "example.com"}, "outside AUTHGATE_COOKIE_DOMAIN"},
		{"redirect host look-alike", map[string]string{"AUTHGATE_ALLOWED_REDIRECT_HOSTS": "evilexample.com", "AUTHGATE_COOKIE_DOMAIN": "example.com"}, "outside AUTHGATE_COOKIE_DOMAIN"},
		{"redirect host wildcard", map[string]string{"AUTHGATE_ALLOWED_REDIRECT_HOSTS": "*.example.com", "AUTHGATE_COOKIE_DOMAIN": "example.com"}, "AUTHGATE_ALLOWED_REDIRECT_HOSTS:"},
		{"redirect host with scheme", map[string]string{"AUTHGATE_ALLOWED_REDIRECT_HOSTS": "https://app.example.com", "AUTHGATE_COOKIE_DOMAIN": "example.com"}, "AUTHGATE_ALLOWED_REDIRECT_HOSTS:"},
		{"cookie domain misses the callback host", map[string]string{"AUTHGATE_ALLOWED_REDIRECT_HOSTS": ".corp.example", "AUTHGATE_COOKIE_DOMAIN": "corp.example"}, "AUTHGATE_COOKIE_DOMAIN:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfigWith(t, tt.env)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("loadConfig: %v", err)
				}
				if cfg.publicPaths == nil || cfg.policy == nil || cfg.trusted == nil || cfg.redirectHosts == nil {
					t.Errorf("decision values not built: %+v", cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("loadConfig error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestPolicyE2E: with the real OP (which sends test-user@zitadel.ch and
// test-user2@zitadel.ch, verified, and no groups claim), the allow-lists
// admit exactly whom they name; a refused user gets 403 right after the
// login and on every later request, never another login.
func TestPolicyE2E(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		user    string // "" for test-user, else test-user2
		allowed bool
		logs    string // substring of authgate's log for a refusal
	}{
		{"email listed", map[string]string{"AUTHGATE_ALLOWED_EMAILS": "Test-User@zitadel.ch"}, "", true, ""},
		{"another email listed", map[string]string{"AUTHGATE_ALLOWED_EMAILS": "test-user2@zitadel.ch"}, "", false, "email and domain not allowed"},
		{"other user listed", map[string]string{"AUTHGATE_ALLOWED_EMAILS": "test-user2@zitadel.ch"}, "test-user2", true, ""},
		{"domain listed", map[string]string{"AUTHGATE_ALLOWED_EMAIL_DOMAINS": "zitadel.ch"}, "", true, ""},
		{"domain suffix is not the domain", map[string]string{"AUTHGATE_ALLOWED_EMAIL_DOMAINS": "itadel.ch"}, "", false, "email and domain not allowed"},
		{"groups claim never arrives", map[string]string{"AUTHGATE_ALLOWED_GROUPS": "admins"}, "", false, "groups claim missing"},
		{"groups claim never arrives, domain admits", map[string]string{"AUTHGATE_ALLOWED_GROUPS": "admins", "AUTHGATE_ALLOWED_EMAIL_DOMAINS": "zitadel.ch"}, "", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []gateOption
			for k, v := range tt.env {
				opts = append(opts, withEnv(k, v))
			}
			g := startGate(t, opts...)
			user := g.opUser()
			if tt.user != "" {
				user = tt.user
			}
			b := newBrowser(t)
			resp := b.login(b.navigate(g.URL+"/private?x=1"), user)
			body := readBody(t, resp)
			if tt.allowed {
				if resp.StatusCode != http.StatusOK || body != "upstream /private?x=1" {
					t.Fatalf("allowed user: %d %q", resp.StatusCode, body)
				}
				return
			}
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "may not use this application") {
				t.Fatalf("refused user after login: %d %.200q, want the 403 page", resp.StatusCode, body)
			}
			// The session is kept: the next navigation is a 403 at once, not
			// another trip to the IdP.
			resp = b.navigate(g.URL + "/private")
			readBody(t, resp)
			if resp.StatusCode != http.StatusForbidden || resp.Request.URL.String() != g.URL+"/private" {
				t.Errorf("next navigation: %d at %s, want 403 without a redirect", resp.StatusCode, resp.Request.URL)
			}
			resp = b.request("GET", g.URL+"/api", map[string]string{"Accept": "application/json"})
			body = readBody(t, resp)
			var e struct{ Error string }
			if resp.StatusCode != http.StatusForbidden || json.Unmarshal([]byte(body), &e) != nil || e.Error != "forbidden" {
				t.Errorf("API request: %d %q, want 403 JSON", resp.StatusCode, body)
			}
			if n := g.upstream.count(); n != 0 {
				t.Errorf("the upstream received %d request(s) of a refused user", n)
			}
			if logs := g.logs.String(); !strings.Contains(logs, tt.logs) {
				t.Errorf("logs lack the reason %q", tt.logs)
			}
		})
	}
}

// TestPublicPathsE2E: public paths reach the upstream without a session
// and without identity, on exactly the path that was matched; tricks that
// would leave the public subtree do not.
func TestPublicPathsE2E(t *testing.T) {
	g := startGate(t, withEnv("AUTHGATE_PUBLIC_PATHS", "GET /static/, /healthz"))
	addr := strings.TrimPrefix(g.URL, "http://")
	spoof := map[string]string{"Accept": "application/json", "X-Forwarded-User": "admin", "X-Forwarded-Email": "admin@evil.example", "Authorization": "Bearer forged"}
	tests := []struct {
		target   string
		status   int
		upstream string
	}{
		{"/static/app.js?v=1", 200, "/static/app.js?v=1"},
		{"/healthz", 200, "/healthz"},
		{"/%73tatic/./app.js", 200, "/static/app.js"},
		{"/static/../admin", 401, ""},
		{"/static/%2e%2e/admin", 401, ""},
		{"/static%2f..%2fadmin", 400, ""},
		{"/static/..;/admin", 400, ""},
		{`/static/..\admin`, 400, ""},
		{"/static/x%23/../../admin", 400, ""},
		{"/admin?/static/", 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			before := g.upstream.count()
			resp, body := rawHTTP(t, "", addr, "GET", tt.target, spoof)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tt.status, body)
			}
			if tt.upstream == "" {
				if g.upstream.count() != before {
					t.Errorf("the upstream received it")
				}
				return
			}
			seen := g.upstream.last()
			if seen.RequestURI != tt.upstream {
				t.Errorf("upstream RequestURI = %q, want %q", seen.RequestURI, tt.upstream)
			}
			for _, h := range []string{"Authorization", "X-Forwarded-User", "X-Forwarded-Email"} {
				if v := seen.Header.Get(h); v != "" {
					t.Errorf("upstream Header(%q) = %q on a public path, want none", h, v)
				}
			}
		})
	}
}

// exchangeForJWT asks the OP for a JWT naming audience for the user whose
// access token is given (RFC 8693 token exchange; the example OP issues an
// ID-token-shaped JWT signed with its RS256 key), as an API client of the
// same issuer would hold.
func exchangeForJWT(t *testing.T, g *gate, accessToken, audience string) string {
	t.Helper()
	form := url.Values{
		"grant_type":           {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":        {accessToken},
		"subject_token_type":   {"urn:ietf:params:oauth:token-type:access_token"},
		"requested_token_type": {"urn:ietf:params:oauth:token-type:id_token"},
		"audience":             {audience},
		"scope":                {"openid email profile"},
	}
	req, _ := http.NewRequest(http.MethodPost, g.op.URL+"oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(g.cfg.ClientID, g.cfg.ClientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &out) != nil || strings.Count(out.AccessToken, ".") != 2 {
		t.Fatalf("token exchange: %d %.300s", resp.StatusCode, body)
	}
	return out.AccessToken
}

// TestBearerE2E: a JWT from the real OP naming a configured audience passes
// with itself and its identity; authgate's own ID token, the opaque session
// token and a JWT for another audience get 401 with an RFC 6750 challenge,
// never a login.
func TestBearerE2E(t *testing.T) {
	g := startGate(t, withEnv("AUTHGATE_BEARER_AUDIENCES", "api-1"), withEnv("AUTHGATE_ALLOWED_EMAIL_DOMAINS", "zitadel.ch"))
	b := newBrowser(t)
	readBody(t, b.signIn(g, g.URL+"/"))
	opaque := strings.TrimPrefix(g.upstream.last().Header.Get("Authorization"), "Bearer ")
	good := exchangeForJWT(t, g, opaque, "api-1")
	other := exchangeForJWT(t, g, opaque, "api-9")

	// authgate's own ID token, as it travels in the browser at sign-out.
	signOut := b.request("GET", g.URL+"/oauth2/sign_out", sameOriginLink)
	readBody(t, signOut)
	loc, _ := url.Parse(signOut.Header.Get("Location"))
	idToken := loc.Query().Get("id_token_hint")
	if strings.Count(idToken, ".") != 2 {
		t.Fatalf("no id_token_hint in the sign-out redirect %q", signOut.Header.Get("Location"))
	}

	nav := map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}
	tests := []struct {
		name  string
		token string
		desc  string // "" for a pass
	}{
		{"JWT for the configured audience", good, ""},
		{"JWT for another audience", other, "audience not accepted"},
		{"authgate's own ID token", idToken, "audience not accepted"},
		{"opaque access token", opaque, "malformed token"},
		{"tampered JWT", good[:len(good)-4] + "AAAA", "invalid signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := g.upstream.count()
			resp := rawRequest(t, "GET", g.URL+"/api/data", "", merge(nav, map[string]string{"Authorization": "Bearer " + tt.token}))
			body := readBody(t, resp)
			if tt.desc == "" {
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d (%s), want 200", resp.StatusCode, body)
				}
				seen := g.upstream.last()
				if got := seen.Header.Get("Authorization"); got != "Bearer "+tt.token {
					t.Errorf("upstream Header(%q) is not the client's token", "Authorization")
				}
				if got := seen.Header.Get("X-Forwarded-Email"); got != "test-user@zitadel.ch" {
					t.Errorf("upstream Header(%q) = %q, want %q", "X-Forwarded-Email", got, "test-user@zitadel.ch")
				}
				return
			}
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401 (a navigation with a bad token is not sent to login)", resp.StatusCode)
			}
			want := `Bearer realm="authgate", error="invalid_token", error_description="` + tt.desc + `"`
			if got := resp.Header.Get("WWW-Authenticate"); got != want {
				t.Errorf("Header(%q) = %q, want %q", "WWW-Authenticate", got, want)
			}
			if g.upstream.count() != before {
				t.Error("the upstream received a refused token")
			}
		})
	}
	if logs := g.logs.String(); strings.Contains(logs, good) || strings.Contains(logs, idToken) {
		t.Error("the logs contain a bearer token")
	}
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// traefikDynamic is the part of deploy/traefik/dynamic.yml this test reads.
type traefikDynamic struct {
	HTTP struct {
		Middlewares map[string]struct {
			ForwardAuth struct {
				Address                  string   `json:"address"`
				TrustForwardHeader       bool     `json:"trustForwardHeader"`
				AuthResponseHeaders      []string `json:"authResponseHeaders"`
				AddAuthCookiesToResponse []string `json:"addAuthCookiesToResponse"`
			} `json:"forwardAuth"`
		} `json:"middlewares"`
		Routers map[string]struct {
			Rule        string   `json:"rule"`
			Middlewares []string `json:"middlewares"`
			Service     string   `json:"service"`
		} `json:"routers"`
	} `json:"http"`
}

// TestTraefikExample: deploy/traefik/dynamic.yml asks authgate the way
// authgate answers. A request shaped as Traefik's forwardAuth sends it (to
// the configured address, with Traefik's X-Forwarded-* headers from a
// trusted address) starts a login for a navigation and, with a session,
// gets a 202 whose identity headers are exactly the ones the example copies.
func TestTraefikExample(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "traefik", "dynamic.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var dyn traefikDynamic
	if err := yaml.Unmarshal(raw, &dyn); err != nil {
		t.Fatalf("decode dynamic.yml: %v", err)
	}
	fa := dyn.HTTP.Middlewares["authgate"].ForwardAuth
	if fa.TrustForwardHeader {
		t.Error("forwardAuth.trustForwardHeader is true: Traefik would pass a client's own X-Forwarded-Uri")
	}
	if r := dyn.HTTP.Routers["authgate"]; !strings.Contains(r.Rule, "PathPrefix(`/oauth2/`)") || len(r.Middlewares) != 0 || r.Service != "authgate" {
		t.Errorf("router authgate = %+v, want /oauth2/ to authgate without the middleware", r)
	}
	if r := dyn.HTTP.Routers["app"]; len(r.Middlewares) != 1 || r.Middlewares[0] != "authgate" {
		t.Errorf("router app = %+v, want the authgate middleware", r)
	}
	for _, c := range []session.CookieOptions{{Name: "authgate", Secure: true}, {Name: "authgate", Secure: true, Domain: "example.com"}} {
		if name := session.NewCookies(c).Name(); !slices.Contains(fa.AddAuthCookiesToResponse, name) {
			t.Errorf("addAuthCookiesToResponse lacks %q", name)
		}
	}

	g := startGate(t, withEnv("AUTHGATE_TRUSTED_PROXIES", "127.0.0.1/32"), withEnv("AUTHGATE_PUBLIC_PATHS", "GET /static/"))
	address := strings.Replace(fa.Address, "http://authgate:4180", g.URL, 1)
	if address == fa.Address {
		t.Fatalf("forwardAuth.address %q does not name http://authgate:4180", fa.Address)
	}
	host := strings.TrimPrefix(g.URL, "http://")
	traefik := func(uri string, extra map[string]string) map[string]string {
		return merge(map[string]string{"X-Forwarded-Method": "GET", "X-Forwarded-Proto": "http", "X-Forwarded-Host": host,
			"X-Forwarded-Uri": uri, "X-Forwarded-For": "192.0.2.10"}, extra)
	}
	nav := map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}

	resp := rawRequest(t, "GET", address, "", traefik("/deep?x=1", nav))
	readBody(t, resp)
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), g.op.URL) {
		t.Fatalf("navigation without a session: %d Location %q, want the login", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp = rawRequest(t, "GET", address, "", traefik("/api", map[string]string{"Accept": "application/json"}))
	readBody(t, resp)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("API client without a session: %d, want 401", resp.StatusCode)
	}
	resp = rawRequest(t, "GET", address, "", traefik("/static/app.js", map[string]string{"Authorization": "Bearer forged"}))
	readBody(t, resp)
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("public path: %d, want 202", resp.StatusCode)
	}
	for _, h := range fa.AuthResponseHeaders {
		if v := resp.Header.Get(h); v != "" {
			t.Errorf("public path: Header(%q) = %q, want none, so that Traefik removes the client's copy", h, v)
		}
	}

	b := newBrowser(t)
	readBody(t, b.signIn(g, g.URL+"/"))
	resp = rawRequest(t, "GET", address, b.cookieHeader(g), traefik("/deep", nav))
	readBody(t, resp)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("with a session: %d, want 202", resp.StatusCode)
	}
	for _, h := range []string{"Authorization", "X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Forwarded-Preferred-Username"} {
		if resp.Header.Get(h) != "" && !slices.Contains(fa.AuthResponseHeaders, h) {
			t.Errorf("authgate answers %s, which authResponseHeaders does not copy", h)
		}
	}
	for _, h := range []string{"Authorization", "X-Forwarded-User", "X-Forwarded-Email"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("202 Header(%q) is empty", h)
		}
	}
}
