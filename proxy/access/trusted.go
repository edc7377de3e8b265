package access

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// TrustedProxies is the set of direct peers whose X-Forwarded-* headers are
// believed. Its zero value and a nil *TrustedProxies trust no peer: unlike
// oauth2-proxy before GHSA-7x63-xv5r-3p2x (and issue #3506), there is no
// "trust everyone" default, and ParseTrustedProxies refuses 0.0.0.0/0 and ::/0.
type TrustedProxies struct {
	prefixes []netip.Prefix
}

// ParseTrustedProxies parses CIDR prefixes ("10.0.0.0/8", "fd00::/8") and
// single addresses ("127.0.0.1", "::1"), IPv4 or IPv6. IPv4-mapped IPv6
// forms are unmapped, so "::ffff:10.0.0.1" and "10.0.0.1" are the same peer.
// Zones, host bits set in a prefix ("10.0.0.1/8"), prefixes of length 0 (which
// would trust every client) and empty entries are errors. An empty list
// trusts no peer.
func ParseTrustedProxies(cidrs []string) (*TrustedProxies, error) {
	t := &TrustedProxies{}
	for _, c := range cidrs {
		var p netip.Prefix
		if strings.Contains(c, "/") {
			var err error
			p, err = netip.ParsePrefix(c)
			if err != nil {
				return nil, fmt.Errorf("parse trusted proxies: %q: %w", c, err)
			}
			if p.Masked() != p {
				return nil, fmt.Errorf("parse trusted proxies: %q: host bits set; did you mean %s?", c, p.Masked())
			}
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
		} else {
			a, err := netip.ParseAddr(c)
			if err != nil {
				return nil, fmt.Errorf("parse trusted proxies: %q: %w", c, err)
			}
			if a.Zone() != "" {
				return nil, fmt.Errorf("parse trusted proxies: %q: zones are not supported", c)
			}
			a = a.Unmap()
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Bits() == 0 {
			return nil, fmt.Errorf("parse trusted proxies: %q: trusting every address would trust every client", c)
		}
		t.prefixes = append(t.prefixes, p)
	}
	return t, nil
}

// Trusted reports whether remoteAddr, in http.Request.RemoteAddr form
// ("host:port", "[v6]:port"), is a trusted proxy. A remoteAddr that does
// not parse (a Unix socket's "@" or "") is not trusted.
func (t *TrustedProxies) Trusted(remoteAddr string) bool {
	a, ok := peerAddr(remoteAddr)
	return ok && t.contains(a)
}

func (t *TrustedProxies) contains(a netip.Addr) bool {
	if t == nil {
		return false
	}
	a = a.Unmap()
	for _, p := range t.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr extracts the address from a RemoteAddr.
func peerAddr(remoteAddr string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// Forwarded is the request as the client made it, before any trusted proxy
// in front of authgate. Its zero value describes nothing and must not be
// used for a decision.
type Forwarded struct {
	// Method is the client's request method, upper-case.
	Method string
	// Host is the canonical lower-case "host[:port]" the client asked for,
	// or "" when no valid host is known.
	Host string
	// URI is the client's request target in origin form: a path starting
	// with "/" and an optional "?query", no fragment. Its path still needs
	// NormalizePath.
	URI string
	// Proto is "http" or "https".
	Proto string
	// For is the client's IP address (no port), or "" when unknown.
	For string
}

// Forwarded returns what the client asked for and true when the direct peer
// (r.RemoteAddr) is a trusted proxy; otherwise it returns the request's own
// values and false, ignoring every forwarding header (a client's own
// X-Forwarded-Uri can never steer a decision).
//
// From a trusted peer these headers are read:
//   - X-Forwarded-Method, or X-Original-Method (ingress-nginx): Method;
//   - X-Forwarded-Host: Host;
//   - X-Forwarded-Uri (Traefik, Caddy), or X-Original-URI (the nginx
//     auth_request convention "proxy_set_header X-Original-URI
//     $request_uri"): URI;
//   - X-Forwarded-Proto: Proto;
//   - X-Forwarded-For: For.
//
// The RFC 7239 Forwarded header and X-Original-URL are not read.
//
// Each single-valued field comes from its header only when the header(s)
// carry exactly one distinct value, and that value is valid: Method an upper-case
// token; Host a host[:port] (see NewRedirectHosts); URI starting with "/",
// of visible ASCII without "#" or "\", parseable by url.ParseRequestURI;
// Proto "http" or "https". A missing, repeated, comma-separated or invalid
// value falls back to the request's own value for that field, so a chain of
// proxies that appends rather than replaces these headers fails closed
// instead of letting the client's first value win. The trusted proxy must
// therefore SET (replace) these headers, never pass the client's through.
//
// X-Forwarded-For is walked from the right (RFC 7239 section 5.2 order):
// addresses of trusted proxies are skipped and the first untrusted address
// is the client. A malformed entry stops the walk, and the last good
// address (a trusted proxy) is reported instead of anything to its left.
func (t *TrustedProxies) Forwarded(r *http.Request) (Forwarded, bool) {
	own := Forwarded{
		Method: r.Method,
		URI:    ownURI(r),
		Proto:  "http",
	}
	if r.TLS != nil {
		own.Proto = "https"
	}
	if _, _, hp, ok := parseHostPort(r.Host); ok {
		own.Host = hp
	}
	peer, ok := peerAddr(r.RemoteAddr)
	if ok {
		own.For = peer.String()
	}
	if !ok || !t.contains(peer) {
		return own, false
	}
	f := own
	if v, ok := single(r.Header, false, "X-Forwarded-Method", "X-Original-Method"); ok && validMethod(v) {
		f.Method = v
	}
	if v, ok := single(r.Header, false, "X-Forwarded-Host"); ok {
		if _, _, hp, ok := parseHostPort(v); ok {
			f.Host = hp
		}
	}
	if v, ok := single(r.Header, true, "X-Forwarded-Uri", "X-Original-Uri"); ok && validURI(v) {
		f.URI = v
	}
	if v, ok := single(r.Header, false, "X-Forwarded-Proto"); ok {
		switch asciiLower(v) {
		case "http", "https":
			f.Proto = asciiLower(v)
		}
	}
	f.For = t.clientIP(r.Header.Values("X-Forwarded-For"), peer).String()
	return f, true
}

// ownURI returns the request's own target in origin form.
func ownURI(r *http.Request) string {
	if r.URL == nil {
		return "/"
	}
	u := r.URL.EscapedPath()
	if u == "" {
		u = "/"
	}
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	return u
}

// single returns the one distinct value carried by the named headers
// (surrounding space trimmed). It reports false when they are absent, carry
// different values (several lines, or two names that disagree) or, unless
// commaOK, hold a comma-separated list. URIs may contain commas.
func single(h http.Header, commaOK bool, names ...string) (string, bool) {
	var v string
	n := 0
	for _, name := range names {
		for _, x := range h.Values(name) {
			x = strings.TrimSpace(x)
			if n > 0 && x == v {
				continue
			}
			v = x
			n++
		}
	}
	if n != 1 || v == "" || !commaOK && strings.IndexByte(v, ',') >= 0 {
		return "", false
	}
	return v, true
}

// validURI reports whether v is an acceptable origin-form request target.
func validURI(v string) bool {
	if !strings.HasPrefix(v, "/") || len(v) > maxRedirectLen*2 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] >= 0x7f || v[i] == '#' || v[i] == '\\' {
			return false
		}
	}
	_, err := url.ParseRequestURI(v)
	return err == nil
}

// clientIP walks X-Forwarded-For from the right, starting from the trusted
// direct peer.
func (t *TrustedProxies) clientIP(xff []string, peer netip.Addr) netip.Addr {
	var hops []string
	for _, line := range xff {
		hops = append(hops, strings.Split(line, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil || a.Zone() != "" {
			break
		}
		client = a.Unmap()
		if !t.contains(client) {
			break
		}
	}
	return client
}
