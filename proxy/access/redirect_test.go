package access

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"testing"
)

// redirectCases are SafeRedirect inputs and the expected result. Every
// refused input must yield exactly "/".
var redirectCases = []struct {
	name, in, want string
}{
	// Kept: deep links.
	{"root", "/", "/"},
	{"deep link with query", "/some/page?x=1", "/some/page?x=1"},
	{"query holds a scheme-relative URL", "/a/b?next=//x", "/a/b?next=//x"},
	{"query holds an absolute URL", "/a?next=https://evil.com/", "/a?next=https://evil.com/"},
	{"query holds encoded space and plus", "/search?q=a%20b+c", "/search?q=a%20b+c"},
	{"query with second question mark", "/a?b?c", "/a?b?c"},
	{"query keeps slashes and encoded slash", "/a?p=%2F%2Fx", "/a?p=%2F%2Fx"},
	{"trailing slash", "/a/b/", "/a/b/"},
	{"tilde user dir", "/~user/", "/~user/"},
	{"path parameter", "/a;b=c", "/a;b=c"},
	{"colon in first segment is a path", "/javascript:alert(1)", "/javascript:alert(1)"},
	{"at sign in first segment is a path", "/@evil.com", "/@evil.com"},
	{"encoded UTF-8 letter", "/caf%C3%A9", "/caf%C3%A9"},
	{"encoded inner space", "/my%20file", "/my%20file"},
	{"single encoded slash mid-segment", "/a%2Fb", "/a%2Fb"},
	{"literal percent", "/100%25", "/100%25"},
	{"fragment kept", "/a?x=1#frag", "/a?x=1#frag"},
	{"fragment that looks like a host kept on our origin", "/a#//evil.com", "/a#//evil.com"},
	{"root fragment that looks like a host", "/#//evil.com", "/#//evil.com"},
	{"root fragment with backslashes refused", `/#\evil.com`, "/"},
	{"hash route", "/app/#/settings/profile", "/app/#/settings/profile"},
	{"hash route with its own query", "/some/deep/link?x=1#/settings/profile?tab=2", "/some/deep/link?x=1#/settings/profile?tab=2"},
	{"hashbang route", "/#!/inbox/42", "/#!/inbox/42"},
	{"fragment with encoded characters", "/a#caf%C3%A9%20x", "/a#caf%C3%A9%20x"},
	{"fragment with scheme-like text", "/a#javascript:alert(1)", "/a#javascript:alert(1)"},
	{"fragment with dot segments", "/a#/../../b", "/a#/../../b"},
	{"empty fragment kept", "/a#", "/a#"},
	{"empty query kept", "/a?", "/a?"},
	{"empty query and fragment kept", "/foo?#bar", "/foo?#bar"},
	{"second hash in fragment encoded", "/a#b#c", "/a#b%23c"},
	{"pipe in fragment encoded", "/a#x|y", "/a#x%7Cy"},
	{"fragment cannot rescue a bad path", "//evil.com#/a", "/"},
	{"fragment before a path-like query", "/a#?next=//evil.com", "/a#?next=//evil.com"},
	{"pipe in query encoded", "/a?x=a|b", "/a?x=a%7Cb"},
	{"quotes and brackets in query encoded", `/a?x="<b>"{}`, "/a?x=%22%3Cb%3E%22%7B%7D"},

	// Refused: no path at all, or not a path.
	{"empty", "", "/"},
	{"host only", "evil.com", "/"},
	{"host and path", "evil.com/path", "/"},
	{"relative dot", "./evil", "/"},
	{"relative dot dot", "../evil", "/"},
	{"query only", "?x=/", "/"},
	{"fragment only", "#frag", "/"},
	{"absolute https", "https://evil.com", "/"},
	{"absolute http", "http://evil.com/", "/"},
	{"scheme without slashes", "https:evil.com", "/"},
	{"scheme with one slash", "https:/evil.com", "/"},
	{"scheme with backslashes", `http:\\evil.com`, "/"},
	{"javascript scheme", "javascript:alert(1)", "/"},
	{"data scheme", "data:text/html,<script>alert(1)</script>", "/"},
	{"vbscript scheme", "vbscript:msgbox(1)", "/"},

	// Refused: scheme-relative and backslash tricks (GHSA-qqxw-m5fj-f7gv).
	{"scheme-relative", "//evil.com", "/"},
	{"scheme-relative with userinfo", "//user@evil.com", "/"},
	{"triple slash", "///evil.com", "/"},
	{"slash backslash", `/\evil.com`, "/"},
	{"backslash slash", `\/evil.com`, "/"},
	{"double backslash", `\\evil.com`, "/"},
	{"slash backslash slash", `/\/evil.com`, "/"},
	{"backslash inside path", `/a\b`, "/"},
	{"encoded backslash", "/%5cevil.com", "/"},
	{"encoded backslash upper", "/%5Cevil.com", "/"},
	{"encoded backslash mid-path", "/a%5Cb", "/"},
	{"backslash in query", `/a?x=\`, "/"},
	{"encoded backslash in query", "/a?x=%5c", "/"},
	{"double-encoded backslash in query", "/a?x=%255c", "/"},

	// Refused: encoded slashes that decode to "//".
	{"encoded slash after slash", "/%2fevil.com", "/"},
	{"encoded slash upper", "/%2Fevil.com", "/"},
	{"two encoded slashes no leading slash", "%2f%2fevil.com", "/"},
	{"two encoded slashes", "/%2f%2fevil.com", "/"},
	{"double-encoded slashes", "/%252f%252fevil.com", "/"},
	{"triple-encoded slashes", "/%25252f%25252fevil.com", "/"},
	{"encoded slash then backslash", "/%2F%5Cevil.com", "/"},
	{"too many encoding layers", "/a%2525252525252Fb", "/"},

	// Refused: whitespace and controls, raw or encoded (GHSA-j7px-6hwj-hpjg).
	{"leading space", " /evil", "/"},
	{"trailing space", "/evil ", "/"},
	{"space between slashes", "/ /evil.com", "/"},
	{"tab between slashes", "/\t/evil.com", "/"},
	{"two tabs between slashes", "/\t\t/evil.com", "/"},
	{"newline between slashes", "/\n/evil.com", "/"},
	{"carriage return between slashes", "/\r/evil.com", "/"},
	{"vertical tab between slashes", "/\v/evil.com", "/"},
	{"form feed between slashes", "/\f/evil.com", "/"},
	{"NUL", "/\x00/evil.com", "/"},
	{"DEL", "/\x7f", "/"},
	{"encoded tab between slashes", "/%09/evil.com", "/"},
	{"encoded newline between slashes", "/%0a/evil.com", "/"},
	{"encoded CR between slashes", "/%0d/evil.com", "/"},
	{"encoded NUL", "/%00/evil.com", "/"},
	{"encoded DEL", "/%7f", "/"},
	{"encoded space between slashes", "/%20/evil.com", "/"},
	{"encoded space at segment start", "/%20evil", "/"},
	{"encoded NBSP between slashes", "/%C2%A0/evil.com", "/"},
	{"encoded ideographic space", "/%E3%80%80/evil.com", "/"},
	{"header injection in path", "/a%0d%0aSet-Cookie:x=1", "/"},
	{"header injection in query", "/a?x=%0d%0aSet-Cookie:x=1", "/"},
	{"raw CRLF in query", "/a?x=\r\nSet-Cookie:x=1", "/"},
	{"encoded tab in query", "/a?x=%09", "/"},

	// Refused: dot segments that http.Redirect's path.Clean would collapse
	// (GHSA-5m6c-jp6f-2vcv).
	{"dot dot then backslash", `/a/../\evil.com`, "/"},
	{"dot dot then slash", "/..//evil.com", "/"},
	{"dot then slash", "/.//evil.com", "/"},
	{"dot then backslash", `/./\evil.com`, "/"},
	{"lone dot", "/.", "/"},
	{"lone dot dot", "/..", "/"},
	{"trailing dot", "/a/.", "/"},
	{"trailing dot dot", "/a/..", "/"},
	{"leading dot segment", "/./a", "/"},
	{"leading dot dot segment", "/../a", "/"},
	{"encoded dot dot", "/a/%2e%2e/b", "/"},
	{"mixed encoded dot dot", "/a/.%2E/b", "/"},
	{"encoded dot dot then encoded slash", "/%2e%2e%2f%2fevil.com", "/"},
	{"dot segments that collapse to scheme-relative", "/a/..%2f%2fevil.com", "/"},
	{"double-encoded dot dot", "/a/%252e%252e/b", "/"},

	// Refused: non-ASCII and look-alikes.
	{"fullwidth solidi", "／／evil.com", "/"},
	{"slash then fullwidth solidus", "/／evil.com", "/"},
	{"encoded fullwidth solidi", "/%EF%BC%8F%EF%BC%8Fevil.com", "/"},
	{"encoded fullwidth reverse solidus", "/%EF%BC%BCevil.com", "/"},
	{"encoded division slash", "/%E2%88%95evil.com", "/"},
	{"encoded two dot leader", "/a/%E2%80%A5/b", "/"},
	{"raw non-ASCII letter", "/café", "/"},
	{"encoded overlong slash", "/%C0%AF/evil.com", "/"},
	{"encoded invalid UTF-8", "/%FF", "/"},
	{"encoded right-to-left override", "/%E2%80%AEmoc.live", "/"},
	{"encoded zero-width space", "/%E2%80%8B/evil.com", "/"},
	{"encoded C1 control", "/%C2%85", "/"},

	// Refused: malformed encoding and oversize.
	{"lone percent", "/%", "/"},
	{"short escape", "/%2", "/"},
	{"non-hex escape", "/%zz", "/"},
	{"IIS unicode escape", "/%u002f%u002fevil.com", "/"},
	{"bad escape in query", "/a?x=%zz", "/"},
	{"very long", "/" + strings.Repeat("a", 5000), "/"},
	{"too long once the query is encoded", "/a?" + strings.Repeat("|", maxRedirectLen/3), "/"},
	{"forbidden ASCII in path", "/a|b", "/"},
	{"raw non-ASCII in query", "/a?x=é", "/"},
	{"raw space in query", "/a?x=a b", "/"},
	{"raw space in fragment", "/a#x y", "/"},
	{"raw CRLF in fragment", "/a#x\r\nSet-Cookie:x=1", "/"},
	{"encoded CRLF in fragment", "/a#x%0d%0aSet-Cookie:x=1", "/"},
	{"encoded backslash in fragment", "/a#%5c", "/"},
	{"raw non-ASCII in fragment", "/a#é", "/"},
	{"NUL in fragment", "/a#\x00", "/"},
	{"bad escape in fragment", "/a#%zz", "/"},
	{"too long once the fragment is encoded", "/a#" + strings.Repeat("|", maxRedirectLen/3), "/"},
}

func TestSafeRedirect(t *testing.T) {
	for _, tc := range redirectCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := SafeRedirect(tc.in); got != tc.want {
				t.Errorf("SafeRedirect(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestSafeRedirectStaysOnOrigin checks every table result the way a browser
// and Go's URL resolver would use it.
func TestSafeRedirectStaysOnOrigin(t *testing.T) {
	for _, tc := range redirectCases {
		t.Run(tc.name, func(t *testing.T) {
			checkSameOrigin(t, SafeRedirect(tc.in))
		})
	}
}

// TestSafeRedirectHTTPRedirectEquivalence proves that http.Redirect writes
// SafeRedirect's result, up to any fragment, into Location unchanged,
// whatever the current path. (With a fragment it does not, which is why
// callers set Location themselves.)
func TestSafeRedirectHTTPRedirectEquivalence(t *testing.T) {
	for _, tc := range redirectCases {
		t.Run(tc.name, func(t *testing.T) {
			checkHTTPRedirect(t, withoutFragment(SafeRedirect(tc.in)))
		})
	}
}

func withoutFragment(loc string) string {
	loc, _, _ = strings.Cut(loc, "#")
	return loc
}

// TestSafeRedirectFragmentNeverDecides: whatever follows "#", the target
// resolves to the path before it, on our origin.
func TestSafeRedirectFragmentNeverDecides(t *testing.T) {
	for _, frag := range []string{"//evil.com", "https://evil.com/", "@evil.com", "%2F%2Fevil.com", "/../../../evil"} {
		out := SafeRedirect("/p?q=1#" + frag)
		checkSameOrigin(t, out)
		u, err := url.Parse(out)
		if err != nil || u.Path != "/p" || u.RawQuery != "q=1" {
			t.Errorf("SafeRedirect(%q) = %q: path %q query %q, want /p and q=1", "/p?q=1#"+frag, out, u.Path, u.RawQuery)
		}
	}
}

var appOrigin = &url.URL{Scheme: "https", Host: "app.example", Path: "/current/page"}

// checkSameOrigin fails unless loc, used as a Location header value,
// resolves to the app's own origin both by Go's RFC 3986 resolver and by a
// browser's WHATWG preprocessing (strip C0 and space at the ends, drop tabs
// and newlines, read "\" as "/").
func checkSameOrigin(t *testing.T, loc string) {
	t.Helper()
	if !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") {
		t.Fatalf("Location %q does not start with exactly one slash", loc)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatalf("url.Parse(%q) error = %v", loc, err)
	}
	if u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		t.Fatalf("url.Parse(%q) = scheme %q host %q user %v opaque %q, want none", loc, u.Scheme, u.Host, u.User, u.Opaque)
	}
	if !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		t.Fatalf("url.Parse(%q).Path = %q, want a single leading slash", loc, u.Path)
	}
	if got := appOrigin.ResolveReference(u); got.Scheme != "https" || got.Host != "app.example" {
		t.Fatalf("ResolveReference(%q) = %q, want https://app.example/...", loc, got)
	}
	b := strings.TrimFunc(loc, func(r rune) bool { return r <= ' ' })
	b = strings.NewReplacer("\t", "", "\n", "", "\r", "", `\`, "/").Replace(b)
	bu, err := url.Parse(b)
	if err != nil {
		t.Fatalf("url.Parse(browser form %q) error = %v", b, err)
	}
	if got := appOrigin.ResolveReference(bu); got.Host != "app.example" {
		t.Fatalf("browser resolves %q to host %q, want app.example", loc, got.Host)
	}
}

// checkHTTPRedirect fails unless http.Redirect sets Location to loc
// exactly.
func checkHTTPRedirect(t *testing.T, loc string) {
	t.Helper()
	for _, from := range []string{"/", "/current/page", "/a/b/"} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "https://app.example"+from, nil)
		http.Redirect(w, r, loc, http.StatusFound)
		if got := w.Header().Get("Location"); got != loc {
			t.Fatalf("http.Redirect from %q: Header(%q) = %q, want %q", from, "Location", got, loc)
		}
	}
}

// strictRedirectCheck is an independent statement of what SafeRedirect may
// return: "/" or an RFC 3986 path-absolute reference whose path, at every
// decoding layer, path.Clean leaves alone.
func strictRedirectCheck(loc string) bool {
	if loc == "/" {
		return true
	}
	loc, frag, _ := strings.Cut(loc, "#")
	for i := 0; i < len(loc)+len(frag); i++ {
		c := (loc + frag)[i]
		if c <= ' ' || c >= 0x7f || c == '\\' || c == '#' || strings.IndexByte(`"<>^{|}`+"`", c) >= 0 {
			return false
		}
	}
	p, _, _ := strings.Cut(loc, "?")
	for range 6 {
		if !strings.HasPrefix(p, "/") || strings.Contains(p, "//") || strings.Contains(p, `\`) {
			return false
		}
		if c := path.Clean(p); c != p && c+"/" != p {
			return false
		}
		next, err := url.PathUnescape(p)
		if err != nil || next == p {
			return true
		}
		p = next
	}
	return false
}

func FuzzSafeRedirect(f *testing.F) {
	for _, tc := range redirectCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := SafeRedirect(in)
		if !strictRedirectCheck(out) {
			t.Fatalf("SafeRedirect(%q) = %q, which fails the strict check", in, out)
		}
		checkSameOrigin(t, out)
		checkHTTPRedirect(t, withoutFragment(out))
		if i := strings.IndexByte(in, '#'); i >= 0 && out != "/" {
			// The fragment never changes what the rest becomes.
			if got, want := withoutFragment(out), SafeRedirect(in[:i]); got != want {
				t.Fatalf("SafeRedirect(%q) = %q, whose part before # differs from SafeRedirect(%q) = %q", in, out, in[:i], want)
			}
		}
		if again := SafeRedirect(out); again != out {
			t.Fatalf("SafeRedirect(SafeRedirect(%q)) = %q, want %q", in, again, out)
		}
	})
}

func TestNewRedirectHostsErrors(t *testing.T) {
	for _, entry := range []string{
		"",
		"*",
		"*.example.com",
		"https://app.example.com",
		"app.example.com/path",
		"user@app.example.com",
		".com",
		".",
		"..example.com",
		".1.2.3.4",
		".[::1]",
		"app.example.com:0",
		"app.example.com:08443",
		"app.example.com:99999",
		"app.example.com:",
		":443",
		"app..example.com",
		"-app.example.com",
		"app.example.com.",
		"app_1.example.com",
		"[fe80::1%eth0]",
		"[::ffff:127.0.0.1]",
		"exämple.com",
		"0x7f.1",
		"app.0x1f",
		"1.2.3",
		"01.2.3.4",
		"app%2eexample.com",
		" app.example.com",
	} {
		t.Run(entry, func(t *testing.T) {
			if _, err := NewRedirectHosts([]string{entry}); err == nil {
				t.Errorf("NewRedirectHosts([%q]) error = nil, want an error", entry)
			}
		})
	}
}

func TestSafeAbsolute(t *testing.T) {
	hosts, err := NewRedirectHosts([]string{"app.example.com", ".example.org", "127.0.0.1:8080", "[::1]:9443", "Alt.Example.NET:8443"})
	if err != nil {
		t.Fatalf("NewRedirectHosts() error = %v", err)
	}
	cases := []struct {
		name, in string
		insecure bool
		want     string // "" means refused
	}{
		{"exact host", "https://app.example.com/a?x=1", false, "https://app.example.com/a?x=1"},
		{"upper-case host", "https://APP.EXAMPLE.COM/a", false, "https://app.example.com/a"},
		{"upper-case scheme, no path", "HTTPS://app.example.com", false, "https://app.example.com/"},
		{"query without path", "https://app.example.com?x=1", false, "https://app.example.com/?x=1"},
		{"explicit default port", "https://app.example.com:443/a", false, "https://app.example.com:443/a"},
		{"fragment kept", "https://app.example.com/a#frag", false, "https://app.example.com/a#frag"},
		{"hash route kept", "https://app.example.com/app/?x=1#/settings/profile", false, "https://app.example.com/app/?x=1#/settings/profile"},
		{"fragment without path", "https://app.example.com#/x", false, "https://app.example.com/#/x"},
		{"empty query kept", "https://app.example.com/a?", false, "https://app.example.com/a?"},
		{"fragment that would be re-encoded", "https://app.example.com/a#x|y", false, ""},
		{"fragment with a space", "https://app.example.com/a#x y", false, ""},
		{"other port", "https://app.example.com:8443/a", false, ""},
		{"http refused by default", "http://app.example.com/", false, ""},
		{"http with insecure", "http://app.example.com/", true, "http://app.example.com/"},
		{"http with insecure on https port", "http://app.example.com:443/", true, ""},
		{"listed port", "https://alt.example.net:8443/", false, "https://alt.example.net:8443/"},
		{"listed host without its port", "https://alt.example.net/", false, ""},
		{"subdomain of suffix", "https://a.example.org/", false, "https://a.example.org/"},
		{"deep subdomain of suffix", "https://a.b.example.org/x", false, "https://a.b.example.org/x"},
		{"suffix apex", "https://example.org/", false, ""},
		{"suffix without label boundary", "https://evil-example.org/", false, ""},
		{"suffix glued", "https://evilexample.org/", false, ""},
		{"allowed name as subdomain of evil", "https://example.org.evil.com/", false, ""},
		{"exact name as subdomain of evil", "https://app.example.com.evil.com/", false, ""},
		{"subdomain of exact entry", "https://x.app.example.com/", false, ""},
		{"trailing dot", "https://app.example.com./", false, ""},
		{"userinfo before evil host", "https://app.example.com@evil.com/", false, ""},
		{"userinfo before allowed host", "https://evil.com@app.example.com/", false, ""},
		{"port-like userinfo", "https://app.example.com:443@evil.com/", false, ""},
		{"fragment hides at", "https://evil.com#@app.example.com", false, ""},
		{"query hides at", "https://evil.com?@app.example.com", false, ""},
		{"backslash before at", `https://evil.com\@app.example.com`, false, ""},
		{"backslash after host", `https://app.example.com\@evil.com`, false, ""},
		{"scheme with slash backslash", `https:/\evil.com`, false, ""},
		{"scheme with backslashes", `https:\\app.example.com`, false, ""},
		{"scheme without slashes", "https:app.example.com", false, ""},
		{"scheme-relative", "//app.example.com/", false, ""},
		{"empty authority", "https:///app.example.com", false, ""},
		{"encoded host", "https://app%2eexample.com/", false, ""},
		{"encoded slash in authority", "https://app.example.com%2f@evil.com", false, ""},
		{"tab in authority", "https://app.example.com\t/", false, ""},
		{"leading space", " https://app.example.com/", false, ""},
		{"newline in path", "https://app.example.com/\n/evil.com", false, ""},
		{"javascript scheme", "javascript://app.example.com/%0aalert(1)", false, ""},
		{"ftp scheme", "ftp://app.example.com/", false, ""},
		{"double slash path", "https://app.example.com//evil.com", false, ""},
		{"dot segment path", "https://app.example.com/a/../b", false, ""},
		{"encoded double slash path", "https://app.example.com/%2f%2fevil.com", false, ""},
		{"path that would be re-encoded", "https://app.example.com/a?x=|", false, ""},
		{"IPv4 with port", "https://127.0.0.1:8080/x", false, "https://127.0.0.1:8080/x"},
		{"IPv4 without its port", "https://127.0.0.1/x", false, ""},
		{"IPv4 as integer", "https://2130706433:8080/", false, ""},
		{"IPv4 in hex", "https://0x7f.0.0.1:8080/", false, ""},
		{"IPv4 with leading zero", "https://127.0.0.01:8080/", false, ""},
		{"IPv6", "https://[::1]:9443/", false, "https://[::1]:9443/"},
		{"IPv6 long form", "https://[0:0:0:0:0:0:0:1]:9443/", false, "https://[::1]:9443/"},
		{"IPv6 with zone", "https://[::1%25eth0]:9443/", false, ""},
		{"empty port", "https://app.example.com:/", false, ""},
		{"punycode host not listed", "https://xn--pple-43d.com/", false, ""},
		{"raw IDN", "https://аpple.com/", false, ""},
		{"too long", "https://app.example.com/" + strings.Repeat("a", 5000), false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hosts.InsecureAllowHTTP = tc.insecure
			got, ok := hosts.SafeAbsolute(tc.in)
			if got != tc.want || ok != (tc.want != "") {
				t.Fatalf("SafeAbsolute(%q) = %q, %v, want %q, %v", tc.in, got, ok, tc.want, tc.want != "")
			}
			if ok {
				u, err := url.Parse(got)
				if err != nil || u.User != nil || u.Host != strings.SplitN(strings.SplitN(got, "://", 2)[1], "/", 2)[0] {
					t.Fatalf("url.Parse(%q) = %v, %v; want the same host and no userinfo", got, u, err)
				}
			}
		})
	}
}

