package access

import (
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Character classes of RFC 3986 section 2.

// isUnreserved reports whether b is an RFC 3986 section 2.3 unreserved
// character: percent-encoding one of these does not change the URI's meaning,
// so section 6.2.2.2 lets a normaliser decode it.
func isUnreserved(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
		b == '-' || b == '.' || b == '_' || b == '~'
}

// isSubDelim reports whether b is an RFC 3986 section 2.2 sub-delimiter.
func isSubDelim(b byte) bool {
	return strings.IndexByte("!$&'()*+,;=", b) >= 0
}

// isPchar reports whether b may appear unencoded in a path segment
// (RFC 3986 section 3.3 pchar, without the pct-encoded alternative).
func isPchar(b byte) bool {
	return isUnreserved(b) || isSubDelim(b) || b == ':' || b == '@'
}

// isEncodable reports whether b is printable ASCII that RFC 3986 does not
// allow in a path or query but that is harmless once percent-encoded:
// `"<>^{|}` and the backquote. Space, backslash, '#', '?' and '%' are not
// in this set: each of them changes how a URL is split or decoded.
func isEncodable(b byte) bool {
	return strings.IndexByte("\"<>^`{|}", b) >= 0
}

func isHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}

func unhex(b byte) byte {
	switch {
	case '0' <= b && b <= '9':
		return b - '0'
	case 'a' <= b && b <= 'f':
		return b - 'a' + 10
	default:
		return b - 'A' + 10
	}
}

const upperHex = "0123456789ABCDEF"

// isCtl reports whether b is an ASCII control character (C0 or DEL).
func isCtl(b byte) bool { return b < 0x20 || b == 0x7f }

// confusable reports whether r must never appear in a decoded path: Unicode
// control and format characters (C1 controls, zero-width and bidi marks),
// non-ASCII spaces, and characters that Unicode compatibility normalisation
// (NFKC) or Windows "best fit" mappings turn into '/', '\' or '.'. An upstream
// that normalises would see a path separator or dot segment that our matching
// did not see.
func confusable(r rune) bool {
	if r < 0x80 {
		return false
	}
	if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.IsSpace(r) {
		return true
	}
	switch r {
	case '\u2024', // ONE DOT LEADER
		'\u2025',                     // TWO DOT LEADER
		'\u2026',                     // HORIZONTAL ELLIPSIS
		'\u2044',                     // FRACTION SLASH
		'\u2215',                     // DIVISION SLASH
		'\u2216',                     // SET MINUS
		'\u29f5',                     // REVERSE SOLIDUS OPERATOR
		'\u29f8',                     // BIG SOLIDUS
		'\u29f9',                     // BIG REVERSE SOLIDUS
		'\u3002',                     // IDEOGRAPHIC FULL STOP
		'\ufe52',                     // SMALL FULL STOP
		'\ufe68',                     // SMALL REVERSE SOLIDUS
		'\uff0e',                     // FULLWIDTH FULL STOP
		'\uff0f',                     // FULLWIDTH SOLIDUS
		'\uff3c',                     // FULLWIDTH REVERSE SOLIDUS
		'\uff61',                     // HALFWIDTH IDEOGRAPHIC FULL STOP
		'\u2100', '\u2101', '\u2105', // ℀ ℁ ℅: NFKC yields a '/'
		'\u2106', '\u33c2', '\u33c7', // ℆ ㏂ ㏇: NFKC yields a '.' or '/'
		utf8.RuneError:
		return true
	}
	return false
}

// asciiLower lower-cases ASCII letters only. strings.ToLower would also fold
// non-ASCII letters into ASCII ones (KELVIN SIGN U+212A becomes 'k'), which
// would let "a@\u212Aexample.com" compare equal to "a@kexample.com".
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// validDNSName reports whether s (already lower-case) is an ASCII host name
// of RFC 1123 section 2.1 form: dot-separated labels of 1 to 63 letters,
// digits and inner hyphens, at most 253 bytes, no trailing dot. A name whose
// last label is numeric ("1.2.3", "0x7f.1") is refused: browsers parse such a
// host as an IPv4 address (WHATWG URL "ends in a number"), so it would not be
// the name we compared.
func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return !endsInNumber(labels[len(labels)-1])
}

// endsInNumber reports whether a last host label would make a WHATWG URL
// parser treat the host as IPv4: all decimal digits, or "0x" and hex digits.
func endsInNumber(l string) bool {
	if strings.HasPrefix(l, "0x") {
		for i := 2; i < len(l); i++ {
			if !isHex(l[i]) {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(l); i++ {
		if l[i] < '0' || l[i] > '9' {
			return false
		}
	}
	return true
}

// parseHostPort splits and validates an RFC 3986 section 3.2.2 host with an
// optional port: a DNS name (see validDNSName), a dotted-decimal IPv4
// address, or a bracketed IPv6 address without zone. The port, when present,
// is 1 to 65535 without leading zeros. Letters are lower-cased; anything
// else, including percent-encoding, userinfo and non-ASCII, is refused.
// hostport is the canonical "host[:port]" (IPv6 in brackets).
func parseHostPort(s string) (host, port, hostport string, ok bool) {
	s = asciiLower(s)
	rest := ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", "", false
		}
		a, err := netip.ParseAddr(s[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" || a.Is4In6() {
			return "", "", "", false
		}
		host, rest = "["+a.String()+"]", s[end+1:]
		if rest != "" && rest[0] != ':' {
			return "", "", "", false
		}
	} else {
		h, p, hasPort := strings.Cut(s, ":")
		host = h
		if hasPort {
			rest = ":" + p
		}
		if a, err := netip.ParseAddr(h); err == nil {
			if !a.Is4() || a.String() != h {
				return "", "", "", false
			}
		} else if !validDNSName(h) {
			return "", "", "", false
		}
	}
	if rest != "" {
		port = rest[1:]
		if !validPort(port) {
			return "", "", "", false
		}
		return host, port, host + ":" + port, true
	}
	return host, "", host, true
}

func validPort(p string) bool {
	if p == "" || len(p) > 5 || p[0] == '0' {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
		n = n*10 + int(p[i]-'0')
	}
	return n <= 65535
}
