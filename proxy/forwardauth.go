package proxy

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/authgate/authgate/proxy/access"
	"github.com/authgate/authgate/upstream"
)

// serveAuth answers a forward-auth request: may the original request, which
// a front proxy (nginx auth_request, Traefik ForwardAuth, Envoy ext_authz
// over HTTP) holds back, go to the application? path is the normalised
// path of the auth request itself.
//
// The original request is read from the trusted proxy's headers
// (access.TrustedProxies.Forwarded: X-Forwarded-Method or
// X-Original-Method, X-Forwarded-Host, X-Forwarded-Uri or X-Original-URI,
// X-Forwarded-Proto). Envoy instead appends the original path to the
// auth path (<prefix>/auth/original/path?query), which is used when a
// trusted peer sends no URI header. From an untrusted peer every such
// header is ignored: the decision is then about the auth request itself,
// which is never public.
//
// Answers, for the same public paths, bearer tokens and policy (or the
// same routes, applied to the original method, path and host) as proxy
// mode:
//   - 202 Accepted, with Authorization and the X-Forwarded-* identity
//     headers for a valid session (after refreshing it if needed; the new
//     cookie is in the answer's Set-Cookie) or bearer token, and with none
//     of them for a public path;
//   - 401 without a usable session, with an RFC 6750 challenge; a refused
//     bearer token always gets 401;
//   - 403 for a signed-in user (or token) the policy refuses;
//   - 403 (400 in redirect mode) for an ambiguous original path: nginx's
//     auth_request turns a 400 into a 500, and its error_page location then
//     shows authgate's 400 page through redirect mode.
//
// With ?mode=redirect (Traefik, or nginx's error_page location), a
// browser navigation without a session is answered with the redirect that
// starts a login, returning to the original URL afterwards, instead of 401;
// API clients still get 401.
//
// A public path must match as sent: the front proxy forwards the client's
// path, not authgate's normalised one, so a path that normalisation would
// change (a doubled slash, a dot segment, lower-case escapes) is never
// public here and needs a session.
func (h *Handler) serveAuth(w http.ResponseWriter, r *http.Request, path string) {
	redirectMode := path == h.authPath && r.URL.Query().Get("mode") == "redirect"
	f, trusted := h.trusted.Forwarded(r)
	uri := f.URI
	if trusted && path != h.authPath && uri == ownURI(r) {
		uri = strings.TrimPrefix(uri, h.authPath) // Envoy's path_prefix form
	}
	rawPath, query, hasQuery := strings.Cut(uri, "?")
	norm, err := access.NormalizePath(rawPath)
	if err != nil {
		p := problemAmbiguousPath
		if !redirectMode {
			// nginx's auth_request turns any status but 2xx, 401 and 403
			// into a 500; a client fault must not become a server error.
			p.Status = http.StatusForbidden
		}
		h.rejectPathWith(w, r, err, p)
		return
	}
	target := norm
	if hasQuery {
		target += "?" + query
	}
	// Where a login started from here returns: the original URL when its
	// host is allowed, else the same path on authgate's own origin.
	rd := target
	if f.Host != "" {
		if abs, ok := h.redirectHosts.SafeAbsolute(f.Proto + "://" + f.Host + target); ok {
			rd = abs
		}
	}
	unauthenticated := func() {
		if redirectMode && navigation(f.Method, r.Header) {
			h.startLogin(w, r, rd)
			return
		}
		p := problemUnauthenticated
		p.LoginURL = h.startPath + "?rd=" + url.QueryEscape(h.safeRedirect(rd))
		h.writeError(w, r, p)
		h.outcome(w, outcomeUnauthenticated, http.StatusUnauthorized)
	}

	// A path that normalisation changed is never public here: the front
	// proxy forwards it as sent. With routes, the first non-public route
	// that matches decides it instead.
	d, ok := h.decide(w, r, f.Method, norm, norm != rawPath)
	if !ok {
		return
	}
	if d.public {
		h.authorized(w, nil)
		return
	}
	d.host = f.Host
	if h.bearer != nil {
		if token, present := bearerToken(r.Header); present {
			if id, ok := h.verifyBearer(w, r, token, d); ok {
				h.authorized(w, id)
			}
			return
		}
	}
	s, ok := h.loadSession(w, r)
	if !ok {
		return
	}
	if s == nil {
		unauthenticated()
		return
	}
	if !h.allowSession(w, r, s, d) {
		return
	}
	if s, ok = h.fresh(w, r, s, unauthenticated); ok {
		id := sessionIdentity(s)
		h.authorized(w, &id)
	}
}

// authorized answers 202 with id's headers; nil (a public path) sends none.
func (h *Handler) authorized(w http.ResponseWriter, id *upstream.Identity) {
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	if id != nil {
		// The same headers, with the same values, as the upstream receives
		// in proxy mode, for the front proxy to copy onto the request it
		// forwards (nginx auth_request_set, Traefik authResponseHeaders,
		// Envoy allowed_upstream_headers).
		id.SetHeaders(hdr)
		noteSubject(w, id.User)
	}
	w.WriteHeader(http.StatusAccepted)
	h.outcome(w, outcomeAuthorized, http.StatusAccepted)
}

// ownURI is the auth request's own target in origin form, as
// access.TrustedProxies.Forwarded computes it when no header overrides it.
func ownURI(r *http.Request) string {
	u := r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	return u
}
