package upstream

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strings"
)

// Headers set for the upstream from the Identity.
const (
	headerAuthorization     = "Authorization"
	headerUser              = "X-Forwarded-User"
	headerEmail             = "X-Forwarded-Email"
	headerGroups            = "X-Forwarded-Groups"
	headerPreferredUsername = "X-Forwarded-Preferred-Username"
)

// rewrite is the ReverseProxy's Rewrite. It runs after ReverseProxy has
// removed the hop-by-hop headers, including any the client listed in
// Connection, so what it sets reaches the upstream: a client sending
// "Connection: Authorization" cannot strip the bearer (the reason Director
// is not used).
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(p.target)
	// SetURL sets the target's Host; forward the client's instead so that the
	// upstream's redirects and absolute URLs name the host the browser used.
	pr.Out.Host = pr.In.Host

	h := headerSetter{h: pr.Out.Header}
	deleteUntrusted(h.h, p.passRouting)

	// Client-sent X-Forwarded-* are gone (deleteUntrusted read them from
	// pr.Out, not pr.In). Set them from what trusted proxies reported, or
	// else from this hop only, as ProxyRequest.SetXForwarded does (without
	// its allocations).
	if ip, host, proto, ok := p.trustedForwarded(pr.In); ok {
		h.set("X-Forwarded-For", ip)
		h.set("X-Forwarded-Host", host)
		h.set("X-Forwarded-Proto", proto)
	} else {
		if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
			h.set("X-Forwarded-For", ip)
		}
		h.set("X-Forwarded-Host", pr.In.Host)
		if pr.In.TLS != nil {
			h.set("X-Forwarded-Proto", "https")
		} else {
			h.set("X-Forwarded-Proto", "http")
		}
	}

	if p.isOwnCookie != nil {
		if c, changed := withoutOwnCookies(h.h["Cookie"], p.isOwnCookie); changed {
			delete(h.h, "Cookie")
			h.set("Cookie", c) // nothing when no cookie is left
		}
	}
	// ServeHTTP put a valid id on In; copy it again in case the client named
	// the header in Connection.
	if v := pr.In.Header[p.ridHeader]; len(v) > 0 {
		h.h[p.ridHeader] = v
	}

	if id := identityFrom(pr.In.Context()); id != nil {
		id.setHeaders(&h)
	}
}

// SetHeaders sets on h the headers the upstream receives for id:
// Authorization (Bearer), X-Forwarded-User, -Email, -Preferred-Username and
// -Groups, skipping empty values. Forward-auth answers carry exactly these,
// so a front proxy passes on what proxy mode would send.
func (id *Identity) SetHeaders(h http.Header) {
	id.setHeaders(&headerSetter{h: h})
}

func (id *Identity) setHeaders(h *headerSetter) {
	if id.AccessToken != "" {
		h.set(headerAuthorization, "Bearer "+id.AccessToken) // RFC 6750 section 2.1
	}
	h.set(headerUser, id.User)
	h.set(headerEmail, id.Email)
	h.set(headerPreferredUsername, id.PreferredUsername)
	// Comma-joined like oauth2-proxy; a group name holding a comma is
	// ambiguous to the upstream.
	h.set(headerGroups, strings.Join(id.Groups, ","))
}

// headerSetter sets single-value headers, skipping empty values, with the
// value slices cut from one shared array: one allocation instead of one a
// header. Each slice's capacity is capped at its length, so an append by a
// later user copies instead of overwriting a neighbour.
type headerSetter struct {
	h    http.Header
	vals []string
}

func (s *headerSetter) set(key, value string) {
	if value == "" {
		return
	}
	if len(s.vals) == cap(s.vals) {
		s.vals = make([]string, 0, 10) // enough for every header rewrite sets
	}
	s.vals = append(s.vals, value)
	n := len(s.vals)
	s.h[key] = s.vals[n-1 : n : n]
}

// deleteUntrusted deletes every header a client could use to claim an
// identity or a forwarding path, or to make the upstream route a request
// other than the one authgate checked, in every spelling: names are compared
// case-insensitively with '_' equal to '-', because CGI-style servers (and
// many frameworks) fold X_Forwarded_User and X-Forwarded-User into the same
// HTTP_X_FORWARDED_USER variable, letting the client's copy win.
// Deleted: Authorization, Forwarded, X-Real-Ip, X-Forwarded-* (User, Email,
// Groups, Preferred-Username, Access-Token, For, Host, Proto, ...),
// X-Auth-Request-*, and the RoutingHeaders not in pass. It allocates
// nothing when no header matches.
func deleteUntrusted(h http.Header, pass routingSet) {
	for k := range h {
		if isUntrusted(k) {
			delete(h, k) // deleting during range is allowed
		} else if bit := routingBit(k); bit != 0 && pass&bit == 0 {
			delete(h, k)
		}
	}
}

