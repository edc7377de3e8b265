package session

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultCookieName is the base cookie name used when CookieOptions.Name is
// empty.
const DefaultCookieName = "authgate"

// MaxChunks is how many cookies one logical cookie may span: the base name
// and name_1 … name_9. Read ignores chunks beyond it, so a hostile request
// cannot make us concatenate megabytes, and Write refuses longer values.
const MaxChunks = 10

// maxSetCookie bounds each Set-Cookie header value (name, value and
// attributes). RFC 6265 §6.1 asks user agents to support at least 4096
// bytes per cookie counting all of these; staying under it works everywhere.
const maxSetCookie = 4095

// maxOwnedIndex is the highest chunk suffix Owns and Clear recognise. It is
// above MaxChunks so that chunks written by a build with a larger limit are
// still stripped and cleared.
const maxOwnedIndex = 99

// ErrCookieTooLarge is returned by Write when a value does not fit in
// MaxChunks cookies. It is a configuration fault (tokens too large for a
// cookie session), not a client one: use a server-side store instead.
var ErrCookieTooLarge = errors.New("session: value too large for cookies")

// TooLargeError is what Write returns for a value that needs more than
// MaxChunks cookies; it wraps ErrCookieTooLarge and says by how much.
type TooLargeError struct {
	Bytes  int // length of the value
	Chunks int // cookies it would need
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("write %d-byte cookie value: needs %d cookies, at most %d allowed: %v", e.Bytes, e.Chunks, MaxChunks, ErrCookieTooLarge)
}

// Unwrap returns ErrCookieTooLarge.
func (e *TooLargeError) Unwrap() error { return ErrCookieTooLarge }

// CookieOptions configures one logical cookie. The zero value is a cookie
// named "authgate" that is not Secure, with SameSite=Lax, for the host only.
type CookieOptions struct {
	// Name is the base cookie name; empty means DefaultCookieName. It must
	// be an RFC 6265 token and must not carry a __Host- or __Secure-
	// prefix: those are added from Secure and Domain.
	Name string
	// Domain, when set, shares the cookie with subdomains (RFC 6265
	// §5.2.3). Empty means host-only, which with Secure earns the
	// __Host- prefix.
	Domain string
	// Secure restricts the cookie to HTTPS and adds a name prefix
	// (draft-ietf-httpbis-rfc6265bis §4.1.3): __Host- without a Domain,
	// __Secure- with one. Only leave it false for plain-HTTP development.
	Secure bool
	// SameSite is the SameSite attribute; zero means http.SameSiteLaxMode,
	// which still sends the cookie on the top-level redirect back from the
	// OpenID Provider. SameSiteNoneMode requires Secure.
	SameSite http.SameSite
	// Now returns the current time, for Max-Age; nil means time.Now.
	Now func() time.Time
}

// Validate reports every problem with o, or nil.
func (o CookieOptions) Validate() error {
	var errs []error
	name := o.Name
	if name == "" {
		name = DefaultCookieName
	}
	if !isToken(name) {
		errs = append(errs, fmt.Errorf("cookie name %q is not an RFC 6265 token", name))
	}
	if l := strings.ToLower(name); strings.HasPrefix(l, "__host-") || strings.HasPrefix(l, "__secure-") {
		errs = append(errs, fmt.Errorf("cookie name %q must not carry a __Host-/__Secure- prefix: it is added from Secure and Domain", name))
	}
	if o.Domain != "" && !isDomain(o.Domain) {
		errs = append(errs, fmt.Errorf("cookie domain %q is not a domain name", o.Domain))
	}
	if o.SameSite == http.SameSiteNoneMode && !o.Secure {
		errs = append(errs, errors.New("cookie SameSite=None requires Secure"))
	}
	return errors.Join(errs...)
}

// Cookies reads and writes one logical cookie that may span several
// cookies ("chunks"): name, name_1, name_2, …. Every cookie has Path=/ and
// HttpOnly. The zero value is not usable: use NewCookies. A Cookies is safe
// for concurrent use.
type Cookies struct {
	name     string
	domain   string
	secure   bool
	sameSite http.SameSite
	now      func() time.Time
}

