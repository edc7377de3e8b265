package access

import (
	"net/http"
	"strings"
	"testing"
)

// issueRoutes is the example of issue 14, which the README repeats, with a
// public route in front.
const issueRoutes = `
- match: "GET /status"
  public: true
- name: admin
  match: "/admin/"
  allow: '"admins" in groups'
- match: "GET /reports/"
  allow: 'email.endsWith("@example.com") || "auditors" in groups'
- match: "/"
  allow: 'true'
`

func mustRoutes(t testing.TB, src string) *Routes {
	t.Helper()
	specs, err := ParseRouteSpecs([]byte(src))
	if err != nil {
		t.Fatalf("ParseRouteSpecs() error = %v", err)
	}
	rs, err := CompileRoutes(specs)
	if err != nil {
		t.Fatalf("CompileRoutes() error = %v", err)
	}
	return rs
}

func TestRoutesMatchFirstWins(t *testing.T) {
	rs := mustRoutes(t, issueRoutes)
	tests := []struct {
		method, path string
		want         string // Label, "" for no match
	}{
		{"GET", "/status", "0"},
		{"HEAD", "/status", "0"},
		{"POST", "/status", "3"},
		{"GET", "/status/", "3"},
		{"GET", "/admin/", "admin"},
		{"DELETE", "/admin/users/1", "admin"},
		{"GET", "/admin", "3"},
		{"GET", "/reports/q1", "2"},
		{"POST", "/reports/q1", "3"},
		{"GET", "/", "3"},
		{"GET", "/ADMIN/", "3"},
		{"GET", "/admin/../x", ""},   // not normalised: fails closed
		{"GET", "//admin/", ""},      // not normalised
		{"get", "/admin/", ""},       // malformed method
		{"GET", "/admin%2Fx", ""},    // refused by NormalizePath
		{"GET", "/admin/%41", ""},    // NormalizePath would decode %41
		{"GET", "/reports/%3A", "2"}, // kept escape
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			got := ""
			if rt := rs.Match(tt.method, tt.path, false); rt != nil {
				got = rt.Label
			}
			if got != tt.want {
				t.Errorf("Match(%q, %q) = route %q, want %q", tt.method, tt.path, got, tt.want)
			}
		})
	}
	if rt := rs.Match("GET", "/status", true); rt == nil || rt.Label != "3" {
		t.Errorf("Match(GET, /status, skipPublic) = %v, want route 3", rt)
	}
}

func TestRoutesDecodedSegments(t *testing.T) {
	rs := mustRoutes(t, `
- match: "/a%3Ab/"
  allow: 'true'
`)
	for _, p := range []string{"/a:b/", "/a%3Ab/x"} {
		if rs.Match("GET", p, false) == nil {
			t.Errorf("Match(GET, %q) = nil, want the route (ServeMux compares decoded segments)", p)
		}
	}
}

// TestRoutesTrickPaths: no trick path from the public-path tests reaches
// the public route or escapes the admin route once normalised.
func TestRoutesTrickPaths(t *testing.T) {
	rs := mustRoutes(t, `
- match: "GET /static/"
  public: true
- match: "/public/"
  public: true
- match: "/healthz"
  public: true
- match: "/admin/"
  allow: '"admins" in groups'
- match: "/"
  allow: 'true'
`)
	for _, tc := range publicTrickCases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NormalizePath(tc.path)
			if err != nil {
				return // refused with 400
			}
			for _, m := range []string{"GET", "HEAD", "POST"} {
				if rt := rs.Match(m, p, false); rt.Public() {
					t.Errorf("Match(%q, NormalizePath(%q) = %q) = public route %s", m, tc.path, p, rt.Label)
				}
				if rt := rs.Match(m, tc.path, false); rt != nil && tc.path != p {
					t.Errorf("Match(%q, raw %q) = route %s, want nil (not normalised)", m, tc.path, rt.Label)
				}
			}
		})
	}
}

