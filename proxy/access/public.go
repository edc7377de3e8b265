package access

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// PublicPaths is a set of routes that need no login. Its zero value and a
// nil *PublicPaths match nothing, so every request needs a session.
//
// Matching is delegated to an internal http.ServeMux in which each pattern is
// registered with a marker handler: a request is public only when
// mux.Handler returns that marker. The semantics are therefore exactly
// ServeMux's for the supported patterns; in particular a trailing-slash
// redirect ("/static" when only "/static/" is registered), a 405 or a 404
// handler is not the marker and so is not public. ServeMux's own
// path-cleaning redirect never fires, because Match only accepts paths that
// NormalizePath has already made canonical. Like ServeMux, it compares
// segments after percent-decoding them, so a pattern "/a%3Ab" and a path
// "/a:b" are the same route; encoded "/" never reaches it (NormalizePath
// refuses %2F), so decoding cannot create a separator.
type PublicPaths struct {
	mux      *http.ServeMux
	patterns []string
	// exact and subtrees are the patterns' paths, percent-decoded, without
	// their methods: a path that equals none of exact and starts with none
	// of subtrees cannot be matched by any pattern, so Match refuses it
	// without asking the mux (whose lookup of a path it does not know
	// allocates a dozen times, to list the methods of a 405).
	exact, subtrees []string
}

// marker is the handler registered for every public pattern. It is a
// pointer so that handlers can be compared with ==.
type marker struct{}

func (*marker) ServeHTTP(http.ResponseWriter, *http.Request) {}

var publicMarker http.Handler = &marker{}

// ParsePublicPaths parses patterns in the syntax of Go's http.ServeMux,
// restricted to what is unambiguous for an authenticating proxy:
//
//	[METHOD ]PATH
//
// METHOD is an upper-case HTTP method; "GET" also matches HEAD, as in
// ServeMux. PATH must start with "/": a trailing "/" makes it a subtree
// ("/static/" matches "/static/" and everything below it), otherwise it
// matches exactly ("/healthz" matches neither "/healthz/" nor
// "/healthz/x"). PATH must already be canonical (NormalizePath(PATH) ==
// PATH): a pattern like "/static/../admin" or "/a//b" is an error, since no
// normalised request could match it as written.
//
// Host patterns ("example.com/"), wildcards ("/{id}", "/{$}", "/{x...}"),
// the pattern "/" (it would make every path public), empty entries and
// duplicates are refused with an error naming the entry.
// An empty list is valid and matches nothing.
func ParsePublicPaths(list []string) (*PublicPaths, error) {
	p := &PublicPaths{mux: http.NewServeMux()}
	seen := map[string]bool{}
	for _, entry := range list {
		pattern, err := parsePublicPattern(entry)
		if err != nil {
			return nil, fmt.Errorf("parse public paths: %q: %w", entry, err)
		}
		if seen[pattern] {
			return nil, fmt.Errorf("parse public paths: %q: duplicate pattern", entry)
		}
		seen[pattern] = true
		if err := register(p.mux, pattern); err != nil {
			return nil, fmt.Errorf("parse public paths: %q: %w", entry, err)
		}
		p.patterns = append(p.patterns, pattern)
		fields := strings.Fields(pattern)
		path, err := url.PathUnescape(fields[len(fields)-1])
		if err != nil { // NormalizePath accepted it: cannot happen
			return nil, fmt.Errorf("parse public paths: %q: %w", entry, err)
		}
		if strings.HasSuffix(path, "/") {
			p.subtrees = append(p.subtrees, path)
		} else {
			p.exact = append(p.exact, path)
		}
	}
	return p, nil
}

// parsePublicPattern validates one entry and returns it in the form given
// to ServeMux ("GET /static/" or "/healthz").
func parsePublicPattern(entry string) (string, error) {
	method, path, err := parsePattern(entry)
	if err != nil {
		return "", err
	}
	if path == "/" {
		// "/" is a subtree pattern for the whole URL space: it would make
		// every path public, which is not an authenticating proxy.
		return "", fmt.Errorf(`pattern "/" would make every path public`)
	}
	if method == "" {
		return path, nil
	}
	return method + " " + path, nil
}

