package proxy

import (
	"net/http"
	"strings"
)

// isNavigation reports whether r is a top-level browser navigation, the only
// kind of request that may be answered with a redirect to the login page.
// Everything else (fetch/XHR, JSON, WebSocket, event streams, non-GET) gets a
// 401: a login page in answer to an API call is a bug in most proxies.
func isNavigation(r *http.Request) bool { return navigation(r.Method, r.Header) }

// navigation is isNavigation for a request described by its method and
// headers; forward-auth uses it on the original request, whose method a
// trusted proxy names in a header.
func navigation(method string, h http.Header) bool {
	if method != http.MethodGet && method != http.MethodHead {
		return false
	}
	// Fetch Metadata (https://www.w3.org/TR/fetch-metadata/) says exactly
	// what the browser is doing; trust it when it is present.
	if mode := h.Get("Sec-Fetch-Mode"); mode != "" {
		return mode == "navigate"
	}
	if h.Get("Upgrade") != "" {
		return false
	}
	return headerAcceptsHTML(h)
}

// acceptsHTML reports whether the Accept header lists text/html, which every
// browser sends for navigations and which API clients rarely do.
func acceptsHTML(r *http.Request) bool { return headerAcceptsHTML(r.Header) }

func headerAcceptsHTML(h http.Header) bool {
	for _, v := range h.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			mt, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			mt = strings.ToLower(strings.TrimSpace(mt))
			if mt != "text/html" && mt != "application/xhtml+xml" {
				continue
			}
			if strings.Contains(strings.ReplaceAll(params, " ", ""), "q=0") && !strings.Contains(params, "q=0.") {
				continue // q=0 means "not acceptable"
			}
			return true
		}
	}
	return false
}