func TestRoutesAllow(t *testing.T) {
	rs := mustRoutes(t, `
- name: admin
  match: "/admin/"
  allow: '"admins" in groups'
- name: reports
  match: "GET /reports/"
  allow: 'email.endsWith("@example.com") || "auditors" in groups'
- name: has-email
  match: "/has-email"
  allow: 'has(claims.email) && claims.email_verified == true'
- name: tenant
  match: "/tenant/"
  allow: 'request.path.startsWith("/tenant/" + claims.tenant + "/")'
- name: header
  match: "/hdr"
  allow: 'request.headers["x-team"] == "blue" && !("authorization" in request.headers)'
- name: method
  match: "/m"
  allow: 'request.method == "GET" && request.host == "app.test"'
- name: sub
  match: "/sub"
  allow: 'sub == "alice"'
- name: nested
  match: "/nested"
  allow: '"ops" in claims.realm_access.roles'
`)
	yes, no := true, false
	visible := func(_ http.Header, name string) bool { return !strings.EqualFold(name, "Authorization") }
	tests := []struct {
		name  string
		path  string
		in    Input
		want  bool
		isErr bool
	}{
		{name: "admin in group", path: "/admin/", in: Input{Groups: []string{"users", "admins"}, GroupsKnown: true}, want: true},
		{name: "admin not in group", path: "/admin/", in: Input{Groups: []string{"users"}, GroupsKnown: true}},
		{name: "admin groups absent", path: "/admin/", in: Input{Subject: "alice"}, isErr: true},
		{name: "admin group case", path: "/admin/", in: Input{Groups: []string{"Admins"}, GroupsKnown: true}},
		{name: "reports email", path: "/reports/x", in: Input{Email: "a@example.com"}, want: true},
		{name: "reports email unverified", path: "/reports/x", in: Input{Email: "a@example.com", EmailVerified: &no}, isErr: true},
		{name: "reports email verified", path: "/reports/x", in: Input{Email: "a@example.com", EmailVerified: &yes}, want: true},
		{name: "reports lookalike", path: "/reports/x", in: Input{Email: "a@example.com.evil.com", GroupsKnown: true}},
		{name: "reports auditor without email", path: "/reports/x", in: Input{Groups: []string{"auditors"}, GroupsKnown: true}, want: true},
		{name: "reports nothing known", path: "/reports/x", in: Input{Subject: "x"}, isErr: true},
		{name: "has email", path: "/has-email", in: Input{Claims: `{"email":"a@b.c","email_verified":true}`}, want: true},
		{name: "has email absent", path: "/has-email", in: Input{Claims: `{"sub":"x"}`}},
		{name: "has email no claims", path: "/has-email", in: Input{}},
		{name: "tenant match", path: "/tenant/acme/x", in: Input{Claims: `{"tenant":"acme"}`}, want: true},
		{name: "tenant other", path: "/tenant/other/x", in: Input{Claims: `{"tenant":"acme"}`}},
		{name: "tenant claim missing", path: "/tenant/acme/x", in: Input{Claims: `{}`}, isErr: true},
		{name: "tenant claim not string", path: "/tenant/acme/x", in: Input{Claims: `{"tenant":1}`}, isErr: true},
		{name: "header", path: "/hdr", in: Input{Header: http.Header{"X-Team": {"blue"}}, HeaderVisible: visible}, want: true},
		{name: "header other", path: "/hdr", in: Input{Header: http.Header{"X-Team": {"red"}}, HeaderVisible: visible}},
		{name: "header stripped", path: "/hdr", in: Input{Header: http.Header{"X-Team": {"blue"}}}, isErr: true},
		{name: "header invisible stays invisible", path: "/hdr", in: Input{Header: http.Header{"X-Team": {"blue"}, "Authorization": {"Bearer x"}}, HeaderVisible: visible}, want: true},
		{name: "header joined", path: "/hdr", in: Input{Header: http.Header{"X-Team": {"blue", "red"}}, HeaderVisible: visible}},
		{name: "method and host", path: "/m", in: Input{Method: "GET", Host: "app.test"}, want: true},
		{name: "method other", path: "/m", in: Input{Method: "POST", Host: "app.test"}},
		{name: "sub", path: "/sub", in: Input{Subject: "alice"}, want: true},
		{name: "sub absent", path: "/sub", in: Input{}, isErr: true},
		{name: "nested claim", path: "/nested", in: Input{Claims: `{"realm_access":{"roles":["ops"]}}`}, want: true},
		{name: "nested claim missing", path: "/nested", in: Input{Claims: `{"realm_access":{}}`}, isErr: true},
		{name: "malformed claims", path: "/nested", in: Input{Claims: `[1,2]`}, isErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := rs.Match("GET", tt.path, false)
			if rt == nil {
				t.Fatalf("Match(GET, %q) = nil", tt.path)
			}
			in := tt.in
			if in.Method == "" {
				in.Method = "GET"
			}
			in.Path = tt.path
			got, err := rt.Allow(&in)
			if got != tt.want || (err != nil) != tt.isErr {
				t.Errorf("route %s Allow(%+v) = %v, %v; want %v, error %v", rt.Label, tt.in, got, err, tt.want, tt.isErr)
			}
			if err != nil && got {
				t.Errorf("Allow returned true with an error")
			}
		})
	}
}

func TestCompileRoutesErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{name: "unknown variable", src: "- match: /\n  allow: '\"a\" in grops'\n", want: []string{"route 0", "column 8", "grops"}},
		{name: "named route, second line", src: "- match: /a\n  public: true\n- name: adm\n  match: /admin/\n  allow: 'request.pth == \"/\"'\n",
			want: []string{"route 1 (adm)", "column 8", "pth"}},
		{name: "not bool", src: "- match: /\n  allow: 'email'\n", want: []string{"route 0", "want bool"}},
		{name: "syntax", src: "- match: /\n  allow: 'email ==='\n", want: []string{"route 0", "column"}},
		{name: "both", src: "- match: /\n  public: true\n  allow: 'true'\n", want: []string{"route 0", "both public and allow"}},
		{name: "neither", src: "- match: /x\n", want: []string{"route 0", "public: true or an allow"}},
		{name: "no match", src: "- allow: 'true'\n", want: []string{"route 0", "match is required"}},
		{name: "bad match", src: "- match: /a/../b\n  allow: 'true'\n", want: []string{"route 0", "not canonical"}},
		{name: "wildcard", src: "- match: /{id}\n  allow: 'true'\n", want: []string{"wildcards"}},
		{name: "lower-case method", src: "- match: get /\n  allow: 'true'\n", want: []string{"upper-case"}},
		{name: "duplicate name", src: "- name: a\n  match: /x\n  public: true\n- name: a\n  match: /y\n  public: true\n", want: []string{"route 1 (a)", "also route 0"}},
		{name: "bad name", src: "- name: 'a b'\n  match: /x\n  public: true\n", want: []string{"name \"a b\""}},
		{name: "numeric name", src: "- name: '3'\n  match: /x\n  public: true\n", want: []string{"route index"}},
		{name: "every problem", src: "- match: /x\n- match: /y\n  allow: 'nope'\n", want: []string{"route 0", "route 1", "nope"}},
		{name: "empty expression", src: "- match: /\n  allow: ' '\n", want: []string{"empty expression"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			specs, err := ParseRouteSpecs([]byte(tt.src))
			if err == nil {
				_, err = CompileRoutes(specs)
			}
			if err == nil {
				t.Fatalf("CompileRoutes(%q) error = nil", tt.src)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("CompileRoutes(%q) error = %q, want it to contain %q", tt.src, err, w)
				}
			}
		})
	}
}

func TestParseRouteSpecs(t *testing.T) {
	for _, src := range []string{"", "[]", "- mach: /\n  allow: 'true'\n", "{match: /}", "- match: /\n  allow: [1]\n"} {
		if _, err := ParseRouteSpecs([]byte(src)); err == nil {
			t.Errorf("ParseRouteSpecs(%q) error = nil, want one", src)
		}
	}
	// The one-line flow form for AUTHGATE_ROUTES in Compose.
	specs, err := ParseRouteSpecs([]byte(`[{match: "/admin/", allow: '"admins" in groups'}, {match: "/", allow: "true"}]`))
	if err != nil || len(specs) != 2 || specs[0].Match != "/admin/" || *specs[1].Allow != "true" {
		t.Fatalf("ParseRouteSpecs(flow) = %+v, %v", specs, err)
	}
}

func TestRoutesUsesClaims(t *testing.T) {
	if mustRoutes(t, issueRoutes).UsesClaims() {
		t.Errorf("UsesClaims() = true for routes that never read claims")
	}
	if !mustRoutes(t, "- match: /\n  allow: 'has(claims.x)'\n").UsesClaims() {
		t.Errorf("UsesClaims() = false for has(claims.x)")
	}
	var nilRoutes *Routes
	if nilRoutes.UsesClaims() || nilRoutes.Match("GET", "/", false) != nil || nilRoutes.Len() != 0 {
		t.Errorf("nil *Routes is not empty")
	}
}

func TestReferencesHeaders(t *testing.T) {
	for src, want := range map[string]bool{
		`request.method == "GET"`:              false,
		`request.path.startsWith("/") && true`: false,
		`"x" in request.headers`:               true,
		`request.headers["x"] == "y"`:          true,
		`has(request.headers.x)`:               true,
		`request == request`:                   true,
	} {
		rs := mustRoutes(t, "- match: /\n  allow: '"+strings.ReplaceAll(src, "'", "''")+"'\n")
		if got := rs.routes[0].usesHeaders; got != want {
			t.Errorf("usesHeaders(%s) = %v, want %v", src, got, want)
		}
	}
}

// BenchmarkRouteAllow measures one evaluation without claims or headers,
// which should cost only CEL's own allocations.
func BenchmarkRouteAllow(b *testing.B) {
	rs := mustRoutes(b, issueRoutes)
	rt := rs.Match("GET", "/reports/q1", false)
	in := &Input{Subject: "u", Email: "a@example.com", Groups: []string{"x", "auditors"}, GroupsKnown: true, Method: "GET", Path: "/reports/q1"}
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := rt.Allow(in); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func TestRouteNameNoneReserved(t *testing.T) {
	specs, _ := ParseRouteSpecs([]byte("- name: none\n  match: /\n  public: true\n"))
	if _, err := CompileRoutes(specs); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Errorf("CompileRoutes(name none) error = %v, want reserved", err)
	}
}
