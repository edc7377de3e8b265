package access

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrAmbiguousPath is wrapped by every NormalizePath error. The request path
// could mean different resources to authgate and to the upstream, so the
// request must be refused with 400 Bad Request; it is a client fault.
var ErrAmbiguousPath = errors.New("access: ambiguous request path")

// maxPathLen bounds the escaped path NormalizePath accepts. Go's server
// already bounds the request line by MaxHeaderBytes (1 MiB by default);
// this keeps the work per request small.
const maxPathLen = 8192

func ambiguous(why string) error {
	return fmt.Errorf("normalize path: %s: %w", why, ErrAmbiguousPath)
}

// NormalizePath returns the canonical form of a request path, which is both
// the path that public-route rules are MATCHED against and the path that is
// FORWARDED to the upstream, so the two can never disagree. escapedPath is
// the path as sent by the client: http.Request.URL.EscapedPath() (or, in
// forward-auth mode, the path part of a trusted X-Forwarded-Uri). The query
// string never takes part: split it off first (GHSA-7rh7-c77v-6434 was a
// skip-auth rule matched against the query).
//
// The rule (RFC 3986 section 6.2.2, applied segment by segment):
//
//  1. "" means "/"; anything else must start with "/".
//  2. Percent-encoded unreserved characters (A-Z a-z 0-9 - . _ ~) are
//     decoded, so "%2e%2E" is ".." and "%41" is "A". Every other escape is
//     kept, with upper-case hex ("%3a" becomes "%3A"). Printable ASCII that
//     RFC 3986 forbids in a path (`"<>^{|}` and the backquote) is
//     percent-encoded.
//  3. Runs of "/" collapse into one, as nginx's and Envoy's merge_slashes
//     do: "//static/../admin" is read as "/static/../admin".
//  4. "." and ".." segments are resolved (RFC 3986 section 5.2.4); a final
//     "." or ".." leaves a trailing slash ("/a/b/.." is "/a/"). ".." above
//     the root is an error. A trailing slash is otherwise kept as it is.
//
// These are refused with an error wrapping ErrAmbiguousPath (answer 400):
//
//   - raw or encoded control characters (%00-%1F, %7F), raw space, raw
//     non-ASCII (a client must percent-encode it);
//   - raw or encoded backslash (%5C): Windows and some frameworks read it
//     as "/";
//   - encoded slash (%2F): the upstream may or may not decode it into a
//     separator (Envoy and Pomerium refuse it by default too);
//   - encoded "#" (%23) and "?" (%3F), and a raw "#" or "?": an upstream
//     that decodes the path before splitting off a fragment or query would
//     see a shorter path than the one matched (GHSA-pxq7-h93f-9jrg). They
//     are legitimate in a few apps; refusing them is the safe choice;
//   - "%25" followed by two hex digits ("%252e") in the result, also when
//     the digits come from decoded escapes ("%252%65" would become "%252e"):
//     double encoding, which a second decoder would turn into a dot segment
//     or separator;
//   - a "%" that does not start a valid escape ("%u002e", "%2");
//   - decoded bytes that are not valid UTF-8 (an overlong "/" as %C0%AF),
//     Unicode control, format and non-ASCII space characters, and Unicode
//     look-alikes that NFKC or Windows best-fit mapping turn into "/", "\"
//     or "." (FULLWIDTH SOLIDUS %EF%BC%8F, TWO DOT LEADER, ...);
//   - a segment that is "." or ".." once a ";parameter" is cut off ("..;",
//     "..;jsessionid=x", ".;x", "%2e%2e%3B"): Tomcat and Spring strip
//     parameters per segment and then resolve the dot segment, so
//     "/public/..;/admin" is "/admin" to them but lies under "/public/" for
//     a literal matcher. A ";" anywhere else is kept literally:
//     "/public;/../admin" resolves to "/admin" here exactly as it does there;
//   - any other segment made only of dots and spaces once a parameter is
//     cut off ("...", ".%20", ";x"): Windows trims trailing dots and spaces.
//
// Matching is case-sensitive ("/STATIC/" is not "/static/"), as the upstream
// URL space is. The result never contains "//", a "." or ".." segment, a
// backslash or "%2F", and NormalizePath(result) == result.
func NormalizePath(escapedPath string) (string, error) {
	if canonicalFast(escapedPath) {
		// Most request paths are canonical already: no allocation for them.
		return escapedPath, nil
	}
	return normalizeSlow(escapedPath)
}

// canonicalFast reports, in one scan and without allocating, whether p is
// certainly canonical: it starts with "/", is within maxPathLen, holds only
// RFC 3986 pchar bytes (no "%", nothing to encode or refuse), has no empty
// segment but a trailing one, and no segment made only of dots before its
// first ";". normalizeSlow returns such a path unchanged (FuzzNormalizePath
// checks it); anything else takes the slow path.
func canonicalFast(p string) bool {
	if len(p) == 0 || p[0] != '/' || len(p) > maxPathLen {
		return false
	}
	start := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			if !isPchar(p[i]) {
				return false
			}
			continue
		}
		seg := p[start:i]
		if seg == "" {
			if i < len(p) {
				return false // "//"
			}
		} else if name, _, _ := strings.Cut(seg, ";"); strings.Trim(name, ".") == "" {
			return false // ".", "..", "...", ";x", "..;x"
		}
		start = i + 1
	}
	return true
}