func isUntrusted(k string) bool {
	switch len(k) {
	case len("authorization"):
		return foldEqual(k, "authorization")
	case len("forwarded"): // == len("x-real-ip")
		return foldEqual(k, "forwarded") || foldEqual(k, "x-real-ip")
	}
	return foldHasPrefix(k, "x-forwarded-") || foldHasPrefix(k, "x-auth-request-")
}

// foldHasPrefix reports whether s begins with prefix, ignoring ASCII case and
// treating '_' as '-'. prefix must be lower case.
func foldHasPrefix(s, prefix string) bool {
	return len(s) >= len(prefix) && foldEqual(s[:len(prefix)], prefix)
}

// foldEqual reports whether s equals lower, ignoring ASCII case and treating
// '_' as '-'. lower must be lower case.
func foldEqual(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// withoutOwnCookies returns the Cookie header values vals without the
// cookies own reports, the others kept in order in one value (RFC 6265
// section 5.4 wants a single Cookie header; HTTP/2 clients may send several,
// RFC 9113 section 8.2.3). changed is false when no cookie is ours; an empty
// result means no cookie is left. Nothing is allocated unless two or more
// cookies are kept: a single kept cookie is returned as a substring, and
// the common case of a request carrying only authgate's session cookie (a
// few KB, in chunks) keeps nothing.
func withoutOwnCookies(vals []string, own func(string) bool) (cookie string, changed bool) {
	// One pass finds whether any cookie is ours and measures what is kept.
	kept, n := 0, 0
	var only string
	for _, v := range vals {
		for v != "" {
			var part string
			part, v, _ = strings.Cut(v, ";")
			if cookiePart(part, own, &changed) {
				kept++
				only = textproto.TrimString(part)
				n += len(only)
			}
		}
	}
	switch {
	case !changed:
		return "", false
	case kept <= 1:
		return only, true
	}
	var b strings.Builder
	b.Grow(n + 2*(kept-1))
	for _, v := range vals {
		for v != "" {
			var part string
			part, v, _ = strings.Cut(v, ";")
			if cookiePart(part, own, &changed) {
				if b.Len() > 0 {
					b.WriteString("; ")
				}
				b.WriteString(textproto.TrimString(part))
			}
		}
	}
	return b.String(), true
}

// cookiePart reports whether the cookie-pair part (untrimmed, between
// semicolons) is kept: it is not empty and own does not claim its name. It
// sets *ours when own claims a non-empty name.
func cookiePart(part string, own func(string) bool, ours *bool) (keep bool) {
	name, _, _ := strings.Cut(part, "=")
	name = textproto.TrimString(name)
	if name != "" && own(name) {
		*ours = true
		return false
	}
	// An empty name is asked about too, as the filter always did.
	return textproto.TrimString(part) != "" && (name != "" || !own(name))
}

// trustedForwarded asks Options.Forwarded about r; ok is false without one.
func (p *Proxy) trustedForwarded(r *http.Request) (clientIP, host, proto string, ok bool) {
	if p.forwarded == nil {
		return "", "", "", false
	}
	clientIP, host, proto, ok = p.forwarded(r)
	return clientIP, host, proto, ok && clientIP != "" && host != "" && proto != ""
}

// HeaderReaches reports whether the client's header name, in a request
// with header h, reaches the upstream as the client sent it. It does not
// for hop-by-hop headers (RFC 9110 section 7.6.1, including every name
// listed in Connection), for the identity and forwarding headers
// deleteUntrusted removes, and for Cookie, from which authgate's own
// cookies are removed. Routes show an allow expression only these, so
// that a rule never decides on a header the upstream would not see.
func HeaderReaches(h http.Header, name string) bool {
	if isUntrusted(name) || isHopByHop(name) || foldEqual(name, "cookie") {
		return false
	}
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			// '_' as '-' on both sides: it hides a little more than
			// ReverseProxy removes, never less.
			if foldEqual(name, strings.ReplaceAll(strings.ToLower(strings.TrimSpace(f)), "_", "-")) {
				return false
			}
		}
	}
	return true
}

func isHopByHop(k string) bool {
	for _, hop := range [...]string{"connection", "proxy-connection", "keep-alive", "proxy-authenticate",
		"proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"} {
		if foldEqual(k, hop) {
			return true
		}
	}
	return false
}
