package access

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// pathCases are NormalizePath inputs; want "" means an error is expected.
var pathCases = []struct {
	name, in, want string
}{
	// Canonical forms.
	{"empty means root", "", "/"},
	{"root", "/", "/"},
	{"plain", "/a/b", "/a/b"},
	{"trailing slash kept", "/a/b/", "/a/b/"},
	{"double slash collapsed", "/a//b", "/a/b"},
	{"leading double slash collapsed", "//a", "/a"},
	{"many slashes collapsed", "///a////b///", "/a/b/"},
	{"only slashes", "////", "/"},
	{"dot removed", "/a/./b", "/a/b"},
	{"dot dot resolved", "/a/b/../c", "/a/c"},
	{"final dot leaves slash", "/a/b/.", "/a/b/"},
	{"final dot dot leaves slash", "/a/b/..", "/a/"},
	{"dot dot to root", "/a/..", "/"},
	{"dot at root", "/.", "/"},
	{"encoded unreserved decoded", "/%41%62%2D%2e%5F%7e", "/Ab-._~"},
	{"encoded reserved kept upper-case", "/a%3ab%40c%2bd", "/a%3Ab%40c%2Bd"},
	{"encoded semicolon kept", "/a%3bb", "/a%3Bb"},
	{"encoded UTF-8 upper-cased", "/caf%c3%a9", "/caf%C3%A9"},
	{"forbidden ASCII encoded", "/a{b}|c^d`e\"<>", "/a%7Bb%7D%7Cc%5Ed%60e%22%3C%3E"},
	{"literal percent", "/100%25", "/100%25"},
	{"literal percent before non-hex", "/100%25off", "/100%25off"},
	{"semicolon kept literally", "/a;b=c/d", "/a;b=c/d"},
	{"sub-delims kept", "/!$&'()*+,;=:@", "/!$&'()*+,;=:@"},
	{"encoded space kept mid-segment", "/my%20file", "/my%20file"},
	{"three dots inside a name", "/a...b", "/a...b"},
	{"dot-prefixed name", "/.well-known/x", "/.well-known/x"},
	{"dot dot prefixed name", "/..a/b", "/..a/b"},

	// Refused.
	{"not absolute", "a/b", ""},
	{"asterisk form", "*", ""},
	{"dot dot above root", "/..", ""},
	{"dot dot above root later", "/a/../..", ""},
	{"encoded dot dot above root", "/%2e%2e/x", ""},
	{"encoded slash", "/a%2fb", ""},
	{"encoded slash upper", "/a%2Fb", ""},
	{"encoded backslash", "/a%5cb", ""},
	{"raw backslash", `/a\b`, ""},
	{"encoded hash", "/a%23b", ""},
	{"encoded question mark", "/a%3fb", ""},
	{"raw hash", "/a#b", ""},
	{"raw question mark", "/a?b", ""},
	{"raw NUL", "/a\x00", ""},
	{"encoded NUL", "/a%00", ""},
	{"encoded tab", "/a%09", ""},
	{"encoded DEL", "/a%7f", ""},
	{"raw tab", "/a\tb", ""},
	{"raw space", "/a b", ""},
	{"raw non-ASCII", "/café", ""},
	{"lone percent", "/a%", ""},
	{"short escape", "/a%2", ""},
	{"non-hex escape", "/a%zz", ""},
	{"IIS unicode escape", "/%u002e%u002e/x", ""},
	{"double encoding", "/a%252e", ""},
	{"double encoding completed by decoded escapes", "/a%252%65", ""},
	{"double encoding of NUL completed by decoding", "/%250%30", ""},
	{"double encoding with escaped hex letters", "/a%25%32%46", ""},
	{"escaped percent before a non-hex escape", "/a%25%7A", "/a%25z"},
	{"invalid UTF-8", "/a%ff", ""},
	{"overlong slash", "/a%c0%afb", ""},
	{"encoded C1 control", "/a%c2%85", ""},
	{"encoded zero-width space", "/a%e2%80%8bb", ""},
	{"encoded NBSP", "/a%c2%a0", ""},
	{"encoded fullwidth solidus", "/a%ef%bc%8fb", ""},
	{"three dots", "/a/.../b", ""},
	{"dot space", "/a/.%20/b", ""},
	{"dot dot semicolon", "/a/..;/b", ""},
	{"lone semicolon segment", "/a/;/b", ""},
	{"too long", "/" + strings.Repeat("a", maxPathLen), ""},
	{"too long once encoded", "/" + strings.Repeat("{", maxPathLen/3+1), ""},
}