func TestSafeAbsoluteNothingAllowed(t *testing.T) {
	empty, err := NewRedirectHosts(nil)
	if err != nil {
		t.Fatalf("NewRedirectHosts(nil) error = %v", err)
	}
	for name, h := range map[string]*RedirectHosts{"nil": nil, "zero": {}, "empty": empty} {
		t.Run(name, func(t *testing.T) {
			if got, ok := h.SafeAbsolute("https://app.example.com/"); ok || got != "" {
				t.Errorf("SafeAbsolute() = %q, %v, want \"\", false", got, ok)
			}
		})
	}
}

func FuzzSafeAbsolute(f *testing.F) {
	f.Add("https://app.example.com/a?x=1")
	f.Add("https://a.example.org/")
	f.Add("https://app.example.com@evil.com/")
	f.Add(`https://app.example.com\@evil.com/`)
	f.Add("https://[::1]:9443/x")
	hosts, err := NewRedirectHosts([]string{"app.example.com", ".example.org", "[::1]:9443"})
	if err != nil {
		f.Fatalf("NewRedirectHosts() error = %v", err)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, ok := hosts.SafeAbsolute(in)
		if !ok {
			if out != "" {
				t.Fatalf("SafeAbsolute(%q) = %q, false; want \"\"", in, out)
			}
			return
		}
		u, err := url.Parse(out)
		if err != nil {
			t.Fatalf("url.Parse(%q) error = %v", out, err)
		}
		h := u.Hostname()
		if u.Scheme != "https" || u.User != nil ||
			!(h == "app.example.com" && u.Port() == "" || strings.HasSuffix(h, ".example.org") || h == "::1" && u.Port() == "9443") {
			t.Fatalf("SafeAbsolute(%q) = %q: scheme %q host %q user %v not allowed", in, out, u.Scheme, u.Host, u.User)
		}
		rel := strings.TrimPrefix(out, u.Scheme+"://"+u.Host)
		if SafeRedirect(rel) != rel {
			t.Fatalf("SafeAbsolute(%q) = %q with unsafe path %q", in, out, rel)
		}
		if again, ok := hosts.SafeAbsolute(out); !ok || again != out {
			t.Fatalf("SafeAbsolute(%q) = %q, %v, want %q, true", out, again, ok, out)
		}
	})
}

func BenchmarkSafeRedirect(b *testing.B) {
	const in = "/some/deep/page?x=1&next=%2Fother"
	for b.Loop() {
		if got := SafeRedirect(in); got != in {
			b.Fatalf("SafeRedirect(%q) = %q, want it unchanged", in, got)
		}
	}
}
