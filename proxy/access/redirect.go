package access

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxRedirectLen bounds a redirect target. Browsers cope with far longer
// URLs, but a post-login deep link longer than this is more likely an attack
// on a parser than a page; refusing it costs the user the deep link only.
const maxRedirectLen = 4096

// maxDecodeLayers is how many percent-decoding layers SafeRedirect inspects.
// A target still changing after this many layers is refused.
const maxDecodeLayers = 4

// SafeRedirect returns rd when it is a same-origin path reference that is
// safe to put in a Location header after login, and "/" otherwise. The zero
// value "" yields "/".
//
// rd is accepted only when all of these hold:
//   - it starts with exactly one "/" followed by a character other than "/"
//     and "\" (or is exactly "/"): no scheme, no authority, so no host;
//   - every byte is an RFC 3986 URI character (no space, no control, no
//     backslash, no non-ASCII: a browser strips or rewrites those, turning
//     "/\tevil.com" or "/\evil.com" into "//evil.com", see oauth2-proxy
//     GHSA-j7px-6hwj-hpjg and GHSA-qqxw-m5fj-f7gv);
//   - every "%" starts a valid escape;
//   - at every percent-decoding layer (up to four), the path has no "//",
//     no backslash, no "." or ".." segment (http.Redirect and servers
//     resolve those, and "/a/../\evil.com" becomes "/\evil.com", see
//     GHSA-5m6c-jp6f-2vcv), no control or format character, no segment that
//     starts or ends with whitespace, valid UTF-8, and no Unicode look-alike
//     of "/", "\" or "." (FULLWIDTH SOLIDUS and friends);
//   - the query has no backslash or control character at any layer, raw or
//     encoded (%5C, %00-%1F, %7F). Encoded spaces and "//" are fine in a
//     query: the query cannot change the host, and deep links such as
//     "/search?q=a%20b&next=//x" must survive.
//
// The query and the fragment are kept exactly as given ("/foo?" stays
// "/foo?", "/app/#/settings" keeps its hash route: single-page apps build
// deep links from location.pathname + search + hash). The fragment follows
// the query's rules but takes no part in the same-origin check: a browser
// never leaves the origin for a fragment, so "/#//evil.com" is kept as it
// is. Printable ASCII that RFC 3986 forbids but that is harmless once
// encoded (`"<>^{|}` and the backquote, and a second "#") is
// percent-encoded in the query and fragment and refused in the path. The
// result therefore consists of RFC 3986 characters only.
//
// Callers must set the Location header to the result directly. Passing a
// result without a fragment to http.Redirect is equivalent: it has no dot
// segments and no "//" in its path, so http.Redirect's path.Clean leaves it
// byte-for-byte unchanged (TestSafeRedirectHTTPRedirectEquivalence and
// FuzzSafeRedirect prove it). With a fragment it is not: http.Redirect
// cleans "/a#/../b" into "/b".
func SafeRedirect(rd string) string {
	if s, err := safeRelative(rd); err == nil {
		return s
	}
	return "/"
}

// errUnsafeRedirect is the reason safeRelative gives for a refusal; it never
// leaves the package (SafeRedirect answers "/", SafeAbsolute false).
var errUnsafeRedirect = errors.New("access: unsafe redirect")

func unsafeRedirect(why string) error {
	return fmt.Errorf("check redirect: %s: %w", why, errUnsafeRedirect)
}

// safeRelative implements SafeRedirect and reports why a target is refused.
func safeRelative(rd string) (string, error) {
	if rd == "" {
		return "", unsafeRedirect("empty")
	}
	if len(rd) > maxRedirectLen {
		return "", unsafeRedirect("too long")
	}
	// The fragment is split off first: it takes no part in the check of
	// where the target leads ("/#//evil.com" stays on this origin), so a
	// "?" or "//" inside it is the fragment's own business.
	rd, frag, hasFrag := strings.Cut(rd, "#")
	p, q, hasQuery := strings.Cut(rd, "?")
	if err := checkRedirectPath(p); err != nil {
		return "", err
	}
	out := p
	if hasQuery {
		// An empty query is kept too: "/foo?" is what the user had.
		eq, err := checkRedirectQuery(q, false)
		if err != nil {
			return "", err
		}
		out += "?" + eq
	}
	if hasFrag {
		ef, err := checkRedirectQuery(frag, true)
		if err != nil {
			return "", err
		}
		out += "#" + ef
	}
	if len(out) > maxRedirectLen {
		// Encoding lengthened the target past the limit; refusing keeps
		// SafeRedirect(SafeRedirect(x)) == SafeRedirect(x).
		return "", unsafeRedirect("too long")
	}
	return out, nil
}

