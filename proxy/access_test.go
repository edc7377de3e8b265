package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/proxy/access"
	"github.com/authgate/authgate/proxy/idp"
	"github.com/authgate/authgate/session"
)

// identityHeaders are every header that tells the upstream who the user is.
var identityHeaders = []string{"Authorization", "X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Forwarded-Preferred-Username"}

// spoofed are identity headers a client sends to pass as someone else.
var spoofed = map[string]string{
	"X-Forwarded-User":   "admin",
	"X-Forwarded-Email":  "admin@corp.example",
	"X-Forwarded-Groups": "admins",
	"Authorization":      "Basic YWRtaW46YWRtaW4=",
}

// raw sends method and target verbatim in the request line, over TCP, to
// the handler served by a real net/http server, so that Go's own parsing of
// the request target is part of the test.
func (e *testEnv) raw(t *testing.T, method, target string, header map[string]string) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n", method, target)
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: read response: %v", method, target, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func mustPublic(t *testing.T, patterns ...string) *access.PublicPaths {
	t.Helper()
	p, err := access.ParsePublicPaths(patterns)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustPolicy(t *testing.T, emails, domains, groups []string) *access.Policy {
	t.Helper()
	p, err := access.NewPolicy(emails, domains, groups)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPublicPathTricks replays the path tricks of peers' advisories against
// public routes, over real TCP: a request either reaches the upstream on a
// public path, with exactly the normalised path and no identity, or gets
// 400 (ambiguous) or 401 (needs a session) and the upstream sees nothing.
func TestPublicPathTricks(t *testing.T) {
	env := newTestEnvWith(t, &fakeProvider{}, func(o *Options) {
		o.PublicPaths = mustPublic(t, "GET /static/", "/healthz", "POST /hooks/github")
	})
	tests := []struct {
		name     string
		method   string
		target   string
		want     int
		upstream string // RequestURI the upstream must see; "" when it must see nothing
	}{
		{"subtree", "GET", "/static/app.js", 200, "/static/app.js"},
		{"subtree root", "GET", "/static/", 200, "/static/"},
		{"HEAD with a GET pattern", "HEAD", "/static/app.js", 200, "/static/app.js"},
		{"exact", "GET", "/healthz", 200, "/healthz"},
		{"exact, any method", "DELETE", "/healthz", 200, "/healthz"},
		{"method-bound pattern", "POST", "/hooks/github", 200, "/hooks/github"},
		{"query never matched", "GET", "/admin?x=/static/", 401, ""},
		{"query kept, not matched", "GET", "/static/x?/../../admin", 200, "/static/x?/../../admin"},
		{"encoded unreserved decoded and forwarded decoded", "GET", "/%73tatic/app.js", 200, "/static/app.js"},
		{"escape case canonicalised", "GET", "/static/a%3ab", 200, "/static/a%3Ab"},
		{"leading dot segment", "GET", "/./static/x", 200, "/static/x"},
		{"dot segment from another prefix", "GET", "/oauth2/../static/x", 200, "/static/x"},
		{"doubled leading slash merged", "GET", "//static/x", 200, "/static/x"},

		{"dot-dot out of the subtree", "GET", "/static/../admin", 401, ""},
		{"encoded dot-dot", "GET", "/static/%2e%2e/admin", 401, ""},
		{"upper-case encoded dot-dot", "GET", "/static/%2E%2E/admin", 401, ""},
		{"half-encoded dot-dot", "GET", "/static/.%2e/admin", 401, ""},
		{"doubled slash then dot-dot", "GET", "//static/../admin", 401, ""},
		{"slash dot-dot after empty segment", "GET", "/static//../admin", 401, ""},
		{"parameter before dot-dot", "GET", "/static;/../admin", 401, ""},
		{"trailing dot segment", "GET", "/static/x/../../admin/.", 401, ""},
		{"prefix without trailing slash", "GET", "/static", 401, ""},
		{"case differs", "GET", "/STATIC/x", 401, ""},
		{"exact pattern with trailing slash", "GET", "/healthz/", 401, ""},
		{"exact pattern with a child", "GET", "/healthz/x", 401, ""},
		{"exact pattern with a parameter", "GET", "/healthz;x", 401, ""},
		{"exact pattern with a trailing dot", "GET", "/healthz.", 401, ""},
		{"method not in pattern", "POST", "/static/x", 401, ""},
		{"method case", "get", "/static/x", 401, ""},
		{"absolute form dot-dot", "GET", "http://app.test/static/../admin", 401, ""},

		{"encoded slash", "GET", "/static/..%2fadmin", 400, ""},
		{"encoded slash upper", "GET", "/static%2F..%2Fadmin", 400, ""},
		{"backslash", "GET", `/static/..\admin`, 400, ""},
		{"encoded backslash", "GET", "/static/..%5cadmin", 400, ""},
		{"tomcat dot-dot parameter", "GET", "/static/..;/admin", 400, ""},
		{"tomcat dot-dot parameter with value", "GET", "/static/..;jsessionid=1/admin", 400, ""},
		{"dot parameter", "GET", "/static/.;x/admin", 400, ""},
		{"encoded hash", "GET", "/static/x%23/../../admin", 400, ""},
		{"encoded question mark", "GET", "/static/x%3f/../../admin", 400, ""},
		{"raw hash", "GET", "/static/x#/../../admin", 400, ""},
		{"double encoding", "GET", "/static/%252e%252e/admin", 400, ""},
		{"double-encoded slash", "GET", "/static/..%252fadmin", 400, ""},
		{"double encoding completed by decoding", "GET", "/static/%252%65%252%65/admin", 400, ""},
		{"IIS unicode escape", "GET", "/static/%u002e%u002e/admin", 400, ""},
		{"overlong UTF-8 dot", "GET", "/static/%c0%ae%c0%ae/admin", 400, ""},
		{"overlong UTF-8 slash", "GET", "/static/..%c0%afadmin", 400, ""},
		{"fullwidth full stops", "GET", "/static/%ef%bc%8e%ef%bc%8e/admin", 400, ""},
		{"fullwidth solidus", "GET", "/static/..%ef%bc%8fadmin", 400, ""},
		{"encoded NUL", "GET", "/static/x%00.js", 400, ""},
		{"encoded newline", "GET", "/static/x%0a", 400, ""},
		{"encoded tab", "GET", "/static/%09/../admin", 400, ""},
		{"three dots", "GET", "/static/.../admin", 400, ""},
		{"trailing-dot segment (Windows)", "GET", "/static/..%20/admin", 400, ""},
		{"dot-dot above the root", "GET", "/../static/x", 400, ""},
		{"malformed escape", "GET", "/static/%zz", 400, ""},
		{"truncated escape", "GET", "/static/x%2", 400, ""},
		{"asterisk form (net/http answers it itself)", "OPTIONS", "*", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := map[string]string{"Accept": "application/json"}
			for k, v := range spoofed {
				header[k] = v
			}
			before := env.up.count()
			resp, body := env.raw(t, tt.method, tt.target, header)
			if resp.StatusCode != tt.want {
				t.Fatalf("%s %s: status = %d, want %d (%s)", tt.method, tt.target, resp.StatusCode, tt.want, body)
			}
			if tt.upstream == "" {
				if n := env.up.count(); n != before {
					t.Fatalf("%s %s: the upstream received %d request(s), want none", tt.method, tt.target, n-before)
				}
				return
			}
			got := env.up.last()
			if env.up.count() != before+1 || got.RequestURI != tt.upstream {
				t.Fatalf("upstream RequestURI = %q, want %q", got.RequestURI, tt.upstream)
			}
			for _, h := range identityHeaders {
				if v := got.Header.Get(h); v != "" {
					t.Errorf("upstream Header(%q) = %q on a public path, want none", h, v)
				}
			}
		})
	}
}

