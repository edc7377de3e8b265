package access

import (
	"net/url"
	"strings"
	"testing"
)

var testPublicPatterns = []string{"GET /static/", "/healthz", "/public/", "POST /webhook", "GET /a%3Ab"}

// publicTrickCases are request paths built to slip a protected target past
// a public rule. Each must be refused by NormalizePath or normalised to a
// path that Match does not make public.
var publicTrickCases = []struct {
	name, path string
}{
	{"dot dot", "/static/../admin"},
	{"encoded dot dot", "/static/%2e%2e/admin"},
	{"encoded dot dot upper", "/static/%2E%2E/admin"},
	{"half-encoded dot dot", "/static/.%2e/admin"},
	{"half-encoded dot dot upper", "/static/%2E./admin"},
	{"dot dot encoded slash", "/static/..%2fadmin"},
	{"encoded slashes around dot dot", "/static%2f..%2fadmin"},
	{"double slash before public prefix", "//static/../admin"},
	{"double slash inside", "/static//../admin"},
	{"dot dot backslash", `/static/..\admin`},
	{"dot dot encoded backslash", "/static/..%5cadmin"},
	{"encoded backslashes", "/static/%5c..%5cadmin"},
	{"double-encoded backslash", "/static/..%255cadmin"},
	{"semicolon before dot dot", "/static;/../admin"},
	{"dot dot semicolon", "/static/..;/admin"},
	{"dot dot semicolon parameter", "/public/..;jsessionid=1/admin"},
	{"dot semicolon", "/static/.;/../admin"},
	{"dot dot encoded semicolon", "/public/..%3b/admin"},
	{"encoded dot dot encoded semicolon", "/public/%2e%2e%3B/admin"},
	{"upper case prefix", "/STATIC/"},
	{"upper case prefix with file", "/STATIC/app.js"},
	{"NUL after prefix", "/static%00/"},
	{"NUL after dot dot", "/static/..%00/admin"},
	{"raw NUL", "/static/\x00/../admin"},
	{"dot dot space", "/static/..%20/admin"},
	{"three dots", "/static/.../admin"},
	{"exact with trailing slash", "/healthz/"},
	{"exact with child", "/healthz/admin"},
	{"exact with suffix", "/healthzz"},
	{"query in path", "/healthz?x=/static/"},
	{"encoded hash", "/healthz%23/x"},
	{"raw hash", "/static/#/../admin"},
	{"encoded question mark", "/static%3f/../admin"},
	{"double-encoded dot dot", "/static/%252e%252e/admin"},
	{"double-encoded dot dot slash", "/static/%252e%252e%252fadmin"},
	{"overlong dots", "/static/%c0%ae%c0%ae/admin"},
	{"fullwidth solidus", "/static/%ef%bc%8f..%ef%bc%8fadmin"},
	{"two dot leader", "/static/%e2%80%a5/admin"},
	{"raw two dot leader", "/static/\u2025/admin"},
	{"IIS unicode dots", "/static/%u002e%u002e/admin"},
	{"dot dot above root", "/static/../../admin"},
	{"dot then dot dot", "/static/./../admin"},
	{"nested dot dot", "/static/a/../../admin"},
	{"tab before dot dot", "/static/\t../admin"},
	{"public without slash", "/public"},
	{"static without slash", "/static"},
	{"webhook via GET", "/webhook"},
	{"encoded colon decoded differently", "/a:b/../admin"},
}

func TestPublicPathTricks(t *testing.T) {
	pub, err := ParsePublicPaths(testPublicPatterns)
	if err != nil {
		t.Fatalf("ParsePublicPaths() error = %v", err)
	}
	for _, tc := range publicTrickCases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NormalizePath(tc.path)
			if err != nil {
				return // refused with 400: fine
			}
			for _, m := range []string{"GET", "HEAD"} {
				if pub.Match(m, p) {
					t.Errorf("Match(%q, NormalizePath(%q) = %q) = true, want false", m, tc.path, p)
				}
			}
		})
	}
}

