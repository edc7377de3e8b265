package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// e2eRoutes is AUTHGATE_ROUTES on one line, as in Compose. The example OP
// sends no groups claim, and its userinfo (not its ID token) carries
// family_name ("User" for test-user, "User2" for test-user2), so /family/
// passes only when the session keeps the merged claims.
const e2eRoutes = `[` +
	`{match: "GET /static/", public: true}, ` +
	`{name: admin, match: /admin/, allow: '"admins" in groups'}, ` +
	`{name: family, match: /family/, allow: 'has(claims.family_name) && claims.family_name == "User2" && claims.email == email'}, ` +
	`{name: reports, match: "GET /reports/", allow: 'email.startsWith("test-user@") || "auditors" in groups'}, ` +
	`{name: team, match: /team/, allow: 'request.headers["x-team"] == "blue" && !("x-forwarded-user" in request.headers)'}, ` +
	`{name: app, match: /, allow: 'sub != ""'}]`

// TestRoutesE2E: routes × users × requests through the real program, the
// real OP and real TCP, with the upstream asserting what it received, and
// every path trick of the public-path tests.
func TestRoutesE2E(t *testing.T) {
	g := startGate(t, withEnv("AUTHGATE_ROUTES", e2eRoutes))
	addr := strings.TrimPrefix(g.URL, "http://")
	cookies := map[string]string{"anonymous": ""}
	for _, user := range []string{g.opUser(), "test-user2"} {
		b := newBrowser(t)
		resp := b.login(b.navigate(g.URL+"/start-here"), user)
		if body := readBody(t, resp); resp.StatusCode != http.StatusOK || body != "upstream /start-here" {
			t.Fatalf("login of %s: %d %q", user, resp.StatusCode, body)
		}
		name := "user1"
		if user == "test-user2" {
			name = "user2"
		}
		cookies[name] = b.cookieHeader(g)
	}
	tests := []struct {
		method, target string
		header         map[string]string
		want           map[string]int // by identity: anonymous, user1, user2
		upstream       string
	}{
		{"GET", "/static/app.js", nil, map[string]int{"anonymous": 200, "user1": 200, "user2": 200}, "/static/app.js"},
		{"POST", "/static/app.js", nil, map[string]int{"anonymous": 401, "user1": 200, "user2": 200}, "/static/app.js"},
		{"GET", "/%73tatic/./app.js", nil, map[string]int{"anonymous": 200, "user1": 200, "user2": 200}, "/static/app.js"},
		{"GET", "/admin/", nil, map[string]int{"anonymous": 401, "user1": 403, "user2": 403}, ""},
		{"GET", "/static/../admin/x", nil, map[string]int{"anonymous": 401, "user1": 403, "user2": 403}, ""},
		{"GET", "/static/%2e%2e/admin/x", nil, map[string]int{"anonymous": 401, "user1": 403, "user2": 403}, ""},
		{"GET", "//admin//x", nil, map[string]int{"anonymous": 401, "user1": 403, "user2": 403}, ""},
		{"GET", "/admin;x/y", nil, map[string]int{"anonymous": 401, "user1": 403, "user2": 403}, ""},
		{"GET", "/static/..;/admin/", nil, map[string]int{"anonymous": 400, "user1": 400, "user2": 400}, ""},
		{"GET", "/static%2f..%2fadmin/", nil, map[string]int{"anonymous": 400, "user1": 400, "user2": 400}, ""},
		{"GET", `/static/..\admin/`, nil, map[string]int{"anonymous": 400, "user1": 400, "user2": 400}, ""},
		{"GET", "/static/x%23/../../admin/", nil, map[string]int{"anonymous": 400, "user1": 400, "user2": 400}, ""},
		{"GET", "/family/x", nil, map[string]int{"anonymous": 401, "user1": 403, "user2": 200}, "/family/x"},
		{"GET", "/reports/q1?x=1", nil, map[string]int{"anonymous": 401, "user1": 200, "user2": 403}, "/reports/q1?x=1"},
		{"HEAD", "/reports/q1", nil, map[string]int{"anonymous": 401, "user1": 200, "user2": 403}, "/reports/q1"},
		{"GET", "/admin/../reports/q1", nil, map[string]int{"anonymous": 401, "user1": 200, "user2": 403}, "/reports/q1"},
		{"POST", "/reports/q1", nil, map[string]int{"anonymous": 401, "user1": 200, "user2": 200}, "/reports/q1"},
		{"GET", "/team/x", map[string]string{"X-Team": "blue"}, map[string]int{"anonymous": 401, "user1": 200, "user2": 200}, "/team/x"},
		{"GET", "/team/x", map[string]string{"X-Team": "blue", "X-Forwarded-User": "root"}, map[string]int{"anonymous": 401, "user1": 200, "user2": 200}, "/team/x"},
		{"GET", "/team/x", map[string]string{"X-Team": "blue", "Connection": "X-Team"}, map[string]int{"anonymous": 401, "user1": 403, "user2": 403}, ""},
		{"GET", "/team/x", map[string]string{"X-Team": "red"}, map[string]int{"anonymous": 401, "user1": 403, "user2": 403}, ""},
	}
	for _, tt := range tests {
		for _, who := range []string{"anonymous", "user1", "user2"} {
			t.Run(tt.method+" "+tt.target+" "+who, func(t *testing.T) {
				header := map[string]string{"Accept": "application/json"}
				for k, v := range tt.header {
					header[k] = v
				}
				if cookies[who] != "" {
					header["Cookie"] = cookies[who]
				}
				before := g.upstream.count()
				resp, body := rawHTTP(t, "", addr, tt.method, tt.target, header)
				want := tt.want[who]
				if resp.StatusCode != want {
					t.Fatalf("status %d, want %d (%s)", resp.StatusCode, want, body)
				}
				if want != http.StatusOK {
					if g.upstream.count() != before {
						t.Errorf("the upstream received a refused request")
					}
					if want == http.StatusForbidden && tt.method != "HEAD" {
						var e struct{ Error string }
						if json.Unmarshal([]byte(body), &e) != nil || e.Error != "forbidden" || strings.Contains(body, "route") {
							t.Errorf("body %q, want JSON forbidden naming no route", body)
						}
					}
					return
				}
				seen := g.upstream.last()
				if g.upstream.count() != before+1 || seen.RequestURI != tt.upstream {
					t.Fatalf("upstream RequestURI = %q, want %q", seen.RequestURI, tt.upstream)
				}
				user := seen.Header.Get("X-Forwarded-User")
				public := strings.HasPrefix(tt.upstream, "/static/") && tt.method != "POST"
				if public && user != "" || !public && (user == "" || user == "root") {
					t.Errorf("upstream Header(%q) = %q (public %v)", "X-Forwarded-User", user, public)
				}
			})
		}
	}
	logs := g.logs.String()
	for _, want := range []string{`access denied by route`, `"route":"admin"`, `"route":"family"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s", want)
		}
	}
}

// TestRoutesE2EStartupErrors: a bad route stops authgate at start with a
// message naming the route and the column.
func TestRoutesE2EStartupErrors(t *testing.T) {
	env := validEnv()
	env["AUTHGATE_ROUTES"] = `[{name: admin, match: /admin/, allow: '"admins" in grups'}]`
	env["AUTHGATE_ALLOWED_GROUPS"] = "admins"
	setEnv(t, env)
	_, err := loadConfig()
	if err == nil {
		t.Fatal("loadConfig accepted a bad route")
	}
	for _, want := range []string{"AUTHGATE_ROUTES: route 0 (admin): allow: line 1, column 13: undeclared reference to 'grups'",
		"AUTHGATE_ROUTES and AUTHGATE_ALLOWED_GROUPS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
