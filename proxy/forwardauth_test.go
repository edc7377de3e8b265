package proxy

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/proxy/access"
	"github.com/authgate/authgate/proxy/idp"
)

const (
	trustedPeer   = "10.0.0.5:40000"
	untrustedPeer = "192.0.2.7:40000"
)

func newForwardAuthEnv(t *testing.T, p *fakeProvider, edit func(*Options)) *testEnv {
	t.Helper()
	trusted, err := access.ParseTrustedProxies([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	hosts, err := access.NewRedirectHosts([]string{".corp.example"})
	if err != nil {
		t.Fatal(err)
	}
	return newTestEnvWith(t, p, func(o *Options) {
		o.TrustedProxies = trusted
		o.RedirectHosts = hosts
		o.PublicPaths = mustPublic(t, "GET /static/", "/healthz")
		o.Bearer = &fakeBearer{}
		o.BearerAudiences = []string{"api"}
		if edit != nil {
			edit(o)
		}
	})
}

// auth sends a forward-auth request from peer to target with header.
func (e *testEnv) auth(peer, target string, header map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", target, nil)
	r.RemoteAddr = peer
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// TestForwardAuth covers the decisions of <prefix>/auth, including headers
// from untrusted peers, which must never steer one.
func TestForwardAuth(t *testing.T) {
	env := newForwardAuthEnv(t, &fakeProvider{}, nil)
	cookie := env.cookieFor(t, env.session(time.Hour))
	s := env.session(time.Hour)
	s.Email = "alice@corp.example"
	s.Groups = []string{"dev", "ops"}
	fullCookie := env.cookieFor(t, s)
	orig := func(uri string) map[string]string {
		return map[string]string{"X-Original-URI": uri, "X-Forwarded-Host": "app.corp.example", "X-Forwarded-Proto": "https", "Accept": "application/json"}
	}
	tests := []struct {
		name   string
		peer   string
		target string
		header map[string]string
		status int
		want   map[string]string // response headers; "" means absent
	}{
		{"public path, trusted", trustedPeer, "/oauth2/auth", orig("/static/app.js"), 202,
			map[string]string{"X-Forwarded-User": "", "Authorization": ""}},
		{"public path via X-Forwarded-Uri (Traefik)", trustedPeer, "/oauth2/auth",
			map[string]string{"X-Forwarded-Uri": "/static/x", "X-Forwarded-Method": "GET"}, 202, nil},
		{"public path, untrusted peer", untrustedPeer, "/oauth2/auth", orig("/static/app.js"), 401, nil},
		{"public path, no URI header", trustedPeer, "/oauth2/auth", map[string]string{"Accept": "application/json"}, 401, nil},
		{"public path, method not in pattern", trustedPeer, "/oauth2/auth",
			merge(orig("/static/x"), map[string]string{"X-Original-Method": "POST"}), 401, nil},
		{"public path, method header from an untrusted peer", untrustedPeer, "/oauth2/auth",
			map[string]string{"X-Original-Method": "GET", "X-Original-URI": "/healthz"}, 401, nil},
		{"public path, two URI headers disagree", trustedPeer, "/oauth2/auth",
			merge(orig("/static/x"), map[string]string{"X-Forwarded-Uri": "/admin"}), 401, nil},
		{"dot-dot out of a public path", trustedPeer, "/oauth2/auth", orig("/static/../admin"), 401, nil},
		{"encoded dot-dot", trustedPeer, "/oauth2/auth", orig("/static/%2e%2e/admin"), 401, nil},
		{"doubled slash (upstream sees the raw path)", trustedPeer, "/oauth2/auth", orig("/static//x"), 401, nil},
		{"non-canonical escape", trustedPeer, "/oauth2/auth", orig("/static/a%3ab"), 401, nil},
		{"query never matched", trustedPeer, "/oauth2/auth", orig("/admin?/static/"), 401, nil},
		{"encoded slash", trustedPeer, "/oauth2/auth", orig("/static/..%2fadmin"), 403, nil},
		{"tomcat dot-dot parameter", trustedPeer, "/oauth2/auth", orig("/static/..;/admin"), 403, nil},
		{"tomcat dot-dot parameter, redirect mode", trustedPeer, "/oauth2/auth?mode=redirect", orig("/static/..;/admin"), 400, nil},
		{"backslash", trustedPeer, "/oauth2/auth", orig(`/static/..\admin`), 401, nil}, // invalid header value: own URI used
		{"Envoy path_prefix form, trusted", trustedPeer, "/oauth2/auth/static/app.js", nil, 202, nil},
		{"Envoy path_prefix form, untrusted", untrustedPeer, "/oauth2/auth/static/app.js", nil, 401, nil},
		{"Envoy path_prefix form, dot-dot", trustedPeer, "/oauth2/auth/static/%2e%2e/admin", nil, 401, nil},
		{"session", trustedPeer, "/oauth2/auth", merge(orig("/admin"), map[string]string{"Cookie": fullCookie}), 202,
			map[string]string{"Authorization": "Bearer access-0", "X-Forwarded-User": "alice", "X-Forwarded-Email": "alice@corp.example", "X-Forwarded-Groups": "dev,ops"}},
		{"session, untrusted peer still authenticates", untrustedPeer, "/oauth2/auth", map[string]string{"Cookie": cookie}, 202,
			map[string]string{"X-Forwarded-User": "alice"}},
		{"bearer", trustedPeer, "/oauth2/auth", merge(orig("/api"), map[string]string{"Authorization": "Bearer good"}), 202,
			map[string]string{"Authorization": "Bearer good", "X-Forwarded-User": "svc-1"}},
		{"invalid bearer, even with a session", trustedPeer, "/oauth2/auth",
			merge(orig("/api"), map[string]string{"Authorization": "Bearer bad", "Cookie": cookie}), 401,
			map[string]string{"WWW-Authenticate": `Bearer realm="authgate", error="invalid_token", error_description="token expired"`}},
		{"no session", trustedPeer, "/oauth2/auth", orig("/admin"), 401,
			map[string]string{"WWW-Authenticate": `Bearer realm="authgate"`, "Location": ""}},
		{"no session, navigation, status mode", trustedPeer, "/oauth2/auth",
			merge(orig("/admin"), map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}), 401, map[string]string{"Location": ""}},
		{"no session, API client, redirect mode", trustedPeer, "/oauth2/auth?mode=redirect", orig("/admin"), 401, nil},
		{"no session, POST navigation, redirect mode", trustedPeer, "/oauth2/auth?mode=redirect",
			merge(orig("/admin"), map[string]string{"X-Original-Method": "POST", "Accept": "text/html"}), 401, nil},
		{"invalid bearer, navigation, redirect mode", trustedPeer, "/oauth2/auth?mode=redirect",
			merge(orig("/admin"), map[string]string{"Authorization": "Bearer bad", "Accept": "text/html", "Sec-Fetch-Mode": "navigate"}), 401, nil},
		{"no session, navigation, redirect mode", trustedPeer, "/oauth2/auth?mode=redirect",
			merge(orig("/admin"), map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}), 302,
			map[string]string{"Location": "https://idp.example/auth?state=x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := env.auth(tt.peer, tt.target, tt.header)
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d (%s)", w.Code, tt.status, w.Body)
			}
			for k, v := range tt.want {
				if got := w.Header().Get(k); got != v {
					t.Errorf("Header(%q) = %q, want %q", k, got, v)
				}
			}
			if w.Code != http.StatusAccepted {
				for _, k := range identityHeaders {
					if k != "Authorization" && w.Header().Get(k) != "" {
						t.Errorf("Header(%q) = %q on a %d, want none", k, w.Header().Get(k), w.Code)
					}
				}
			}
		})
	}
	if n := env.up.count(); n != 0 {
		t.Errorf("forward-auth forwarded %d request(s) to the upstream, want none", n)
	}
}