func TestPublicPathsMatch(t *testing.T) {
	pub, err := ParsePublicPaths(testPublicPatterns)
	if err != nil {
		t.Fatalf("ParsePublicPaths() error = %v", err)
	}
	cases := []struct {
		name, method, path string
		want               bool
	}{
		{"subtree root", "GET", "/static/", true},
		{"subtree file", "GET", "/static/app.js", true},
		{"subtree deep", "GET", "/static/a/b/c.css", true},
		{"GET pattern admits HEAD", "HEAD", "/static/app.js", true},
		{"GET pattern refuses POST", "POST", "/static/app.js", false},
		{"GET pattern refuses lower-case get", "get", "/static/app.js", false},
		{"empty method", "", "/static/app.js", false},
		{"subtree without slash is a redirect, not public", "GET", "/static", false},
		{"exact", "GET", "/healthz", true},
		{"exact any method", "DELETE", "/healthz", true},
		{"exact refuses trailing slash", "GET", "/healthz/", false},
		{"exact refuses child", "GET", "/healthz/x", false},
		{"methodless subtree", "PUT", "/public/x", true},
		{"POST pattern", "POST", "/webhook", true},
		{"POST pattern refuses GET", "GET", "/webhook", false},
		{"encoded pattern", "GET", "/a%3Ab", true},
		// ServeMux compares decoded segments: "/a:b" is the same route.
		{"encoded pattern admits decoded form", "GET", "/a:b", true},
		{"encoded pattern refuses other name", "GET", "/a:c", false},
		{"protected", "GET", "/admin", false},
		{"root", "GET", "/", false},
		{"non-canonical path refused", "GET", "/static/../admin", false},
		{"non-canonical double slash refused", "GET", "//static/x", false},
		{"non-canonical lower-case escape refused", "GET", "/static/a%3ab", false},
		{"undecoded unreserved refused", "GET", "/%73tatic/x", false},
		{"invalid path refused", "GET", "/static/%2f", false},
		{"empty path refused", "GET", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := pub.Match(tc.method, tc.path); got != tc.want {
				t.Errorf("Match(%q, %q) = %v, want %v", tc.method, tc.path, got, tc.want)
			}
		})
	}
}

// TestPublicPathsNormalizedDecode shows that a legitimately encoded request
// is public only through its canonical form, the form that is forwarded.
func TestPublicPathsNormalizedDecode(t *testing.T) {
	pub, err := ParsePublicPaths(testPublicPatterns)
	if err != nil {
		t.Fatalf("ParsePublicPaths() error = %v", err)
	}
	p, err := NormalizePath("/%73tatic/./x")
	if err != nil || p != "/static/x" {
		t.Fatalf("NormalizePath(%q) = %q, %v, want %q, nil", "/%73tatic/./x", p, err, "/static/x")
	}
	if !pub.Match("GET", p) {
		t.Errorf("Match(GET, %q) = false, want true", p)
	}
}

func TestPublicPathsZero(t *testing.T) {
	empty, err := ParsePublicPaths(nil)
	if err != nil {
		t.Fatalf("ParsePublicPaths(nil) error = %v", err)
	}
	for name, p := range map[string]*PublicPaths{"nil": nil, "zero": {}, "empty": empty} {
		t.Run(name, func(t *testing.T) {
			for _, path := range []string{"/", "/static/", "/healthz"} {
				if p.Match("GET", path) {
					t.Errorf("Match(GET, %q) = true, want false", path)
				}
			}
		})
	}
}