// TestPublicPathDecidedOnForwardedPath: a decision on the normalised path
// and forwarding of the same path, for protected paths with a session too.
func TestPublicPathDecidedOnForwardedPath(t *testing.T) {
	env := newTestEnvWith(t, &fakeProvider{}, func(o *Options) {
		o.PublicPaths = mustPublic(t, "GET /static/")
	})
	cookie := env.cookieFor(t, env.session(time.Hour))
	for target, want := range map[string]string{
		"/a/./b/../c":        "/a/c",
		"//a//b/":            "/a/b/",
		"/a/%7e%41?q=%2e%2e": "/a/~A?q=%2e%2e",
		"/a/%2e":             "/a/",
	} {
		t.Run(target, func(t *testing.T) {
			resp, body := env.raw(t, "GET", target, map[string]string{"Cookie": cookie})
			if resp.StatusCode != 200 {
				t.Fatalf("status %d (%s)", resp.StatusCode, body)
			}
			got := env.up.last()
			if got.RequestURI != want {
				t.Errorf("upstream RequestURI = %q, want %q", got.RequestURI, want)
			}
			if got.Header.Get("X-Forwarded-User") != "alice" {
				t.Errorf("upstream Header(%q) = %q, want %q", "X-Forwarded-User", got.Header.Get("X-Forwarded-User"), "alice")
			}
		})
	}
}

