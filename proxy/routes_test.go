package proxy

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/proxy/access"
	"github.com/authgate/authgate/session"
)

// testRoutes has every kind of route: public, by group, by email or group
// (the example), by claim and path, by header, one that tries to
// read a stripped identity header, and a catch-all for /app/ only, so that
// other paths match nothing.
const testRoutes = `
- match: "GET /static/"
  public: true
- match: "/healthz"
  public: true
- name: admin
  match: "/admin/"
  allow: '"admins" in groups'
- name: reports
  match: "GET /reports/"
  allow: 'email.endsWith("@example.com") || "auditors" in groups'
- name: tenant
  match: "/t/"
  allow: 'has(claims.tenant) && request.path.startsWith("/t/" + claims.tenant + "/")'
- name: team
  match: "/team/"
  allow: '"x-team" in request.headers && request.headers["x-team"] == "blue"'
- name: spoof
  match: "/spoof/"
  allow: '"x-forwarded-user" in request.headers || "authorization" in request.headers || "cookie" in request.headers || "x-hop" in request.headers'
- name: host
  match: "/host/"
  allow: 'request.host == "app.test" && request.method in ["GET", "POST"]'
- name: app
  match: "/app/"
  allow: 'true'
`

func mustRoutes(t testing.TB, src string) *access.Routes {
	t.Helper()
	specs, err := access.ParseRouteSpecs([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := access.CompileRoutes(specs)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// routeIdentities are the users of TestRoutes; "" is no session.
func routeIdentities(base *session.Session) map[string]*session.Session {
	with := func(edit func(*session.Session)) *session.Session {
		s := *base
		edit(&s)
		return &s
	}
	return map[string]*session.Session{
		"anonymous": nil,
		"alice": with(func(s *session.Session) {
			s.Email, s.Groups, s.Claims = "alice@example.com", []string{"users"}, `{"tenant":"acme","email":"alice@example.com"}`
		}),
		"admin": with(func(s *session.Session) {
			s.Subject, s.Email, s.Groups = "root", "root@corp.test", []string{"admins"}
		}),
		"auditor": with(func(s *session.Session) { s.Subject, s.Groups = "aud", []string{"auditors"} }),
		"unverified": with(func(s *session.Session) {
			s.Subject, s.Email, s.EmailVerified = "unv", "mallory@example.com", verified(false)
		}),
	}
}

// TestRoutes: routes × identities × requests over real TCP, through a
// real upstream.Proxy to a recording server, with every path trick of the
// public-path tests: the request is decided on the normalised path, which
// is exactly the path the upstream receives.
func TestRoutes(t *testing.T) {
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	env := newTestEnvWith(t, &fakeProvider{}, func(o *Options) {
		o.Routes = mustRoutes(t, testRoutes)
		o.Metrics = NewMetrics(reg)
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	ids := routeIdentities(env.session(time.Hour))
	cookies := map[string]string{}
	for name, s := range ids {
		if s != nil {
			cookies[name] = env.cookieFor(t, s)
		}
	}
	type req struct {
		method, target string
		header         map[string]string
	}
	tests := []struct {
		name     string
		req      req
		want     map[string]int // identity → status; absent identities get wantElse
		wantElse int
		upstream string // RequestURI the upstream sees when forwarded
	}{
		{name: "public subtree", req: req{"GET", "/static/app.js", nil}, wantElse: 200, upstream: "/static/app.js"},
		{name: "public, HEAD", req: req{"HEAD", "/static/app.js", nil}, wantElse: 200, upstream: "/static/app.js"},
		{name: "public, other method matches nothing", req: req{"POST", "/static/app.js", nil}, wantElse: 403},
		{name: "public exact", req: req{"DELETE", "/healthz", nil}, wantElse: 200, upstream: "/healthz"},
		{name: "public exact with child", req: req{"GET", "/healthz/x", nil}, wantElse: 403},
		{name: "admin", req: req{"GET", "/admin/users", nil}, want: map[string]int{"anonymous": 401, "admin": 200}, wantElse: 403, upstream: "/admin/users"},
		{name: "admin without slash matches nothing", req: req{"GET", "/admin", nil}, wantElse: 403},
		{name: "admin upper case matches nothing", req: req{"GET", "/ADMIN/users", nil}, wantElse: 403},
		{name: "public dot-dot into admin", req: req{"GET", "/static/../admin/users", nil}, want: map[string]int{"anonymous": 401, "admin": 200}, wantElse: 403, upstream: "/admin/users"},
		{name: "encoded dot-dot into admin", req: req{"GET", "/static/%2e%2E/admin/users", nil}, want: map[string]int{"anonymous": 401, "admin": 200}, wantElse: 403, upstream: "/admin/users"},
		{name: "half-encoded dot-dot into admin", req: req{"GET", "/static/.%2e/admin/x", nil}, want: map[string]int{"anonymous": 401, "admin": 200}, wantElse: 403, upstream: "/admin/x"},
		{name: "doubled slash into admin", req: req{"GET", "//admin//users", nil}, want: map[string]int{"anonymous": 401, "admin": 200}, wantElse: 403, upstream: "/admin/users"},
		{name: "parameter before dot-dot", req: req{"GET", "/static;/../admin/x", nil}, want: map[string]int{"anonymous": 401, "admin": 200}, wantElse: 403, upstream: "/admin/x"},
		{name: "encoded unreserved into admin", req: req{"GET", "/%61dmin/x", nil}, want: map[string]int{"anonymous": 401, "admin": 200}, wantElse: 403, upstream: "/admin/x"},
		{name: "dot-dot out of admin", req: req{"GET", "/admin/../app/x", nil}, want: map[string]int{"anonymous": 401}, wantElse: 200, upstream: "/app/x"},
		{name: "absolute form", req: req{"GET", "http://app.test/static/../admin/x", nil}, want: map[string]int{"anonymous": 401, "admin": 200}, wantElse: 403, upstream: "/admin/x"},
		{name: "query never matched", req: req{"GET", "/nothing?x=/app/", nil}, wantElse: 403},
		{name: "matrix parameter hiding admin", req: req{"GET", "/admin;x/users", nil}, wantElse: 403},
		{name: "matrix parameter inside a route", req: req{"GET", "/app/x;y/z", nil}, want: map[string]int{"anonymous": 401}, wantElse: 200, upstream: "/app/x;y/z"},
		{name: "matrix parameter on a public prefix", req: req{"GET", "/static;x/app.js", nil}, wantElse: 403},
		{name: "tomcat dot-dot parameter", req: req{"GET", "/app/..;/admin/", nil}, wantElse: 400},
		{name: "encoded slash", req: req{"GET", "/app/..%2fadmin/", nil}, wantElse: 400},
		{name: "backslash", req: req{"GET", `/app/..\admin/`, nil}, wantElse: 400},
		{name: "double encoding", req: req{"GET", "/app/%252e%252e/admin/", nil}, wantElse: 400},
		{name: "overlong dot", req: req{"GET", "/app/%c0%ae%c0%ae/admin/", nil}, wantElse: 400},
		{name: "fullwidth solidus", req: req{"GET", "/app/..%ef%bc%8fadmin/", nil}, wantElse: 400},
		{name: "dot-dot above root", req: req{"GET", "/../admin/", nil}, wantElse: 400},
		{name: "three dots", req: req{"GET", "/app/.../admin/", nil}, wantElse: 400},
		{name: "reports by email", req: req{"GET", "/reports/q1", nil}, want: map[string]int{"anonymous": 401, "alice": 200, "auditor": 200}, wantElse: 403, upstream: "/reports/q1"},
		{name: "reports, HEAD", req: req{"HEAD", "/reports/q1", nil}, want: map[string]int{"anonymous": 401, "alice": 200, "auditor": 200}, wantElse: 403, upstream: "/reports/q1"},
		{name: "reports, POST matches nothing", req: req{"POST", "/reports/q1", nil}, wantElse: 403},
		{name: "tenant own", req: req{"GET", "/t/acme/x", nil}, want: map[string]int{"anonymous": 401, "alice": 200}, wantElse: 403, upstream: "/t/acme/x"},
		{name: "tenant other", req: req{"GET", "/t/other/x", nil}, want: map[string]int{"anonymous": 401}, wantElse: 403},
		{name: "tenant dot-dot to other", req: req{"GET", "/t/acme/../other/x", nil}, want: map[string]int{"anonymous": 401}, wantElse: 403},
		{name: "tenant prefix trick", req: req{"GET", "/t/acmecorp/x", nil}, want: map[string]int{"anonymous": 401}, wantElse: 403},
		{name: "team header", req: req{"GET", "/team/x", map[string]string{"X-Team": "blue"}}, want: map[string]int{"anonymous": 401}, wantElse: 200, upstream: "/team/x"},
		{name: "team header other", req: req{"GET", "/team/x", map[string]string{"X-Team": "red"}}, want: map[string]int{"anonymous": 401}, wantElse: 403},
		{name: "team header dropped by Connection", req: req{"GET", "/team/x", map[string]string{"X-Team": "blue", "Connection": "X-Team"}}, want: map[string]int{"anonymous": 401}, wantElse: 403},
		{name: "stripped headers invisible", req: req{"GET", "/spoof/x", map[string]string{"X-Forwarded-User": "root", "X-Hop": "1", "Connection": "X-Hop"}}, want: map[string]int{"anonymous": 401}, wantElse: 403},
		{name: "host and method", req: req{"POST", "/host/x", nil}, want: map[string]int{"anonymous": 401}, wantElse: 200, upstream: "/host/x"},
		{name: "host, other method", req: req{"PUT", "/host/x", nil}, want: map[string]int{"anonymous": 401}, wantElse: 403},
		{name: "no route", req: req{"GET", "/elsewhere", nil}, wantElse: 403},
		{name: "root, no route", req: req{"GET", "/", nil}, wantElse: 403},
	}
	for _, tt := range tests {
		for _, who := range []string{"anonymous", "alice", "admin", "auditor", "unverified"} {
			t.Run(tt.name+"/"+who, func(t *testing.T) {
				want, ok := tt.want[who]
				if !ok {
					want = tt.wantElse
				}
				header := map[string]string{"Accept": "application/json"}
				for k, v := range tt.req.header {
					header[k] = v
				}
				if c := cookies[who]; c != "" {
					header["Cookie"] = c
				}
				before := env.up.count()
				resp, body := env.raw(t, tt.req.method, tt.req.target, header)
				if resp.StatusCode != want {
					t.Fatalf("%s %s as %s: status = %d, want %d (%s)", tt.req.method, tt.req.target, who, resp.StatusCode, want, body)
				}
				if want != 200 {
					if env.up.count() != before {
						t.Fatalf("the upstream received a refused request")
					}
					if want == 403 && tt.req.method != "HEAD" {
						var e struct{ Error string }
						if json.Unmarshal([]byte(body), &e) != nil || e.Error != "forbidden" {
							t.Errorf("body = %q, want JSON error forbidden", body)
						}
						for _, name := range []string{"admin", "reports", "tenant", "team", "spoof"} {
							if strings.Contains(body, `"`+name+`"`) || strings.Contains(body, "route") {
								t.Errorf("403 body %q names a route", body)
							}
						}
					}
					return
				}
				got := env.up.last()
				if env.up.count() != before+1 || got.RequestURI != tt.upstream {
					t.Fatalf("upstream RequestURI = %q, want %q", got.RequestURI, tt.upstream)
				}
				public := strings.HasPrefix(tt.upstream, "/static/") || tt.upstream == "/healthz"
				wantUser := ""
				if !public && ids[who] != nil {
					wantUser = ids[who].Subject
				}
				if u := got.Header.Get("X-Forwarded-User"); u != wantUser {
					t.Errorf("upstream Header(%q) = %q, want %q", "X-Forwarded-User", u, wantUser)
				}
			})
		}
	}

	// Metrics: bounded labels, the route's name or index.
	for _, c := range []struct {
		route, outcome string
		min            float64
	}{{"admin", "allowed", 1}, {"admin", "denied", 1}, {"0", "public", 1}, {"reports", "error", 1}, {"tenant", "denied", 1}, {"none", "denied", 1}, {"app", "allowed", 1}} {
		if got := routeCount(t, reg, c.route, c.outcome); got < c.min {
			t.Errorf("authgate_route_decisions_total{route=%q,outcome=%q} = %v, want >= %v", c.route, c.outcome, got, c.min)
		}
	}
	// Every route's series exists from the start, and only the configured
	// labels (plus "none") appear.
	if got := routeCount(t, reg, "host", "error"); got != 0 {
		t.Errorf("authgate_route_decisions_total{route=host,outcome=error} = %v, want a zero series", got)
	}
	fams, _ := reg.Gather()
	for _, f := range fams {
		if f.GetName() != "authgate_route_decisions_total" {
			continue
		}
		if n := len(f.GetMetric()); n != 4*(9+1) {
			t.Errorf("authgate_route_decisions_total has %d series, want %d (4 outcomes of 9 routes and none)", n, 4*(9+1))
		}
	}
	// The log names the route of a refusal; the response never does.
	if !strings.Contains(logs.String(), `"msg":"access denied by route"`) || !strings.Contains(logs.String(), `"route":"admin"`) {
		t.Errorf("logs lack a denial naming the route:\n%.2000s", logs.String())
	}
	if strings.Contains(logs.String(), "access-0") || strings.Contains(logs.String(), "refresh-0") {
		t.Errorf("logs contain a token")
	}
}

// routeCount reads authgate_route_decisions_total{route, outcome} from reg.
func routeCount(t *testing.T, reg *prometheus.Registry, route, outcome string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "authgate_route_decisions_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] == route && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

// TestRoutesBrowser: a refused browser gets the HTML page with a sign-out
// link, not a login; an anonymous navigation to a protected route starts a
// login; a path no route matches is refused before any login.
func TestRoutesBrowser(t *testing.T) {
	env := newTestEnvWith(t, &fakeProvider{}, func(o *Options) { o.Routes = mustRoutes(t, testRoutes) })
	s := env.session(time.Hour)
	s.Groups = []string{"users"}
	cookie := env.cookieFor(t, s)
	nav := map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}
	resp, body := env.raw(t, "GET", "/admin/", merge(nav, map[string]string{"Cookie": cookie}))
	if resp.StatusCode != 403 || !strings.Contains(body, "<html") || !strings.Contains(body, `href="/oauth2/sign_out"`) || strings.Contains(body, "admin") {
		t.Errorf("refused navigation: status %d body %.300q, want a 403 page with a sign-out link, not naming the route", resp.StatusCode, body)
	}
	// A navigation with Fetch Metadata gets the deep-link page (which keeps
	// the fragment on its way to the login); one without gets the 302.
	resp, body = env.raw(t, "GET", "/admin/", nav)
	if resp.StatusCode != http.StatusOK || !isDeepLinkPage(body) {
		t.Errorf("anonymous navigation: status %d body %.200q, want the deep-link page that starts a login", resp.StatusCode, body)
	}
	resp, _ = env.raw(t, "GET", "/admin/", map[string]string{"Accept": "text/html"})
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "https://idp.example/") {
		t.Errorf("anonymous navigation without Fetch Metadata: status %d Location %q, want a login", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = env.raw(t, "GET", "/nowhere", nav)
	if resp.StatusCode != 403 {
		t.Errorf("anonymous navigation to no route: status %d, want 403 without login", resp.StatusCode)
	}
}

// TestRoutesBearer: a bearer token goes through the same routes, with its
// own claims; a refusal is 403 insufficient_scope.
func TestRoutesBearer(t *testing.T) {
	env := newTestEnvWith(t, &fakeProvider{}, func(o *Options) {
		o.Routes = mustRoutes(t, testRoutes+`
- name: robots
  match: "/robots/"
  allow: '"robots" in groups && sub == "svc-1"'
`)
		o.Bearer = &fakeBearer{}
		o.BearerAudiences = []string{"api"}
	})
	for _, tt := range []struct {
		token, target string
		want          int
	}{
		{"good", "/robots/x", 200},
		{"good-no-groups", "/robots/x", 403},
		{"good", "/admin/x", 403},
		{"bad", "/robots/x", 401},
		{"bad", "/static/x", 200}, // public: the token is not looked at
		{"good", "/nowhere", 403},
	} {
		resp, body := env.raw(t, "GET", tt.target, map[string]string{"Authorization": "Bearer " + tt.token, "Accept": "application/json"})
		if resp.StatusCode != tt.want {
			t.Errorf("token %s %s: status %d, want %d (%s)", tt.token, tt.target, resp.StatusCode, tt.want, body)
		}
		if tt.want == 403 && tt.target != "/nowhere" && !strings.Contains(resp.Header.Get("WWW-Authenticate"), "insufficient_scope") {
			t.Errorf("token %s %s: WWW-Authenticate = %q, want insufficient_scope", tt.token, tt.target, resp.Header.Get("WWW-Authenticate"))
		}
	}
}

// TestRoutesForwardAuth: <prefix>/auth applies the same routes to the
// original request a trusted proxy reports, over real TCP.
func TestRoutesForwardAuth(t *testing.T) {
	trusted, err := access.ParseTrustedProxies([]string{"127.0.0.0/8", "::1/128"})
	if err != nil {
		t.Fatal(err)
	}
	env := newTestEnvWith(t, &fakeProvider{}, func(o *Options) {
		o.Routes = mustRoutes(t, testRoutes)
		o.TrustedProxies = trusted
	})
	s := env.session(time.Hour)
	s.Groups, s.Claims = []string{"users"}, `{"tenant":"acme"}`
	cookie := env.cookieFor(t, s)
	admin := env.session(time.Hour)
	admin.Groups = []string{"admins"}
	adminCookie := env.cookieFor(t, admin)
	for _, tt := range []struct {
		name, cookie, method, uri string
		header                    map[string]string
		want                      int
	}{
		{"public", "", "GET", "/static/x", nil, 202},
		{"public, method not in pattern", "", "POST", "/static/x", nil, 403},
		{"public spelled non-canonically needs a route that is not public", "", "GET", "/static//x", nil, 403},
		{"protected, anonymous", "", "GET", "/admin/x", nil, 401},
		{"protected, refused", cookie, "GET", "/admin/x", nil, 403},
		{"protected, allowed", adminCookie, "GET", "/admin/x", nil, 202},
		{"decided on the normalised path", cookie, "GET", "/static/../admin/x", nil, 403},
		{"decided on the normalised path, allowed", adminCookie, "GET", "/static/../admin/x", nil, 202},
		{"claims and path", cookie, "GET", "/t/acme/x", nil, 202},
		{"claims and other path", cookie, "GET", "/t/other/x", nil, 403},
		{"host from the proxy", cookie, "GET", "/host/x", map[string]string{"X-Forwarded-Host": "app.test"}, 202},
		{"other host from the proxy", cookie, "GET", "/host/x", map[string]string{"X-Forwarded-Host": "evil.test"}, 403},
		{"original method", cookie, "DELETE", "/host/x", map[string]string{"X-Forwarded-Host": "app.test"}, 403},
		{"forwarding headers invisible", cookie, "GET", "/spoof/x", map[string]string{"X-Forwarded-User": "x"}, 403},
		{"no route", cookie, "GET", "/nowhere", nil, 403},
		{"ambiguous", cookie, "GET", "/app/..%2fadmin/", nil, 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{"X-Original-Uri": tt.uri, "X-Original-Method": tt.method, "Accept": "application/json"}
			for k, v := range tt.header {
				h[k] = v
			}
			if tt.cookie != "" {
				h["Cookie"] = tt.cookie
			}
			resp, body := env.raw(t, "GET", "/oauth2/auth", h)
			if resp.StatusCode != tt.want {
				t.Fatalf("%s %s: status %d, want %d (%s)", tt.method, tt.uri, resp.StatusCode, tt.want, body)
			}
			if env.up.count() != 0 {
				t.Fatalf("forward-auth forwarded a request")
			}
		})
	}
}

// TestRoutesReplaceLegacy: Routes together with PublicPaths or Policy is a
// programming error New refuses.
func TestRoutesReplaceLegacy(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	store, _ := session.NewCookieStore(session.CookieStoreOptions{Keys: [][]byte{key}})
	sealer, _ := session.NewSealer([][]byte{key})
	_, err := New(Options{Provider: &fakeProvider{}, Store: store, Sealer: sealer, Upstream: http.NotFoundHandler(),
		Routes: mustRoutes(t, testRoutes), Policy: mustPolicy(t, nil, nil, []string{"x"})})
	if err == nil || !strings.Contains(err.Error(), "Routes") {
		t.Errorf("New(Routes and Policy) error = %v, want one naming Routes", err)
	}
}
