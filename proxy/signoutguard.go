package proxy

import (
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// signOutVerdict is what serveSignOut does with a request.
type signOutVerdict int

const (
	signOutNow     signOutVerdict = iota // end the session
	signOutConfirm                       // show a page whose button POSTs
	signOutRefuse                        // 403: a cross-site POST
)

// signOutDecision keeps sign-out from being a cross-site request: an
// <img src> or a form on another site must not sign our users out and
// revoke their refresh tokens. It uses Fetch Metadata
// (https://www.w3.org/TR/fetch-metadata/) and, for POSTs from browsers
// without it, the Origin header (RFC 6454 section 7):
//   - POST: Sec-Fetch-Site same-origin, or, without Sec-Fetch-Site, an
//     Origin naming this host, or no Origin at all (an API client: browsers
//     send Origin on every cross-origin POST) signs out; anything else
//     (cross-site, same-site, Origin "null" or another host) is refused;
//   - GET: Sec-Fetch-Site same-origin (a link on our pages) or none (typed,
//     bookmarked) signs out; anything else, including no Fetch Metadata at
//     all (old browsers, curl, an <img> in a browser without it), gets the
//     confirmation page.
func signOutDecision(r *http.Request) signOutVerdict {
	site := r.Header.Get("Sec-Fetch-Site")
	if r.Method == http.MethodPost {
		switch {
		case site == "same-origin":
			return signOutNow
		case site != "":
			return signOutRefuse
		}
		origins := r.Header.Values("Origin")
		switch {
		case len(origins) == 0:
			return signOutNow
		case len(origins) == 1 && sameOriginHost(origins[0], r.Host):
			return signOutNow
		}
		return signOutRefuse
	}
	if site == "same-origin" || site == "none" {
		return signOutNow
	}
	return signOutConfirm
}

// sameOriginHost reports whether origin (an Origin header value) names
// host, the request's Host. The scheme is not compared: behind a
// TLS-terminating proxy authgate cannot tell it, and a browser never sends
// another site's host as the Origin of a request to this one.
func sameOriginHost(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || host == "" ||
		u.Path != "" || u.RawQuery != "" || u.User != nil {
		return false
	}
	return strings.EqualFold(u.Host, host)
}

// writeSignOutPage writes the confirmation page by hand, every value
// escaped, rather than with html/template (see writeErrorPage: the
// template package's method lookups by name keep unused methods in the
// binary).
func writeSignOutPage(w io.Writer, action, rd string) {
	esc := html.EscapeString
	io.WriteString(w, `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Sign out</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}button{font-size:1rem;padding:.5rem 1rem}</style></head>
<body><h1>Sign out?</h1><p>Another page asked to sign you out. Confirm to end your session.</p>
<form method="post" action="`+esc(action)+`"><input type="hidden" name="rd" value="`+esc(rd)+`"><button type="submit">Sign out</button></form>
</body></html>
`)
}

// confirmSignOut answers a sign-out GET that may come from another site
// with a page whose button POSTs the sign-out (same-origin, so it passes
// signOutDecision). It needs no script, so a strict CSP holds; form-action
// is left out because browsers apply it to the redirect that follows the
// POST, and that goes to the IdP's end_session_endpoint.
func (h *Handler) confirmSignOut(w http.ResponseWriter, r *http.Request, rd string) {
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("X-Frame-Options", "DENY")
	if !acceptsHTML(r) {
		hdr.Set("Allow", "POST")
		h.writeError(w, r, problem{Status: http.StatusForbidden, Code: "sign_out_needs_post",
			Description: "Sign out with POST (or a same-origin GET from a browser that sends Fetch Metadata)."})
		return
	}
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	writeSignOutPage(w, h.signOutPath, rd)
}