// parsePattern validates "[METHOD ]PATH" in the restricted ServeMux syntax
// shared by public paths and routes: an upper-case method, a canonical
// absolute path, no host and no wildcards.
func parsePattern(entry string) (method, path string, err error) {
	fields := strings.Fields(entry)
	switch len(fields) {
	case 1:
		path = fields[0]
	case 2:
		method, path = fields[0], fields[1]
		if !validMethod(method) {
			return "", "", fmt.Errorf("method %q is not an upper-case HTTP method", method)
		}
	default:
		return "", "", fmt.Errorf("want [METHOD ]/path")
	}
	if strings.ContainsAny(path, "{}") {
		return "", "", fmt.Errorf("wildcards are not supported")
	}
	if !strings.HasPrefix(path, "/") {
		return "", "", fmt.Errorf("host patterns are not supported; the path must start with /")
	}
	canon, err := NormalizePath(path)
	if err != nil {
		return "", "", fmt.Errorf("check pattern path: %w", err)
	}
	if canon != path {
		return "", "", fmt.Errorf("path is not canonical: write %q", canon)
	}
	return method, path, nil
}

// validMethod reports whether m is a plausible HTTP method: 1 to 32
// upper-case ASCII letters. HTTP methods are case-sensitive (RFC 9110
// section 9.1), so "get" would be a different method; refusing it catches
// a typo instead of silently never matching.
func validMethod(m string) bool {
	if m == "" || len(m) > 32 {
		return false
	}
	for i := 0; i < len(m); i++ {
		if m[i] < 'A' || m[i] > 'Z' {
			return false
		}
	}
	return true
}

// register adds pattern to mux, turning ServeMux's panic on an invalid or
// conflicting pattern into an error.
func register(mux *http.ServeMux, pattern string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("register pattern: %v", r)
		}
	}()
	mux.Handle(pattern, publicMarker)
	return nil
}

// Match reports whether a request with this method and path needs no login.
// normalizedPath must be the output of NormalizePath; any other path
// (including one NormalizePath would change or refuse) does not match, so a
// caller that forgets to normalise fails closed. An empty or malformed
// method does not match.
func (p *PublicPaths) Match(method, normalizedPath string) bool {
	// No patterns (the default: AUTHGATE_PUBLIC_PATHS unset) match
	// nothing; return before the checks and the mux lookup below, which
	// would otherwise run on every authenticated request.
	if p == nil || p.mux == nil || len(p.patterns) == 0 || !validMethod(method) {
		return false
	}
	if canon, err := NormalizePath(normalizedPath); err != nil || canon != normalizedPath {
		return false
	}
	decoded, err := url.PathUnescape(normalizedPath)
	if err != nil || !p.mayMatch(decoded) {
		return false
	}
	return p.muxMatch(method, normalizedPath, decoded)
}

// muxMatch asks the mux whether method and path (normalised, and decoded)
// reach a public pattern.
func (p *PublicPaths) muxMatch(method, normalizedPath, decoded string) bool {
	r := &http.Request{
		Method: method,
		URL:    &url.URL{Path: decoded, RawPath: normalizedPath},
	}
	h, _ := p.mux.Handler(r)
	return h == publicMarker
}

// mayMatch reports whether some pattern could match the decoded path: it
// equals an exact pattern's path or lies in a subtree. ServeMux compares
// percent-decoded segments, and a normalised path has no encoded "/", so
// comparing whole decoded strings is the same test; the mux still decides.
func (p *PublicPaths) mayMatch(decoded string) bool {
	for _, e := range p.exact {
		if decoded == e {
			return true
		}
	}
	for _, t := range p.subtrees {
		if strings.HasPrefix(decoded, t) {
			return true
		}
	}
	return false
}

// Patterns returns the registered patterns in configuration order, for
// logging at start-up. It returns nil for a nil receiver.
func (p *PublicPaths) Patterns() []string {
	if p == nil {
		return nil
	}
	return append([]string(nil), p.patterns...)
}