// TestForwardAuthPolicy: a signed-in user the policy refuses gets 403 from
// forward-auth, in both modes, never a redirect to login.
func TestForwardAuthPolicy(t *testing.T) {
	env := newForwardAuthEnv(t, &fakeProvider{}, func(o *Options) {
		o.Policy = mustPolicy(t, nil, []string{"corp.example"}, nil)
	})
	s := env.session(time.Hour)
	s.Email = "mallory@evil.test"
	cookie := env.cookieFor(t, s)
	for _, target := range []string{"/oauth2/auth", "/oauth2/auth?mode=redirect"} {
		w := env.auth(trustedPeer, target, map[string]string{"Cookie": cookie, "X-Original-URI": "/x", "Sec-Fetch-Mode": "navigate", "Accept": "text/html"})
		if w.Code != http.StatusForbidden || w.Header().Get("X-Forwarded-User") != "" {
			t.Errorf("%s: status %d, user %q, want 403 without identity", target, w.Code, w.Header().Get("X-Forwarded-User"))
		}
	}
}

// TestForwardAuthRefresh: forward-auth refreshes an expiring session and
// sends the new cookie with the 202.
func TestForwardAuthRefresh(t *testing.T) {
	env := newForwardAuthEnv(t, &fakeProvider{newRefreshTk: "refresh-1"}, nil)
	cookie := env.cookieFor(t, env.session(10*time.Second))
	w := env.auth(trustedPeer, "/oauth2/auth", map[string]string{"Cookie": cookie, "X-Original-URI": "/x"})
	if w.Code != http.StatusAccepted || w.Header().Get("Authorization") != "Bearer access-1" {
		t.Fatalf("status %d Authorization %q, want 202 with the refreshed token", w.Code, w.Header().Get("Authorization"))
	}
	var fresh string
	for _, c := range w.Result().Cookies() {
		if c.Name == "authgate" {
			fresh = c.Name + "=" + c.Value
		}
	}
	if fresh == "" {
		t.Fatal("no Set-Cookie with the refreshed session")
	}
	w = env.auth(trustedPeer, "/oauth2/auth", map[string]string{"Cookie": fresh, "X-Original-URI": "/x"})
	if w.Code != http.StatusAccepted || w.Header().Get("Authorization") != "Bearer access-1" || env.provider.refreshes.Load() != 1 {
		t.Errorf("with the new cookie: %d %q after %d refreshes, want 202, access-1, 1", w.Code, w.Header().Get("Authorization"), env.provider.refreshes.Load())
	}

	// The refresh token is dead: 401 in status mode, login in redirect mode.
	env2 := newForwardAuthEnv(t, &fakeProvider{refreshErr: errInvalidGrant()}, nil)
	cookie = env2.cookieFor(t, env2.session(-time.Second))
	if w := env2.auth(trustedPeer, "/oauth2/auth", map[string]string{"Cookie": cookie, "X-Original-URI": "/x"}); w.Code != http.StatusUnauthorized {
		t.Errorf("dead refresh token: %d, want 401", w.Code)
	}
}