// TestOwnEndpointsRoutedAfterNormalisation: authgate's endpoints are found
// on the normalised path too, and never forwarded.
func TestOwnEndpointsRoutedAfterNormalisation(t *testing.T) {
	env := newTestEnvWith(t, &fakeProvider{}, func(o *Options) {
		o.PublicPaths = mustPublic(t, "GET /static/")
	})
	for _, target := range []string{"/oauth2//start", "/static/../oauth2/start", "/oauth2/./start", "/%6fauth2/start"} {
		t.Run(target, func(t *testing.T) {
			resp, _ := env.raw(t, "GET", target, nil)
			if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "https://idp.example/") {
				t.Errorf("status %d Location %q, want the login start", resp.StatusCode, resp.Header.Get("Location"))
			}
			if env.up.count() != 0 {
				t.Error("the upstream received an authgate endpoint")
			}
		})
	}
}

func verified(b bool) *bool { return &b }

// TestPolicy: a signed-in user the policy refuses gets 403 (a page for
// browsers, JSON for APIs), never a login redirect, and the upstream sees
// nothing.
func TestPolicy(t *testing.T) {
	env := newTestEnvWith(t, &fakeProvider{}, func(o *Options) {
		o.Policy = mustPolicy(t, []string{"boss@corp.example"}, []string{"corp.example"}, []string{"admins"})
	})
	tests := []struct {
		name   string
		edit   func(*session.Session)
		status int
	}{
		{"allowed domain", func(s *session.Session) { s.Email = "a@corp.example" }, 200},
		{"allowed domain, verified", func(s *session.Session) { s.Email = "a@corp.example"; s.EmailVerified = verified(true) }, 200},
		{"allowed group", func(s *session.Session) { s.Groups = []string{"dev", "admins"} }, 200},
		{"allowed email", func(s *session.Session) { s.Email = "Boss@CORP.example" }, 200},
		{"unverified email", func(s *session.Session) { s.Email = "a@corp.example"; s.EmailVerified = verified(false) }, 403},
		{"subdomain", func(s *session.Session) { s.Email = "a@sub.corp.example" }, 403},
		{"suffix trick", func(s *session.Session) { s.Email = "a@corp.example.evil.test" }, 403},
		{"label trick", func(s *session.Session) { s.Email = "a@evilcorp.example" }, 403},
		{"two @", func(s *session.Session) { s.Email = "a@evil.test@corp.example" }, 403},
		{"quoted @", func(s *session.Session) { s.Email = `"a@evil.test"@corp.example` }, 403},
		{"no email, no groups", func(s *session.Session) {}, 403},
		{"groups claim missing", func(s *session.Session) { s.Groups = nil }, 403},
		{"other group", func(s *session.Session) { s.Groups = []string{"Admins", "admins "} }, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := env.session(time.Hour)
			tt.edit(s)
			cookie := env.cookieFor(t, s)
			for _, client := range []map[string]string{
				{"Accept": "application/json"},
				{"Accept": "text/html", "Sec-Fetch-Mode": "navigate"},
			} {
				before := env.up.count()
				client["Cookie"] = cookie
				resp, body := env.raw(t, "GET", "/app", client)
				if resp.StatusCode != tt.status {
					t.Fatalf("%v: status = %d, want %d (%s)", client["Accept"], resp.StatusCode, tt.status, body)
				}
				if tt.status == 200 {
					continue
				}
				if env.up.count() != before {
					t.Errorf("the upstream received a refused user's request")
				}
				if client["Accept"] == "application/json" {
					var e struct{ Error string }
					if json.Unmarshal([]byte(body), &e) != nil || e.Error != "forbidden" {
						t.Errorf("API body = %q, want JSON error forbidden", body)
					}
				} else if !strings.Contains(body, "<html") || !strings.Contains(body, `href="/oauth2/sign_out"`) {
					t.Errorf("browser body = %.300q, want an HTML page with a sign-out link", body)
				}
			}
		})
	}
}

