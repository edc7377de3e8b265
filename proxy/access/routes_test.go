package access

import (
	"net/http"
	"reflect"
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

func TestRoutesLookupParameters(t *testing.T) {
	rs := mustRoutes(t, `
- match: "GET /static/"
  public: true
- name: admin
  match: "/admin/"
  allow: '"admins" in groups'
- name: all
  match: "/"
  allow: 'true'
`)
	tests := []struct {
		path, route, also string // labels; "" for nil
	}{
		{"/admin/x", "admin", ""},
		{"/admin;x/y", "all", "admin"},
		{"/admin;jsessionid=1/", "all", "admin"},
		{"/static;x/app.js", "all", "0"},
		{"/static/a;b", "0", ""},
		{"/x;y/z", "all", ""},
		{"/admin/a;b/c", "admin", ""},
		{"/admin%3Bx/y", "all", "admin"},
	}
	for _, tt := range tests {
		rt, also := rs.Lookup("GET", tt.path, false)
		label := func(r *Route) string {
			if r == nil {
				return ""
			}
			return r.Label
		}
		if label(rt) != tt.route || label(also) != tt.also {
			t.Errorf("Lookup(GET, %q) = %q, %q; want %q, %q", tt.path, label(rt), label(also), tt.route, tt.also)
		}
	}
	only := mustRoutes(t, "- match: /app/\n  allow: 'true'\n")
	if rt, _ := only.Lookup("GET", "/app;x/y", false); rt != nil {
		t.Errorf("Lookup(/app;x/y) = %s, want nil: the stripped path /app/y matches, the literal one does not", rt.Label)
	}
	for in, want := range map[string]string{"/a;x/b;y/": "/a/b/", "/a;x": "/a", "/a/b": "/a/b", "/a;x=1;y=2/b": "/a/b"} {
		if got := stripParams(in); got != want {
			t.Errorf("stripParams(%q) = %q, want %q", in, got, want)
		}
	}
}

// fuzzRoutes are the routes of FuzzRoutesMatch, from the most permissive
// (public) to the least (admins only); no match is less permissive still.
const fuzzRoutes = `
- match: "GET /static/"
  public: true
- match: "/healthz"
  public: true
- name: admin
  match: "/admin/"
  allow: '"admins" in groups'
- name: all
  match: "/"
  allow: 'true'
`

// permissiveness ranks a lookup: 0 public, 1 any signed-in user, 2 admins
// only, 3 refused. A lookup with two routes ranks as the stricter.
func permissiveness(rt, also *Route) int {
	rank := func(r *Route) int {
		switch {
		case r == nil:
			return 3
		case r.Public():
			return 0
		case r.Label == "admin":
			return 2
		}
		return 1
	}
	if also == nil {
		return rank(rt)
	}
	return max(rank(rt), rank(also))
}

// FuzzRoutesMatch: a random path never matches a more permissive route
// than its normalised form does (a path that is not canonical matches
// nothing), and the normalised form never matches a more permissive route
// than the path an upstream that strips ";parameters" would read.
func FuzzRoutesMatch(f *testing.F) {
	for _, tc := range pathCases {
		f.Add(tc.in)
	}
	for _, tc := range publicTrickCases {
		f.Add(tc.path)
	}
	rs := mustRoutes(f, fuzzRoutes)
	f.Fuzz(func(t *testing.T, in string) {
		for _, m := range []string{"GET", "HEAD", "POST"} {
			raw := permissiveness(rs.Lookup(m, in, false))
			norm, err := NormalizePath(in)
			if err != nil {
				if raw != 3 {
					t.Fatalf("Lookup(%q, %q) = rank %d for a path NormalizePath refuses (%v)", m, in, raw, err)
				}
				continue
			}
			canon := permissiveness(rs.Lookup(m, norm, false))
			if raw < canon {
				t.Fatalf("Lookup(%q, %q) = rank %d, more permissive than its normalised form %q (rank %d)", m, in, raw, norm, canon)
			}
			for _, reading := range []string{norm, stripParams(norm), stripParams(strings.ReplaceAll(norm, "%3B", ";"))} {
				if r := permissiveness(rs.match(m, reading, false), nil); canon < r {
					t.Fatalf("Lookup(%q, %q) = rank %d, more permissive than the route of its reading %q (rank %d)", m, norm, canon, reading, r)
				}
			}
		}
	})
}

// BenchmarkRouteAllowRequest: groups, email and request.method, as the
// handler benchmark's route 17.
func BenchmarkRouteAllowRequest(b *testing.B) {
	rs := mustRoutes(b, "- match: /api/\n  allow: '\"staff\" in groups && email.endsWith(\"@example.com\") && request.method in [\"GET\", \"HEAD\"]'\n")
	rt := rs.Match("GET", "/api/items", false)
	in := &Input{Subject: "u", Email: "a@example.com", Groups: []string{"x", "staff"}, GroupsKnown: true, Method: "GET", Path: "/api/items"}
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := rt.Allow(in); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func TestParseClaimsCache(t *testing.T) {
	a := parseClaims(`{"tenant":"acme"}`)
	b := parseClaims(`{"tenant":"acme"}`)
	if a["tenant"] != "acme" || len(a) != 1 {
		t.Fatalf("parseClaims() = %v", a)
	}
	if reflectPointer(a) != reflectPointer(b) {
		t.Errorf("the same claims were decoded twice")
	}
	for _, bad := range []string{"", "[1]", "null", "{"} {
		if m := parseClaims(bad); len(m) != 0 {
			t.Errorf("parseClaims(%q) = %v, want empty", bad, m)
		}
	}
	for i := range maxCachedClaims + 10 {
		parseClaims(`{"n":` + strings.Repeat("1", 1+i%5) + `,"i":"` + strings.Repeat("x", i) + `"}`)
	}
	claimsCache.mu.RLock()
	n := len(claimsCache.m)
	claimsCache.mu.RUnlock()
	if n > maxCachedClaims {
		t.Errorf("claims cache holds %d entries, want at most %d", n, maxCachedClaims)
	}
}

func reflectPointer(m map[string]any) uintptr { return reflect.ValueOf(m).Pointer() }

// TestLegacyEquivalence: the README's translation of AUTHGATE_ALLOWED_*
// into a catch-all route decides as the Policy does, for well-formed
// addresses.
func TestLegacyEquivalence(t *testing.T) {
	policy, err := NewPolicy([]string{"Boss@corp.example"}, []string{"example.com"}, []string{"admins", "ops"})
	if err != nil {
		t.Fatal(err)
	}
	rs := mustRoutes(t, `
- match: "GET /static/"
  public: true
- match: "/healthz"
  public: true
- match: "/"
  allow: '"admins" in groups || "ops" in groups || email.lowerAscii().endsWith("@example.com") || email.lowerAscii() == "boss@corp.example"'
`)
	public, err := ParsePublicPaths([]string{"GET /static/", "/healthz"})
	if err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	subjects := []Input{
		{}, {Email: "a@example.com"}, {Email: "A@EXAMPLE.COM"}, {Email: "a@example.com", EmailVerified: &no},
		{Email: "a@example.com", EmailVerified: &yes}, {Email: "a@sub.example.com"}, {Email: "a@example.com.evil.test"},
		{Email: "boss@corp.example"}, {Email: "BOSS@corp.example"}, {Email: "other@corp.example"},
		{Groups: []string{"ops"}, GroupsKnown: true}, {Groups: []string{"Ops", "dev"}, GroupsKnown: true},
		{Groups: []string{}, GroupsKnown: true}, {Email: "x@evil.test", Groups: []string{"admins"}, GroupsKnown: true},
	}
	for _, in := range subjects {
		for _, p := range []string{"/app", "/static/x", "/healthz", "/healthz/x"} {
			for _, m := range []string{"GET", "POST"} {
				wantPublic := public.Match(m, p)
				wantAllow, _ := policy.Allow(Subject{Email: in.Email, EmailVerified: in.EmailVerified, Groups: in.Groups, GroupsKnown: in.GroupsKnown})
				rt := rs.Match(m, p, false)
				if rt.Public() != wantPublic {
					t.Errorf("%s %s: route public = %v, public paths say %v", m, p, rt.Public(), wantPublic)
					continue
				}
				if wantPublic {
					continue
				}
				in := in
				got, _ := rt.Allow(&in)
				if got != wantAllow {
					t.Errorf("%s %s %+v: route allows = %v, policy says %v", m, p, in, got, wantAllow)
				}
			}
		}
	}
}