// checkRedirectPath enforces SafeRedirect's path rules on p, the part before
// the first "?".
func checkRedirectPath(p string) error {
	if p == "" || p[0] != '/' {
		return unsafeRedirect("not an absolute path")
	}
	if len(p) > 1 && (p[1] == '/' || p[1] == '\\') {
		return unsafeRedirect("scheme-relative")
	}
	for i := 0; i < len(p); i++ {
		b := p[i]
		switch {
		case isPchar(b) || b == '/':
		case b == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return unsafeRedirect("malformed percent-encoding")
			}
		default:
			return unsafeRedirect(fmt.Sprintf("byte %#02x in path", b))
		}
	}
	layer := p
	for n := 0; ; n++ {
		if err := checkDecodedPath(layer); err != nil {
			return err
		}
		next := decodeLayer(layer)
		if next == layer {
			return nil
		}
		if n == maxDecodeLayers {
			return unsafeRedirect("too many encoding layers")
		}
		layer = next
	}
}

// checkDecodedPath checks one decoding layer of a redirect path.
func checkDecodedPath(s string) error {
	if strings.Contains(s, "//") {
		return unsafeRedirect(`"//" in path`)
	}
	if strings.IndexByte(s, '\\') >= 0 {
		return unsafeRedirect("backslash in path")
	}
	if !utf8.ValidString(s) {
		return unsafeRedirect("invalid UTF-8 in path")
	}
	for _, r := range s {
		if r < 0x80 && isCtl(byte(r)) || confusable(r) {
			return unsafeRedirect(fmt.Sprintf("character %U in path", r))
		}
	}
	for _, seg := range strings.Split(s[1:], "/") {
		if seg == "." || seg == ".." {
			return unsafeRedirect("dot segment in path")
		}
		if seg != strings.TrimFunc(seg, unicode.IsSpace) {
			return unsafeRedirect("whitespace at a segment edge")
		}
	}
	return nil
}

// checkRedirectQuery enforces SafeRedirect's query rules on q (without the
// "?") and returns it with forbidden-but-harmless ASCII percent-encoded. The
// same rules hold for a fragment (RFC 3986 gives both the same characters),
// where a second "#", which WHATWG URLs keep as part of the fragment, is
// percent-encoded as well.
func checkRedirectQuery(q string, fragment bool) (string, error) {
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case isPchar(c) || c == '/' || c == '?':
			b.WriteByte(c)
		case fragment && c == '#':
			b.WriteString("%23")
		case c == '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return "", unsafeRedirect("malformed percent-encoding in query")
			}
			b.WriteByte(c)
		case isEncodable(c):
			b.WriteByte('%')
			b.WriteByte(upperHex[c>>4])
			b.WriteByte(upperHex[c&15])
		default:
			return "", unsafeRedirect(fmt.Sprintf("byte %#02x in query", c))
		}
	}
	layer := q
	for n := 0; ; n++ {
		next := decodeLayer(layer)
		if next == layer {
			return b.String(), nil
		}
		if n == maxDecodeLayers {
			return "", unsafeRedirect("too many encoding layers in query")
		}
		for i := 0; i < len(next); i++ {
			if next[i] == '\\' || isCtl(next[i]) {
				return "", unsafeRedirect("encoded backslash or control in query")
			}
		}
		layer = next
	}
}