func TestParsePublicPathsErrors(t *testing.T) {
	cases := []struct {
		name, entry, wantErr string
	}{
		{"empty", "", "want [METHOD ]/path"},
		{"blank", "   ", "want [METHOD ]/path"},
		{"three fields", "GET /a /b", "want [METHOD ]/path"},
		{"host pattern", "example.com/", "host patterns are not supported"},
		{"method and host pattern", "GET example.com/static/", "host patterns are not supported"},
		{"wildcard", "/users/{id}", "wildcards are not supported"},
		{"end anchor", "/{$}", "wildcards are not supported"},
		{"rest wildcard", "/files/{path...}", "wildcards are not supported"},
		{"lower-case method", "get /static/", "not an upper-case HTTP method"},
		{"method with digits", "G3T /static/", "not an upper-case HTTP method"},
		{"whole site", "/", `pattern "/" would make every path public`},
		{"whole site for GET", "GET /", `pattern "/" would make every path public`},
		{"dot dot", "/static/../admin", "not canonical"},
		{"double slash", "/a//b", "not canonical"},
		{"undecoded unreserved", "/%73tatic/", "not canonical"},
		{"lower-case escape", "/a%3ab", "not canonical"},
		{"encoded slash", "/a%2fb/", "ambiguous request path"},
		{"backslash", `/a\b/`, "ambiguous request path"},
		{"path without slash", "static/", "host patterns are not supported"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePublicPaths([]string{tc.entry})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParsePublicPaths([%q]) error = %v, want one containing %q", tc.entry, err, tc.wantErr)
			}
		})
	}
	if _, err := ParsePublicPaths([]string{"/a/", "/a/"}); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("ParsePublicPaths(duplicate) error = %v, want one containing %q", err, "duplicate")
	}
}

func TestPublicPathsPatterns(t *testing.T) {
	pub, err := ParsePublicPaths([]string{"GET   /static/", " /healthz "})
	if err != nil {
		t.Fatalf("ParsePublicPaths() error = %v", err)
	}
	got := strings.Join(pub.Patterns(), ",")
	if want := "GET /static/,/healthz"; got != want {
		t.Errorf("Patterns() = %q, want %q", got, want)
	}
	if (*PublicPaths)(nil).Patterns() != nil {
		t.Errorf("nil Patterns() = non-nil, want nil")
	}
}

func BenchmarkPublicPathsMatch(b *testing.B) {
	pub, err := ParsePublicPaths(testPublicPatterns)
	if err != nil {
		b.Fatalf("ParsePublicPaths() error = %v", err)
	}
	for b.Loop() {
		p, err := NormalizePath("/static/js/%41pp.js")
		if err != nil || !pub.Match("GET", p) {
			b.Fatalf("Match(GET, %q) = false, want true (err %v)", p, err)
		}
	}
}

// TestPublicPathsPrefilter: Match, which refuses paths no pattern's path
// equals or contains before asking the mux, answers as the mux alone does
// for every method and path here, encoded segments included.
func TestPublicPathsPrefilter(t *testing.T) {
	patterns := append([]string{"/a%3Ab", "/caf%C3%A9/", "DELETE /x/y"}, testPublicPatterns...)
	pub, err := ParsePublicPaths(patterns)
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{"/", "/static", "/static/", "/static/app.js", "/stat", "/staticx", "/healthz", "/healthz/",
		"/healthz/x", "/healthzz", "/a:b", "/a%3Ab", "/a%3ab", "/a:b/", "/caf%C3%A9/", "/café/menu", "/caf%C3%A9/menu",
		"/caf%C3%A9", "/x/y", "/x/y/", "/x", "/hooks/github", "/hooks/github/", "/favicon.ico", "/favicon.icox",
		"/%73tatic/app.js", "", "static/", "/static/../admin"}
	for _, pat := range testPublicPatterns {
		fields := strings.Fields(pat)
		paths = append(paths, fields[len(fields)-1], fields[len(fields)-1]+"x", fields[len(fields)-1]+"/x")
	}
	prefiltered := 0
	for _, m := range []string{"GET", "HEAD", "POST", "DELETE", "PUT", "get", ""} {
		for _, path := range paths {
			ref := false
			if canon, err := NormalizePath(path); err == nil && canon == path && validMethod(m) {
				if decoded, err := url.PathUnescape(path); err == nil {
					ref = pub.muxMatch(m, path, decoded)
					if !pub.mayMatch(decoded) {
						prefiltered++
					}
				}
			}
			if got := pub.Match(m, path); got != ref {
				t.Errorf("Match(%q, %q) = %v, the mux alone says %v", m, path, got, ref)
			}
		}
	}
	if prefiltered == 0 {
		t.Error("no path was refused before the mux: the test shows nothing")
	}
}
