package proxy

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// problem is an error answer: status, a stable machine-readable code and a
// sentence safe to show to anyone. It never carries an internal error text.
type problem struct {
	Status      int
	Code        string
	Description string
	// RetryAfter, when positive, is sent as Retry-After (seconds).
	RetryAfter int
	// LoginURL, when set, is offered as a link on the HTML page.
	LoginURL string
	// SignOutURL, when set, is offered as a link on the HTML page.
	SignOutURL string
}

var (
	problemUnauthenticated  = problem{Status: http.StatusUnauthorized, Code: "unauthenticated", Description: "Sign-in required."}
	problemIdPUnavailable   = problem{Status: http.StatusServiceUnavailable, Code: "idp_unavailable", Description: "The identity provider cannot be reached right now. Try again shortly.", RetryAfter: 5}
	problemStoreUnavailable = problem{Status: http.StatusServiceUnavailable, Code: "session_store_unavailable", Description: "Sessions cannot be read right now. Try again shortly.", RetryAfter: 5}
	problemBadGateway       = problem{Status: http.StatusBadGateway, Code: "bad_gateway", Description: "The application behind this proxy cannot be reached."}
	problemGatewayTimeout   = problem{Status: http.StatusGatewayTimeout, Code: "gateway_timeout", Description: "The application behind this proxy did not answer in time."}
	problemInternal         = problem{Status: http.StatusInternalServerError, Code: "internal_error", Description: "Internal error."}
	problemForbidden        = problem{Status: http.StatusForbidden, Code: "forbidden", Description: "You are signed in, but this account may not use this application."}
	problemRouteForbidden   = problem{Status: http.StatusForbidden, Code: "forbidden", Description: "You are signed in, but this account may not use this page."}
	problemNoRoute          = problem{Status: http.StatusForbidden, Code: "forbidden", Description: "No access rule covers this address."}
	problemAmbiguousPath    = problem{Status: http.StatusBadRequest, Code: "ambiguous_path", Description: "The request path is ambiguous (encoded slashes or dots, backslashes, dot segments above the root, control characters, ...) and was refused."}
	problemInvalidToken     = problem{Status: http.StatusUnauthorized, Code: "invalid_token", Description: "The access token was refused."}
)

// writeErrorPage writes the HTML error page. It is built by hand rather
// than with html/template: text/template's method lookups by name
// (reflect.Value.MethodByName) make the linker keep every exported method
// of every type that is ever stored in an interface, which kept, for
// example, go-redis's ~1,300 commands on each of its six client types in
// the binary (issue 12: binary size and resident memory). Every value is
// escaped for its context; links are only ever our own absolute paths.
func writeErrorPage(w io.Writer, p problem, statusText, requestID string) {
	esc := html.EscapeString
	var b strings.Builder
	b.WriteString(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>`)
	b.WriteString(strconv.Itoa(p.Status) + " " + esc(statusText))
	b.WriteString(`</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}code{color:#666}a{color:#0b57d0}</style></head>
<body><h1>`)
	b.WriteString(esc(statusText) + "</h1><p>" + esc(p.Description) + "</p>\n")
	if isLocalPath(p.LoginURL) {
		b.WriteString(`<p><a href="` + esc(p.LoginURL) + `">Sign in again</a></p>` + "\n")
	}
	if isLocalPath(p.SignOutURL) {
		b.WriteString(`<p><a href="` + esc(p.SignOutURL) + `">Sign out</a> to sign in as someone else.</p>` + "\n")
	}
	b.WriteString("<p><code>" + esc(p.Code))
	if requestID != "" {
		b.WriteString(" · request " + esc(requestID))
	}
	b.WriteString("</code></p></body></html>\n")
	io.WriteString(w, b.String())
}

// isLocalPath reports whether u is a path on this host ("/x", not "//x"
// or a scheme such as javascript:), the only kind of link the page offers.
func isLocalPath(u string) bool {
	return strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "//") && !strings.HasPrefix(u, `/\`)
}

// UpstreamErrorWriter returns the renderer of the upstream's 502 and 504
// answers (upstream.Options.WriteError), so that they look like every other
// authgate error: HTML for browsers, JSON for API clients.
func UpstreamErrorWriter(requestIDHeader string) func(w http.ResponseWriter, r *http.Request, status int) {
	return func(w http.ResponseWriter, r *http.Request, status int) {
		p := problemBadGateway
		if status == http.StatusGatewayTimeout {
			p = problemGatewayTimeout
		}
		writeError(w, r, requestIDHeader, p)
	}
}

// writeError renders p as a small HTML page for browsers and as JSON for
// everything else.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, p problem) {
	writeError(w, r, h.requestIDHeader, p)
}

func writeError(w http.ResponseWriter, r *http.Request, requestIDHeader string, p problem) {
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	if p.RetryAfter > 0 {
		hdr.Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	if p.Status == http.StatusUnauthorized && hdr.Get("WWW-Authenticate") == "" {
		// RFC 6750 section 3: no error code when the request carried no
		// credentials we could use.
		hdr.Set("WWW-Authenticate", `Bearer realm="authgate"`)
	}
	reqID := r.Header.Get(requestIDHeader)
	if acceptsHTML(r) {
		hdr.Set("Content-Type", "text/html; charset=utf-8")
		hdr.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		w.WriteHeader(p.Status)
		if r.Method == http.MethodHead {
			return
		}
		writeErrorPage(w, p, http.StatusText(p.Status), reqID)
		return
	}
	hdr.Set("Content-Type", "application/json")
	w.WriteHeader(p.Status)
	if r.Method == http.MethodHead {
		return
	}
	_ = json.NewEncoder(w).Encode(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		RequestID   string `json:"request_id,omitempty"`
	}{p.Code, p.Description, reqID})
}