// TestForwardAuthLoginReturnsToOriginalURL: a login started through
// forward-auth returns to the original absolute URL only on an allowed
// host; otherwise to the same path on authgate's own origin.
func TestForwardAuthLoginReturnsToOriginalURL(t *testing.T) {
	env := newForwardAuthEnv(t, &fakeProvider{}, nil)
	nav := map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "navigate", "X-Forwarded-Proto": "https"}
	tests := []struct {
		name   string
		peer   string
		header map[string]string
		want   string
	}{
		{"allowed host", trustedPeer, map[string]string{"X-Forwarded-Host": "app.corp.example", "X-Original-URI": "/deep/page?x=1"}, "https://app.corp.example/deep/page?x=1"},
		{"allowed host, normalised path", trustedPeer, map[string]string{"X-Forwarded-Host": "app.corp.example", "X-Original-URI": "/a/../deep"}, "https://app.corp.example/deep"},
		{"host not allowed", trustedPeer, map[string]string{"X-Forwarded-Host": "evil.test", "X-Original-URI": "/deep"}, "/deep"},
		{"suffix trick", trustedPeer, map[string]string{"X-Forwarded-Host": "corp.example.evil.test", "X-Original-URI": "/deep"}, "/deep"},
		{"userinfo trick", trustedPeer, map[string]string{"X-Forwarded-Host": "evil.test@app.corp.example", "X-Original-URI": "/deep"}, "/deep"},
		{"scheme-relative URI", trustedPeer, map[string]string{"X-Forwarded-Host": "app.corp.example", "X-Original-URI": "//evil.test/x"}, "https://app.corp.example/evil.test/x"},
		{"untrusted peer", untrustedPeer, map[string]string{"X-Forwarded-Host": "app.corp.example", "X-Original-URI": "/deep"}, "/oauth2/auth?mode=redirect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := env.auth(tt.peer, "/oauth2/auth?mode=redirect", merge(nav, tt.header))
			if w.Code != http.StatusFound {
				t.Fatalf("status %d, want 302 to login (%s)", w.Code, w.Body)
			}
			if got := env.openFlowCookie(t, w).Redirect; got != tt.want {
				t.Errorf("post-login target = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestForwardAuthUnauthenticatedPageOffersLogin: in status mode a browser
// that sees the 401 page (Envoy, or nginx without error_page) gets a link
// that starts a login returning to the original URL.
func TestForwardAuthUnauthenticatedPageOffersLogin(t *testing.T) {
	env := newForwardAuthEnv(t, &fakeProvider{}, nil)
	w := env.auth(trustedPeer, "/oauth2/auth", map[string]string{"Accept": "text/html", "X-Forwarded-Host": "app.corp.example", "X-Forwarded-Proto": "https", "X-Original-URI": "/p"})
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), `href="/oauth2/start?rd=https%3A%2F%2Fapp.corp.example%2Fp"`) {
		t.Errorf("status %d body %s, want 401 with a sign-in link", w.Code, w.Body)
	}
}

func errInvalidGrant() error { return fmt.Errorf("refresh: %w", idp.ErrInvalidGrant) }