func TestNormalizePath(t *testing.T) {
	for _, tc := range pathCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NormalizePath(tc.in)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("NormalizePath(%q) = %q, want an error", tc.in, got)
				}
				if !errors.Is(err, ErrAmbiguousPath) {
					t.Fatalf("NormalizePath(%q) error = %v, want one wrapping ErrAmbiguousPath", tc.in, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("NormalizePath(%q) = %q, %v, want %q, nil", tc.in, got, err, tc.want)
			}
			if again, err := NormalizePath(got); err != nil || again != got {
				t.Fatalf("NormalizePath(%q) = %q, %v, want it unchanged", got, again, err)
			}
		})
	}
}

// checkCanonicalPath fails unless p has the properties NormalizePath
// promises for its output.
func checkCanonicalPath(t *testing.T, in, p string) {
	t.Helper()
	if !strings.HasPrefix(p, "/") {
		t.Fatalf("NormalizePath(%q) = %q, want a leading slash", in, p)
	}
	lower := strings.ToLower(p)
	for _, bad := range []string{"//", "/./", "/../", `\`, "%2f", "%5c", "%23", "%3f", "#", "?"} {
		if strings.Contains(lower, bad) {
			t.Fatalf("NormalizePath(%q) = %q, which contains %q", in, p, bad)
		}
	}
	if strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..") {
		t.Fatalf("NormalizePath(%q) = %q, which ends in a dot segment", in, p)
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; !isPchar(c) && c != '/' && c != '%' {
			t.Fatalf("NormalizePath(%q) = %q, which has byte %#02x", in, p, c)
		}
	}
	decoded, err := url.PathUnescape(p)
	if err != nil {
		t.Fatalf("url.PathUnescape(%q) error = %v", p, err)
	}
	for _, seg := range strings.Split(decoded, "/")[1:] {
		name, _, _ := strings.Cut(seg, ";")
		if seg != "" && strings.Trim(name, ". ") == "" {
			t.Fatalf("NormalizePath(%q) = %q, whose decoded segment %q is dots only", in, p, seg)
		}
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, tc := range pathCases {
		f.Add(tc.in)
	}
	for _, tc := range publicTrickCases {
		f.Add(tc.path)
	}
	pub, err := ParsePublicPaths([]string{"GET /static/", "/healthz"})
	if err != nil {
		f.Fatalf("ParsePublicPaths() error = %v", err)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormalizePath(in)
		if err != nil {
			if !errors.Is(err, ErrAmbiguousPath) {
				t.Fatalf("NormalizePath(%q) error = %v, want one wrapping ErrAmbiguousPath", in, err)
			}
			return
		}
		checkCanonicalPath(t, in, out)
		// The fast path may only accept what the full algorithm leaves as
		// it is.
		if canonicalFast(in) {
			if slow, err := normalizeSlow(in); err != nil || slow != in {
				t.Fatalf("canonicalFast(%q) = true, but normalizeSlow = %q, %v", in, slow, err)
			}
		}
		again, err := NormalizePath(out)
		if err != nil || again != out {
			t.Fatalf("NormalizePath(NormalizePath(%q)) = %q, %v, want %q, nil", in, again, err, out)
		}
		// A public match must be a literal prefix (subtree) or equality
		// (exact) on the canonical path, never anything a decoder could
		// widen.
		if pub.Match("GET", out) && !strings.HasPrefix(out, "/static/") && out != "/healthz" {
			t.Fatalf("Match(GET, %q) = true for a path outside the public patterns", out)
		}
	})
}

func BenchmarkNormalizePath(b *testing.B) {
	const in = "/static/js/../css/%61pp.css"
	for b.Loop() {
		if got, err := NormalizePath(in); err != nil || got != "/static/css/app.css" {
			b.Fatalf("NormalizePath(%q) = %q, %v", in, got, err)
		}
	}
}

func TestCanonicalFast(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"/", true},
		{"/app/page", true},
		{"/static/app.js", true},
		{"/a/b/", true},
		{"/v1/users/42:activate", true},
		{"/a;jsessionid=1/b", true},
		{"/.well-known/x", true},
		{"", false},
		{"a", false},
		{"//a", false},
		{"/a//b", false},
		{"/a/./b", false},
		{"/a/..", false},
		{"/a/..;/b", false},
		{"/a/;x", false},
		{"/a/...", false},
		{"/a%2eb", false},
		{"/a b", false},
		{"/a\\b", false},
		{"/a{b}", false},
		{"/é", false},
	} {
		if got := canonicalFast(tt.in); got != tt.want {
			t.Errorf("canonicalFast(%q) = %v, want %v", tt.in, got, tt.want)
		}
		if tt.want {
			if slow, err := normalizeSlow(tt.in); err != nil || slow != tt.in {
				t.Errorf("normalizeSlow(%q) = %q, %v; the fast path would disagree", tt.in, slow, err)
			}
		}
	}
	if n := testing.AllocsPerRun(100, func() { NormalizePath("/app/some/page") }); n != 0 {
		t.Errorf("NormalizePath of a canonical path allocates %v times, want 0", n)
	}
}
