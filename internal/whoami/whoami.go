// Package whoami is the upstream of `authgate demo`: a page that shows what
// authgate forwarded (method, path, headers, and the claims inside the
// bearer access token), a WebSocket echo at /ws, a server-sent event stream
// at /events and a JSON echo at /api/echo for browser tests.
//
// The access token is decoded for display only: its signature is never
// checked and nothing here trusts it.
package whoami

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Options configures the handler. The zero value works.
type Options struct {
	// Logger receives debug logs of WebSocket and event-stream connections.
	// Nil means slog.Default().
	Logger *slog.Logger
}

// New returns the whoami handler. It serves:
//
//	/ws        WebSocket echo (RFC 6455): each text or binary message comes back as it was
//	/events    server-sent events: "1" at once, then 2..n every interval
//	           (?n=5&interval=500ms by default), then the stream ends
//	/api/echo  JSON of the request received, always
//	any other  an HTML page of the request, or JSON when Accept prefers
//	           application/json or the path ends in ".json"
func New(o Options) http.Handler {
	return newHandler(o, time.After)
}

// newHandler lets tests replace the event stream's clock.
func newHandler(o Options, after func(time.Duration) <-chan time.Time) http.Handler {
	h := &handler{log: o.Logger, after: after}
	if h.log == nil {
		h.log = slog.Default()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", h.serveWebSocket)
	mux.HandleFunc("/events", h.serveEvents)
	mux.HandleFunc("/api/echo", h.serveEcho)
	mux.HandleFunc("/", h.servePage)
	return mux
}

type handler struct {
	log   *slog.Logger
	after func(time.Duration) <-chan time.Time
}

// report is what the page and the JSON answers show.
type report struct {
	Method     string              `json:"method"`
	Path       string              `json:"path"`
	Query      url.Values          `json:"query"`
	RawQuery   string              `json:"raw_query"`
	Host       string              `json:"host"`
	Proto      string              `json:"proto"`
	RemoteAddr string              `json:"remote_addr"`
	Headers    map[string][]string `json:"headers"` // redacted, see redact
	Token      *token              `json:"token,omitempty"`
	TokenError string              `json:"token_error,omitempty"`
	Body       *string             `json:"body,omitempty"` // /api/echo only
}

// token is the decoded, unverified bearer access token.
type token struct {
	Note      string         `json:"note"`
	Header    map[string]any `json:"header"`
	Claims    map[string]any `json:"claims"`
	ExpiresAt *time.Time     `json:"expires_at,omitempty"`
}

const tokenNote = "decoded for display only; the signature is not checked and nothing trusts it"

func newReport(r *http.Request) report {
	rep := report{
		Method:     r.Method,
		Path:       r.URL.Path,
		Query:      r.URL.Query(),
		RawQuery:   r.URL.RawQuery,
		Host:       r.Host,
		Proto:      r.Proto,
		RemoteAddr: r.RemoteAddr,
		Headers:    make(map[string][]string, len(r.Header)),
	}
	for name, values := range r.Header {
		for _, v := range values {
			rep.Headers[name] = append(rep.Headers[name], redact(name, v))
		}
	}
	if raw, ok := bearer(r); ok {
		t, err := decodeJWT(raw)
		if err != nil {
			rep.TokenError = err.Error()
		} else {
			rep.Token = t
		}
	}
	return rep
}

// bearer returns the token of an "Authorization: Bearer" header (RFC 6750,
// section 2.1; the scheme is case-insensitive).
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

type decodeError string

func (e decodeError) Error() string { return string(e) }

// decodeJWT reads the header and payload of a compact JWS (RFC 7515,
// section 7.1) without checking anything.
func decodeJWT(raw string) (*token, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, decodeError("whoami: the bearer token is not a JWT (it has no three dot-separated parts)")
	}
	t := &token{Note: tokenNote}
	for i, dst := range []*map[string]any{&t.Header, &t.Claims} {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[i], "="))
		if err != nil {
			return nil, decodeError("whoami: the bearer token's JWT parts are not base64url")
		}
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		if err := d.Decode(dst); err != nil {
			return nil, decodeError("whoami: the bearer token's JWT parts are not JSON objects")
		}
	}
	if n, ok := t.Claims["exp"].(json.Number); ok {
		if sec, err := n.Int64(); err == nil {
			exp := time.Unix(sec, 0).UTC()
			t.ExpiresAt = &exp
		}
	}
	return t, nil
}

var jwtRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`)

// redact keeps secrets off the page: credentials are cut to their first
// characters, cookies show names only, and anything shaped like a JWT in
// another header is cut too.
func redact(name, value string) string {
	switch http.CanonicalHeaderKey(name) {
	case "Authorization", "Proxy-Authorization":
		scheme, cred, ok := strings.Cut(value, " ")
		if !ok {
			return shorten(value)
		}
		return scheme + " " + shorten(cred)
	case "Cookie":
		var names []string
		for _, c := range strings.Split(value, ";") {
			n, _, _ := strings.Cut(strings.TrimSpace(c), "=")
			if n != "" {
				names = append(names, n+"=…")
			}
		}
		return strings.Join(names, "; ")
	}
	return jwtRE.ReplaceAllStringFunc(value, shorten)
}

// shorten shows the first 12 characters of a credential and its length:
// enough to tell tokens apart, too little to use one. For a JWT that is
// part of its header (typ and alg), which is public anyway.
func shorten(s string) string {
	const keep = 12
	if len(s) <= keep {
		return "… (" + strconv.Itoa(len(s)) + " chars)"
	}
	return s[:keep] + "… (" + strconv.Itoa(len(s)) + " chars)"
}

// wantsJSON reports whether the path ends in .json or the Accept header
// (RFC 9110, section 12.5.1) ranks application/json at least as high as
// text/html. "*/*" counts for HTML only, so browsers, curl and a bare
// fetch() get the page.
func wantsJSON(r *http.Request) bool {
	if strings.HasSuffix(r.URL.Path, ".json") {
		return true
	}
	var jsonQ, htmlQ float64
	for _, part := range strings.Split(strings.Join(r.Header.Values("Accept"), ","), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if v, err := strconv.ParseFloat(s, 64); err == nil {
				q = v
			}
		}
		switch {
		case mt == "application/json" || strings.HasSuffix(mt, "+json"):
			jsonQ = max(jsonQ, q)
		case mt == "text/html" || mt == "*/*" || mt == "text/*":
			htmlQ = max(htmlQ, q)
		}
	}
	return jsonQ > 0 && jsonQ >= htmlQ
}

func (h *handler) servePage(w http.ResponseWriter, r *http.Request) {
	rep := newReport(r)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Add("Vary", "Accept")
	if wantsJSON(r) {
		writeJSON(w, rep)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pageTemplate.Execute(w, newPageData(r, rep))
}

// maxEchoBody bounds how much of a request body /api/echo reads back.
const maxEchoBody = 64 << 10

func (h *handler) serveEcho(w http.ResponseWriter, r *http.Request) {
	rep := newReport(r)
	body, err := io.ReadAll(io.LimitReader(r.Body, maxEchoBody+1))
	if err != nil {
		http.Error(w, "Could not read the request body.", http.StatusBadRequest)
		return
	}
	if len(body) > maxEchoBody {
		http.Error(w, "Request body too large for the echo.", http.StatusRequestEntityTooLarge)
		return
	}
	s := string(body)
	rep.Body = &s
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, rep)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// sortedHeaders returns the headers as name, value rows sorted by name.
func sortedHeaders(h map[string][]string) [][2]string {
	var rows [][2]string
	for _, n := range slices.Sorted(maps.Keys(h)) {
		for _, v := range h[n] {
			rows = append(rows, [2]string{n, v})
		}
	}
	return rows
}
