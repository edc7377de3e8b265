package upstream

import (
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

	h := pr.Out.Header
	deleteUntrusted(h)
	// Client-sent X-Forwarded-* are gone; set them from this hop only. A
	// later change may trust the values from configured proxies.
	pr.SetXForwarded()
	if p.isOwnCookie != nil {
		deleteCookies(h, p.isOwnCookie)
	}
	// ServeHTTP put a valid id on In; copy it again in case the client named
	// the header in Connection.
	if v := pr.In.Header[p.ridHeader]; len(v) > 0 {
		h[p.ridHeader] = v
	}

	id := identityFrom(pr.In.Context())
	if id == nil {
		return
	}
	if id.AccessToken != "" {
		h[headerAuthorization] = []string{"Bearer " + id.AccessToken} // RFC 6750 section 2.1
	}
	setNonEmpty(h, headerUser, id.User)
	setNonEmpty(h, headerEmail, id.Email)
	setNonEmpty(h, headerPreferredUsername, id.PreferredUsername)
	if len(id.Groups) > 0 {
		// Comma-joined like oauth2-proxy; a group name holding a comma is
		// ambiguous to the upstream.
		setNonEmpty(h, headerGroups, strings.Join(id.Groups, ","))
	}
}

func setNonEmpty(h http.Header, key, value string) {
	if value != "" {
		h[key] = []string{value}
	}
}

// deleteUntrusted deletes every header a client could use to claim an
// identity or a forwarding path, in every spelling: names are compared
// case-insensitively with '_' equal to '-', because CGI-style servers (and
// many frameworks) fold X_Forwarded_User and X-Forwarded-User into the same
// HTTP_X_FORWARDED_USER variable, letting the client's copy win.
// Deleted: Authorization, Forwarded, X-Real-Ip, X-Forwarded-* (User, Email,
// Groups, Preferred-Username, Access-Token, For, Host, Proto, ...) and
// X-Auth-Request-*. It allocates nothing when no header matches.
func deleteUntrusted(h http.Header) {
	for k := range h {
		if isUntrusted(k) {
			delete(h, k) // deleting during range is allowed
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

// deleteCookies removes the cookies own reports from the Cookie header(s),
// keeping the others in order in a single Cookie header (RFC 6265 section
// 5.4 allows one; HTTP/2 clients may send several, RFC 9113 section
// 8.2.3). The header is dropped when nothing is left and left untouched when
// no cookie is ours.
func deleteCookies(h http.Header, own func(string) bool) {
	vals := h["Cookie"]
	if len(vals) == 0 {
		return
	}
	found := false
	for _, v := range vals {
		if hasOwnCookie(v, own) {
			found = true
			break
		}
	}
	if !found {
		return
	}
	var b strings.Builder
	for _, v := range vals {
		for part := range strings.SplitSeq(v, ";") {
			part = textproto.TrimString(part)
			if part == "" {
				continue
			}
			name, _, _ := strings.Cut(part, "=")
			if own(textproto.TrimString(name)) {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(part)
		}
	}
	if b.Len() == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = []string{b.String()}
}

func hasOwnCookie(v string, own func(string) bool) bool {
	for part := range strings.SplitSeq(v, ";") {
		name, _, _ := strings.Cut(part, "=")
		if name = textproto.TrimString(name); name != "" && own(name) {
			return true
		}
	}
	return false
}
