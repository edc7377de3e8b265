package proxy

import (
	"crypto/sha256"
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// deepLinkScript sends the browser to login with the whole URL it is on:
// the path and query the server saw (the meta element "rd", exactly what
// the 302 would have kept) plus location.hash, which browsers never send.
// Without this, a hash-routed deep link (/app/#/settings) loses its
// fragment at the IdP's form POST (oauth2-proxy #473, #578, #1205, #2014,
// #2068, #2716; lua-resty-openidc #469). It is constant, so the page's CSP
// allows exactly it by hash and nothing else.
const deepLinkScript = `var m=function(n){return document.querySelector('meta[name="'+n+'"]').content};` +
	`location.replace(m("authgate-start")+"?rd="+encodeURIComponent(m("authgate-rd")+location.hash));`

// deepLinkCSP allows the one script above and nothing else: no other
// script, no style, no frames, no plugins, no form, no base URL.
var deepLinkCSP = func() string {
	sum := sha256.Sum256([]byte(deepLinkScript))
	return "default-src 'none'; script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
}()

// writeDeepLinkPage writes the page by hand, every value escaped for its
// attribute, rather than with html/template (see writeErrorPage).
func writeDeepLinkPage(w io.Writer, start, rd, fallback string) {
	esc := html.EscapeString
	io.WriteString(w, `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Signing in…</title>
<meta name="authgate-start" content="`+esc(start)+`"><meta name="authgate-rd" content="`+esc(rd)+`">
<noscript><meta http-equiv="refresh" content="0;url=`+esc(fallback)+`"></noscript>
<script>`+deepLinkScript+`</script></head>
<body><p><a href="`+esc(fallback)+`">Continue to sign in</a></p></body></html>
`)
}

// wantsDeepLinkPage reports whether an unauthenticated navigation gets the
// deep-link page rather than the 302: only a GET that says, through Fetch
// Metadata, that it is a navigation. Clients without Fetch Metadata (old
// browsers, curl) keep the 302, as do HEAD requests.
func wantsDeepLinkPage(r *http.Request) bool {
	return r.Method == http.MethodGet && r.Header.Get("Sec-Fetch-Mode") == "navigate"
}

// serveDeepLinkPage answers an unauthenticated navigation with a tiny page
// whose script starts the login with the full URL, fragment included. A
// browser without JavaScript follows the <noscript> refresh instead, which
// is today's redirect (the fragment is lost); the link in the body is for a
// browser whose extensions blocked the script.
func (h *Handler) serveDeepLinkPage(w http.ResponseWriter, r *http.Request) {
	rd := h.safeRedirect(r.URL.RequestURI())
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Security-Policy", deepLinkCSP)
	hdr.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusOK)
	h.outcome(w, outcomeLoginRedirect, http.StatusOK)
	writeDeepLinkPage(w, h.startPath, rd, h.startPath+"?rd="+url.QueryEscape(rd))
}

// isDeepLinkPage reports whether body is the page serveDeepLinkPage
// writes, for tests and tools that follow it without running its script.
func isDeepLinkPage(body string) bool {
	return strings.Contains(body, `<meta name="authgate-rd"`)
}