// fakeBearer accepts the token "good" (and "good-no-groups"), reports an
// outage for "down", and refuses anything else.
type fakeBearer struct{ calls int }

func (f *fakeBearer) VerifyBearer(_ context.Context, token string, audiences []string) (*idp.Identity, error) {
	f.calls++
	if len(audiences) == 0 {
		return nil, errors.New("no audiences")
	}
	switch token {
	case "good":
		return &idp.Identity{Subject: "svc-1", Email: "svc@corp.example", Groups: []string{"robots"}, PreferredUsername: "svc"}, nil
	case "good-no-groups":
		return &idp.Identity{Subject: "svc-2"}, nil
	case "down":
		return nil, fmt.Errorf("verify: %w", idp.ErrUnavailable)
	}
	return nil, &idp.TokenError{Description: "token expired"}
}

// TestBearer: a valid bearer token passes with itself and its identity;
// any other bearer token gets 401 with an RFC 6750 challenge and never a
// login, whatever cookie or Accept header comes with it.
func TestBearer(t *testing.T) {
	fb := &fakeBearer{}
	env := newTestEnvWith(t, &fakeProvider{}, func(o *Options) {
		o.Bearer = fb
		o.BearerAudiences = []string{"api"}
		o.Policy = mustPolicy(t, nil, nil, []string{"robots", "users"})
	})
	s := env.session(time.Hour)
	s.Groups = []string{"users"}
	cookie := env.cookieFor(t, s)
	nav := map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}
	tests := []struct {
		name       string
		header     map[string]string
		status     int
		upstream   string // Authorization the upstream sees; "" for none
		challenge  string // substring of WWW-Authenticate
		wantCookie bool
	}{
		{"valid", map[string]string{"Authorization": "Bearer good"}, 200, "Bearer good", "", false},
		{"scheme is case-insensitive", map[string]string{"Authorization": "bearer good"}, 200, "Bearer good", "", false},
		{"valid token wins over the session", map[string]string{"Authorization": "Bearer good", "Cookie": cookie}, 200, "Bearer good", "", false},
		{"invalid", map[string]string{"Authorization": "Bearer bad"}, 401, "", `error="invalid_token", error_description="token expired"`, false},
		{"invalid from a browser", merge(nav, map[string]string{"Authorization": "Bearer bad"}), 401, "", `error="invalid_token"`, false},
		{"invalid with a session", map[string]string{"Authorization": "Bearer bad", "Cookie": cookie}, 401, "", `error="invalid_token"`, false},
		{"empty token", map[string]string{"Authorization": "Bearer "}, 401, "", `error="invalid_token"`, false},
		{"not allowed by policy", map[string]string{"Authorization": "Bearer good-no-groups"}, 403, "", `error="insufficient_scope"`, false},
		{"IdP keys unavailable", map[string]string{"Authorization": "Bearer down"}, 503, "", "", false},
		{"basic with a session: replaced", map[string]string{"Authorization": "Basic YTpi", "Cookie": cookie}, 200, "Bearer access-0", "", false},
		{"no token, session", map[string]string{"Cookie": cookie}, 200, "Bearer access-0", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := env.up.count()
			header := merge(map[string]string{"Accept": "application/json"}, tt.header)
			resp, body := env.raw(t, "GET", "/api/x", header)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (%s)", resp.StatusCode, tt.status, body)
			}
			if got := resp.Header.Get("WWW-Authenticate"); !strings.Contains(got, tt.challenge) {
				t.Errorf("Header(%q) = %q, want it to contain %q", "WWW-Authenticate", got, tt.challenge)
			}
			if tt.upstream == "" {
				if env.up.count() != before {
					t.Error("the upstream received a refused request")
				}
				return
			}
			got := env.up.last().Header.Get("Authorization")
			if got != tt.upstream {
				t.Errorf("upstream Header(%q) = %q, want %q", "Authorization", got, tt.upstream)
			}
			if tt.upstream == "Bearer good" && env.up.last().Header.Get("X-Forwarded-User") != "svc-1" {
				t.Errorf("upstream Header(%q) = %q, want %q", "X-Forwarded-User", env.up.last().Header.Get("X-Forwarded-User"), "svc-1")
			}
		})
	}

	t.Run("several Authorization headers", func(t *testing.T) {
		r := httptest.NewRequest("GET", "/api/x", nil)
		r.Header.Add("Authorization", "Bearer good")
		r.Header.Add("Authorization", "Bearer other")
		w := httptest.NewRecorder()
		env.h.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("status = %d, want 401", w.Code)
		}
	})
}