// normalizeSlow is NormalizePath's full algorithm.
func normalizeSlow(escapedPath string) (string, error) {
	if escapedPath == "" {
		return "/", nil
	}
	if escapedPath[0] != '/' {
		return "", ambiguous("does not start with /")
	}
	if len(escapedPath) > maxPathLen {
		return "", ambiguous("too long")
	}
	raw := strings.Split(escapedPath[1:], "/")
	out := make([]string, 0, len(raw))
	trailing := false
	for i, r := range raw {
		last := i == len(raw)-1
		trailing = false
		if r == "" {
			trailing = last
			continue
		}
		seg, err := canonSegment(r)
		if err != nil {
			return "", err
		}
		switch seg {
		case ".":
			trailing = last
			continue
		case "..":
			if len(out) == 0 {
				return "", ambiguous(`".." above the root`)
			}
			out = out[:len(out)-1]
			trailing = last
			continue
		}
		out = append(out, seg)
	}
	if len(out) == 0 {
		return "/", nil
	}
	n := 1 + len(out)
	for _, s := range out {
		n += len(s)
	}
	var b strings.Builder
	b.Grow(n)
	for _, s := range out {
		b.WriteByte('/')
		b.WriteString(s)
	}
	if trailing {
		b.WriteByte('/')
	}
	if b.Len() > maxPathLen {
		// Encoding can lengthen the path; bounding the output as well as
		// the input keeps NormalizePath idempotent.
		return "", ambiguous("too long")
	}
	return b.String(), nil
}

// canonSegment returns the canonical escaped form of one non-empty path
// segment, or an error for the segment rules of NormalizePath.
func canonSegment(r string) (string, error) {
	var (
		seg     = make([]byte, 0, len(r))
		decoded = make([]byte, 0, len(r)) // every escape decoded
		changed = false
	)
	for i := 0; i < len(r); i++ {
		c := r[i]
		switch {
		case c == '%':
			if i+2 >= len(r) || !isHex(r[i+1]) || !isHex(r[i+2]) {
				return "", ambiguous("malformed percent-encoding")
			}
			d := unhex(r[i+1])<<4 | unhex(r[i+2])
			switch {
			case isCtl(d):
				return "", ambiguous("encoded control character")
			case d == '/':
				return "", ambiguous("encoded slash")
			case d == '\\':
				return "", ambiguous("encoded backslash")
			case d == '#' || d == '?':
				return "", ambiguous(`encoded "#" or "?"`)
			case isUnreserved(d):
				seg = append(seg, d)
				changed = true
			default:
				seg = append(seg, '%', upperHex[d>>4], upperHex[d&15])
				changed = changed || r[i+1] != upperHex[d>>4] || r[i+2] != upperHex[d&15]
			}
			decoded = append(decoded, d)
			i += 2
		case isPchar(c):
			seg = append(seg, c)
			decoded = append(decoded, c)
		case isEncodable(c):
			seg = append(seg, '%', upperHex[c>>4], upperHex[c&15])
			decoded = append(decoded, c)
			changed = true
		case c == '\\':
			return "", ambiguous("backslash")
		case c == '#' || c == '?':
			return "", ambiguous(`raw "#" or "?" in path`)
		case c >= 0x80:
			return "", ambiguous("raw non-ASCII byte")
		default: // controls and space
			return "", ambiguous(fmt.Sprintf("raw byte %#02x", c))
		}
	}
	// Double encoding is judged on the output, not the input: decoding
	// unreserved escapes can complete it ("%250%30" becomes "%2500").
	// Every "%" left in seg starts an escape with upper-case hex.
	for j := 0; j+4 < len(seg); j++ {
		if seg[j] == '%' && seg[j+1] == '2' && seg[j+2] == '5' && isHex(seg[j+3]) && isHex(seg[j+4]) {
			return "", ambiguous("double percent-encoding")
		}
	}
	if !utf8.Valid(decoded) {
		return "", ambiguous("invalid UTF-8")
	}
	for _, ru := range string(decoded) {
		if confusable(ru) {
			return "", ambiguous(fmt.Sprintf("character %U", ru))
		}
	}
	name, _, hasParam := strings.Cut(string(decoded), ";")
	if strings.Trim(name, ". ") == "" {
		if !hasParam && (name == "." || name == "..") {
			// A plain dot segment (possibly written %2e): resolved by the caller.
			return name, nil
		}
		return "", ambiguous("dot segment with parameters or other dots-only segment")
	}
	if !changed {
		return r, nil
	}
	return string(seg), nil
}