// decodeLayer percent-decodes every valid "%XX" escape in s once and leaves
// a "%" that does not start one as it is.
func decodeLayer(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

// RedirectHosts is an allow-list of hosts that a forward-auth login may
// return to on another origin. Its zero value and a nil *RedirectHosts allow
// no host, so SafeAbsolute refuses everything.
type RedirectHosts struct {
	// InsecureAllowHTTP lets SafeAbsolute accept http:// targets as well as
	// https:// ones. Leave it false in production: a session cookie set for
	// the login would then be sent in clear to the returned-to host. It is
	// meant for loopback demos and tests without TLS.
	InsecureAllowHTTP bool

	exact    map[string]bool // "host" (default port) or "host:port"
	suffixes []hostRule      // ".example.com" rules
}

// hostRule is one suffix entry of RedirectHosts.
type hostRule struct {
	suffix string // ".example.com"
	port   string // "" for the scheme's default port
}

// NewRedirectHosts parses an allow-list. Each entry is either an exact host
// ("app.example.com", "127.0.0.1", "[::1]", each optionally ":port") or a
// suffix rule (".example.com", optionally ":port") that matches every
// subdomain at a label boundary, so "a.example.com" and "a.b.example.com"
// but neither "example.com" itself (list it separately) nor
// "evil-example.com" (oauth2-proxy GHSA-4mf2-f3wh-gvf2). An entry without a
// port matches only the scheme's default port (443, or 80 for http). Entries
// are case-insensitive. Wildcards ("*", "*.example.com"), schemes, paths,
// userinfo, IP suffix rules and suffix rules of a single label (".com") are
// refused, as is an empty entry. An empty list is valid and allows nothing.
func NewRedirectHosts(list []string) (*RedirectHosts, error) {
	h := &RedirectHosts{exact: map[string]bool{}}
	for _, e := range list {
		if e == "" {
			return nil, errors.New("parse redirect hosts: empty entry")
		}
		if strings.HasPrefix(e, ".") {
			host, port, _, ok := parseHostPort(e[1:])
			if !ok || strings.HasPrefix(host, "[") || !strings.Contains(host, ".") || isIPv4(host) {
				return nil, fmt.Errorf("parse redirect hosts: %q: want .domain.tld[:port] with at least two labels", e)
			}
			h.suffixes = append(h.suffixes, hostRule{suffix: "." + host, port: port})
			continue
		}
		_, _, hostport, ok := parseHostPort(e)
		if !ok {
			return nil, fmt.Errorf("parse redirect hosts: %q: want host[:port] or .domain[:port] (no scheme, path or wildcard)", e)
		}
		h.exact[hostport] = true
	}
	return h, nil
}

func isIPv4(host string) bool {
	return host != "" && endsInNumber(host[strings.LastIndexByte(host, '.')+1:])
}

// allowed reports whether host (canonical) with port ("" when absent) is on
// the list for a URL of the given default port.
func (h *RedirectHosts) allowed(host, port, defaultPort string) bool {
	effective := port
	if effective == "" {
		effective = defaultPort
	}
	if h.exact[host+":"+effective] || effective == defaultPort && h.exact[host] {
		return true
	}
	for _, r := range h.suffixes {
		// host never starts with ".", so a suffix match is a proper
		// subdomain at a label boundary.
		if !strings.HasSuffix(host, r.suffix) {
			continue
		}
		if r.port == effective || r.port == "" && effective == defaultPort {
			return true
		}
	}
	return false
}

// SafeAbsolute returns the canonical form of rd and true when rd is an
// absolute https:// URL (or http:// with InsecureAllowHTTP) whose host is on
// the list, with no userinfo, no percent-encoding in the host, no
// backslash, whitespace, control or non-ASCII byte anywhere, and a path and
// query that SafeRedirect would keep unchanged (an empty path becomes "/").
// The fragment is kept when SafeRedirect would keep it unchanged; scheme and
// host are lower-cased. Otherwise it
// returns "" and false, as it does on a nil receiver.
func (h *RedirectHosts) SafeAbsolute(rd string) (string, bool) {
	if h == nil || len(rd) > maxRedirectLen {
		return "", false
	}
	rd, frag, hasFrag := strings.Cut(rd, "#")
	for i := 0; i < len(rd); i++ {
		c := rd[i]
		if !(isPchar(c) || c == '/' || c == '?' || c == '%' || c == '[' || c == ']') {
			return "", false
		}
	}
	scheme, rest, ok := strings.Cut(rd, "://")
	if !ok {
		return "", false
	}
	var defaultPort string
	switch asciiLower(scheme) {
	case "https":
		scheme, defaultPort = "https", "443"
	case "http":
		if !h.InsecureAllowHTTP {
			return "", false
		}
		scheme, defaultPort = "http", "80"
	default:
		return "", false
	}
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	authority, pathQuery := rest[:end], rest[end:]
	// parseHostPort refuses '@' (userinfo) and '%' (encoded host) itself,
	// as neither is a host character.
	host, port, hostport, ok := parseHostPort(authority)
	if !ok || !h.allowed(host, port, defaultPort) {
		return "", false
	}
	if pathQuery == "" || pathQuery[0] == '?' {
		pathQuery = "/" + pathQuery
	}
	if hasFrag {
		pathQuery += "#" + frag
	}
	safe, err := safeRelative(pathQuery)
	if err != nil || safe != pathQuery {
		return "", false
	}
	return scheme + "://" + hostport + safe, true
}