// TestBearerOff: without a verifier, a bearer token is not a credential:
// no session means the usual login or 401, without an error code.
func TestBearerOff(t *testing.T) {
	env := newTestEnv(t, &fakeProvider{})
	resp, _ := env.raw(t, "GET", "/api", map[string]string{"Authorization": "Bearer good", "Accept": "application/json"})
	if resp.StatusCode != 401 || strings.Contains(resp.Header.Get("WWW-Authenticate"), "error=") {
		t.Errorf("API: %d %q, want 401 without an error code", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp, body := env.raw(t, "GET", "/page", map[string]string{"Authorization": "Bearer good", "Accept": "text/html", "Sec-Fetch-Mode": "navigate"})
	if resp.StatusCode != http.StatusOK || !isDeepLinkPage(body) {
		t.Errorf("navigation: %d, want 200 with the page that starts the login", resp.StatusCode)
	}
	if env.up.count() != 0 {
		t.Error("the upstream received an unauthenticated request")
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

// TestCallbackPolicy: a user the policy refuses is signed in (the session
// cookie is set) and gets 403 at the callback, not a redirect into a loop.
func TestCallbackPolicy(t *testing.T) {
	p := &fakeProvider{exchangeID: &idp.Identity{Subject: "bob", Email: "bob@other.example"}}
	env := newTestEnvWith(t, p, func(o *Options) {
		o.Policy = mustPolicy(t, nil, []string{"corp.example"}, nil)
	})
	w := httptest.NewRecorder()
	env.h.ServeHTTP(w, httptest.NewRequest("GET", "/oauth2/start?rd=/deep", nil))
	var flow []string
	for _, c := range w.Result().Cookies() {
		flow = append(flow, c.Name+"="+c.Value)
	}
	r := httptest.NewRequest("GET", "/oauth2/callback?code=c&state=state-0123456789abcdef", nil)
	r.Header.Set("Cookie", strings.Join(flow, "; "))
	r.Header.Set("Accept", "text/html")
	w = httptest.NewRecorder()
	env.h.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden || w.Header().Get("Location") != "" {
		t.Fatalf("callback: %d Location %q, want 403 without a redirect", w.Code, w.Header().Get("Location"))
	}
	var session bool
	for _, c := range w.Result().Cookies() {
		session = session || c.Name == "authgate" && c.MaxAge >= 0 && c.Value != ""
	}
	if !session {
		t.Error("no session cookie: the next request would start another login")
	}
}

// openFlowCookie returns the login-flow state a login start answered with.
func (e *testEnv) openFlowCookie(t *testing.T, w *httptest.ResponseRecorder) *flowState {
	t.Helper()
	r := httptest.NewRequest("GET", "/", nil)
	for _, c := range w.Result().Cookies() {
		r.AddCookie(c)
	}
	f, err := e.h.openFlow(r, e.h.flowCookies("state-0123456789abcdef"))
	if err != nil {
		t.Fatalf("open flow cookie: %v", err)
	}
	return f
}

// TestStartRedirectTarget: /start keeps an absolute rd only on an allowed
// host; every other absolute or tricky target lands on "/".
func TestStartRedirectTarget(t *testing.T) {
	hosts, err := access.NewRedirectHosts([]string{".corp.example"})
	if err != nil {
		t.Fatal(err)
	}
	env := newTestEnvWith(t, &fakeProvider{}, func(o *Options) { o.RedirectHosts = hosts })
	for rd, want := range map[string]string{
		"/deep?x=1":                              "/deep?x=1",
		"https://app.corp.example/p?q=1":         "https://app.corp.example/p?q=1",
		"https://APP.corp.example/p#frag":        "https://app.corp.example/p#frag",
		"/app/#/settings/profile":                "/app/#/settings/profile",
		"/p?x=1#y":                               "/p?x=1#y",
		"/foo?":                                  "/foo?",
		"/#//evil.test":                          "/#//evil.test",
		"http://app.corp.example/p":              "/",
		"https://corp.example/":                  "/",
		"https://evilcorp.example/":              "/",
		"https://app.corp.example.evil.test/":    "/",
		"https://app.corp.example@evil.test/":    "/",
		"https://evil.test\\@app.corp.example/":  "/",
		"//app.corp.example/":                    "/",
		"javascript:alert(1)":                    "/",
		"JaVaScRiPt:alert(1)":                    "/",
		"data:text/html,<script>x</script>":      "/",
		"https:evil.test":                        "/",
		`/\evil.test`:                            "/",
		`\\evil.test`:                            "/",
		"/\tevil.test":                           "/",
		"/%09/evil.test":                         "/",
		"/%2F%2Fevil.test":                       "/",
		"%2F%2Fevil.test":                        "/",
		"/%5Cevil.test":                          "/",
		`/a/../\evil.test`:                       "/",
		" https://app.corp.example/":             "/",
		"https://app.corp.example%2F@evil.test/": "/",
		`https://app.corp.example\@evil.test/`:   "/",
		"https://user@app.corp.example/":         "/",
		"https://app.corp.example:8443/":         "/",
		"HTTPS://APP.CORP.EXAMPLE/x":             "https://app.corp.example/x",
		"https://app.corp.example/\r\nLocation: https://evil.test/": "/",
		"https://app.corp.example//evil.test":                       "/",
		"https://app.corp.example/%2F%2Fevil.test":                  "/",
	} {
		t.Run(rd, func(t *testing.T) {
			w := httptest.NewRecorder()
			env.h.ServeHTTP(w, httptest.NewRequest("GET", "/oauth2/start?rd="+url.QueryEscape(rd), nil))
			if got := env.openFlowCookie(t, w).Redirect; got != want {
				t.Errorf("post-login target of rd=%q = %q, want %q", rd, got, want)
			}
		})
	}
}