// NewCookies returns Cookies for o. It does not validate o (call
// o.Validate, as NewCookieStore does): net/http silently drops a Set-Cookie
// whose name is not a token.
func NewCookies(o CookieOptions) *Cookies {
	c := &Cookies{
		name:     o.Name,
		domain:   o.Domain,
		secure:   o.Secure,
		sameSite: o.SameSite,
		now:      o.Now,
	}
	if c.name == "" {
		c.name = DefaultCookieName
	}
	switch {
	case o.Secure && o.Domain == "":
		c.name = "__Host-" + c.name
	case o.Secure:
		c.name = "__Secure-" + c.name
	}
	if c.sameSite == 0 {
		c.sameSite = http.SameSiteLaxMode
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// Name returns the effective base cookie name, including any __Host- or
// __Secure- prefix.
func (c *Cookies) Name() string { return c.name }

// Owns reports whether cookieName is this cookie or one of its chunks, so
// the proxy can strip them from the Cookie header sent upstream.
func (c *Cookies) Owns(cookieName string) bool {
	_, ok := c.index(cookieName)
	return ok
}

// index returns the chunk number of cookieName: 0 for the base name, n for
// name_n (1 ≤ n ≤ maxOwnedIndex, no leading zero).
func (c *Cookies) index(cookieName string) (int, bool) {
	rest, ok := strings.CutPrefix(cookieName, c.name)
	if !ok {
		return 0, false
	}
	if rest == "" {
		return 0, true
	}
	if len(rest) < 2 || len(rest) > 3 || rest[0] != '_' || rest[1] == '0' {
		return 0, false
	}
	n := 0
	for _, ch := range []byte(rest[1:]) {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		n = n*10 + int(ch-'0')
	}
	return n, true
}

// chunkName returns the name of chunk i.
func (c *Cookies) chunkName(i int) string {
	if i == 0 {
		return c.name
	}
	return c.name + "_" + strconv.Itoa(i)
}

// Read returns the value of the logical cookie: the values of name, name_1,
// name_2, … joined. It reports false when the base cookie is absent or a
// chunk is missing in the middle; chunks numbered MaxChunks or higher are
// ignored. When a name repeats, the first occurrence wins (user agents send
// the cookie with the longest path first, RFC 6265 §5.4).
func (c *Cookies) Read(r *http.Request) (string, bool) {
	var vals [MaxChunks]string
	var seen uint32
	// Parse the Cookie header by hand rather than with r.Cookies: this runs
	// on every request, and r.Cookies allocates every cookie the browser
	// sends for the site.
	for _, line := range r.Header["Cookie"] {
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			name, val, _ := strings.Cut(part, "=")
			i, ok := c.index(trimOWS(name))
			if !ok || i >= MaxChunks || seen&(1<<i) != 0 {
				continue
			}
			val = trimOWS(val)
			if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
				val = val[1 : len(val)-1]
			}
			vals[i] = val
			seen |= 1 << i
		}
	}
	if seen&1 == 0 || seen&(seen+1) != 0 { // base missing, or a gap
		return "", false
	}
	if seen == 1 {
		return vals[0], true
	}
	var b strings.Builder
	n := 0
	for i := 0; seen&(1<<i) != 0; i++ {
		n += len(vals[i])
	}
	b.Grow(n)
	for i := 0; seen&(1<<i) != 0; i++ {
		b.WriteString(vals[i])
	}
	return b.String(), true
}

// Write sets the logical cookie to value, which must consist of cookie-value
// octets (RFC 6265 §4.1.1; base64url is). It splits value into as few
// chunks as keep every Set-Cookie header under 4096 bytes, and clears the
// chunks r still carries beyond the new count, so a shrinking value leaves
// no stale tail. expires is both the Expires and the Max-Age attribute;
// zero makes a browser-session cookie, a time not after now clears the
// cookie. It returns ErrCookieTooLarge, writing nothing, when value needs
// more than MaxChunks cookies.
func (c *Cookies) Write(w http.ResponseWriter, r *http.Request, value string, expires time.Time) error {
	maxAge := 0
	if !expires.IsZero() {
		maxAge = int(expires.Sub(c.now()) / time.Second)
		if maxAge <= 0 {
			c.Clear(w, r)
			return nil
		}
	}
	if value == "" {
		c.Clear(w, r)
		return nil
	}
	// Size the chunks by the longest chunk name and these attributes.
	probe := c.cookie(c.chunkName(MaxChunks-1), "")
	probe.Expires, probe.MaxAge = expires, maxAge
	size := maxSetCookie - len(probe.String())
	n := (len(value) + size - 1) / size
	if n > MaxChunks {
		return &TooLargeError{Bytes: len(value), Chunks: n}
	}
	h := w.Header()
	for i := 0; i < n; i++ {
		part := value[:min(size, len(value))]
		value = value[len(part):]
		ck := c.cookie(c.chunkName(i), part)
		ck.Expires, ck.MaxAge = expires, maxAge
		h.Add("Set-Cookie", ck.String())
	}
	c.clearPresent(h, r, n)
	return nil
}

// Clear expires the logical cookie: the base name always, and every chunk r
// carries.
func (c *Cookies) Clear(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Add("Set-Cookie", c.expired(c.name).String())
	c.clearPresent(h, r, 1)
}

// clearPresent expires every chunk numbered from or higher that r carries.
func (c *Cookies) clearPresent(h http.Header, r *http.Request, from int) {
	var seen [maxOwnedIndex + 1]bool
	for _, line := range r.Header["Cookie"] {
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			name, _, _ := strings.Cut(part, "=")
			i, ok := c.index(trimOWS(name))
			if !ok || i < from || seen[i] {
				continue
			}
			seen[i] = true
		}
	}
	for i := from; i <= maxOwnedIndex; i++ {
		if seen[i] {
			h.Add("Set-Cookie", c.expired(c.chunkName(i)).String())
		}
	}
}

// cookie returns a cookie with this logical cookie's attributes. A clearing
// cookie must carry the same ones: a browser rejects a __Host- cookie
// without Secure and Path=/, so a bare clear would silently fail.
func (c *Cookies) cookie(name, value string) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		Domain:   c.domain,
		Secure:   c.secure,
		HttpOnly: true,
		SameSite: c.sameSite,
	}
}

func (c *Cookies) expired(name string) *http.Cookie {
	ck := c.cookie(name, "")
	ck.MaxAge = -1               // "Max-Age=0": delete now (RFC 6265 §5.2.2)
	ck.Expires = time.Unix(0, 0) // for user agents that ignore Max-Age
	return ck
}

// trimOWS trims the spaces and tabs around a cookie-pair (RFC 6265 §5.2).
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// isToken reports whether s is an RFC 7230 §3.2.6 token, which RFC 6265
// §4.1.1 requires of a cookie name.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, ch := range []byte(s) {
		switch {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", ch) >= 0:
		default:
			return false
		}
	}
	return true
}

// isDomain reports whether s looks like a domain name (letters, digits,
// hyphens and dots, an optional leading dot).
func isDomain(s string) bool {
	s = strings.TrimPrefix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, ch := range []byte(label) {
			if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '-') {
				return false
			}
		}
	}
	return true
}
