package proxy

import (
	"bufio"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/proxy/access"
	"github.com/authgate/authgate/session"
)

// publicSeeds are request targets from the advisories TestPublicPathTricks
// replays, the seed corpus of the fuzzers below.
var publicSeeds = []string{
	"/static/app.js", "/healthz", "/static/../admin", "/static/%2e%2e/admin", "/static/..%2fadmin",
	`/static/..\admin`, "/static/..%5cadmin", "/static/..;/admin", "/static;/../admin", "//static/../admin",
	"/static//../admin", "/static/x%23/../../admin", "/static/%252e%252e/admin", "/static/%u002e%u002e/admin",
	"/static/%c0%ae%c0%ae/admin", "/static/%ef%bc%8e%ef%bc%8e/admin", "/static/.%2e/admin", "/%73tatic/x",
	"/static/x?/../../admin", "/static/..%20/admin", "/static/.../admin", "/static/x/..", "/healthz/.",
	"/static/%2e", "/static/;/../admin", "/static/a/..%3b/admin", "/static/%252%65%252%65/admin", "/%250%30",
}

// interpretations are the ways an upstream or a framework behind authgate
// may read a forwarded path: as is after percent-decoding and cleaning, with
// backslashes as separators (Windows, some frameworks), with ";parameters"
// cut from each segment (Tomcat, Spring), and decoded twice.
func interpretations(p string) []string {
	once := lenientUnescape(p)
	noParams := func(s string) string {
		segs := strings.Split(s, "/")
		for i, seg := range segs {
			segs[i], _, _ = strings.Cut(seg, ";")
		}
		return strings.Join(segs, "/")
	}
	return []string{
		path.Clean(once),
		path.Clean(strings.ReplaceAll(once, `\`, "/")),
		path.Clean(noParams(once)),
		path.Clean(lenientUnescape(once)),
		path.Clean(noParams(lenientUnescape(once))),
	}
}

// lenientUnescape decodes every valid %XX and keeps anything else.
func lenientUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && ishex(s[i+1]) && ishex(s[i+2]) {
			b.WriteByte(unhexByte(s[i+1])<<4 | unhexByte(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhexByte(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// insidePublic reports whether a cleaned path is inside the fuzzers'
// public patterns, "GET /static/" and "/healthz".
func insidePublic(clean string) bool {
	return strings.HasPrefix(clean, "/static/") || clean == "/static" || clean == "/healthz"
}

// FuzzPublicPathDecision: whatever the request target, a request without
// credentials reaches the upstream only with a canonical path that every
// reading of it places inside a public pattern.
func FuzzPublicPathDecision(f *testing.F) {
	for _, s := range publicSeeds {
		f.Add(s)
	}
	public, _ := access.ParsePublicPaths([]string{"GET /static/", "/healthz"})
	key := []byte("0123456789abcdef0123456789abcdef")
	store, _ := session.NewCookieStore(session.CookieStoreOptions{Keys: [][]byte{key}})
	sealer, _ := session.NewSealer([][]byte{key})
	var forwarded string
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { forwarded = r.URL.EscapedPath() })
	h, err := New(Options{Provider: &fakeProvider{}, Store: store, Sealer: sealer, Upstream: up, PublicPaths: public, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, target string) {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: app.test\r\nAccept: application/json\r\n\r\n")))
		if err != nil {
			return // net/http refuses it before any handler runs
		}
		forwarded = "-"
		h.ServeHTTP(httptest.NewRecorder(), r)
		if forwarded == "-" {
			return
		}
		if canon, err := access.NormalizePath(forwarded); err != nil || canon != forwarded {
			t.Fatalf("target %q forwarded as %q, which is not canonical (%q, %v)", target, forwarded, canon, err)
		}
		for _, reading := range interpretations(forwarded) {
			if !insidePublic(reading) {
				t.Fatalf("target %q forwarded without a session as %q, which an upstream may read as %q", target, forwarded, reading)
			}
		}
	})
}

// FuzzForwardAuthPublic: whatever original URI a trusted proxy reports, a
// forward-auth answer of 202 without a session holds only for a URI whose
// raw path (which the proxy forwards unchanged) every reading places inside
// a public pattern.
func FuzzForwardAuthPublic(f *testing.F) {
	for _, s := range publicSeeds {
		f.Add(s)
	}
	public, _ := access.ParsePublicPaths([]string{"GET /static/", "/healthz"})
	trusted, _ := access.ParseTrustedProxies([]string{"10.0.0.0/8"})
	key := []byte("0123456789abcdef0123456789abcdef")
	store, _ := session.NewCookieStore(session.CookieStoreOptions{Keys: [][]byte{key}})
	sealer, _ := session.NewSealer([][]byte{key})
	up := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("forward-auth forwarded a request") })
	h, err := New(Options{Provider: &fakeProvider{}, Store: store, Sealer: sealer, Upstream: up, PublicPaths: public,
		TrustedProxies: trusted, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		r := httptest.NewRequest("GET", "/oauth2/auth", nil)
		r.RemoteAddr = "10.1.2.3:5000"
		r.Header["X-Original-Uri"] = []string{uri}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusAccepted {
			return
		}
		// The header was believed (Forwarded accepts only a valid,
		// trimmed value); the proxy forwards its path part as is.
		p, _, _ := strings.Cut(strings.TrimSpace(uri), "?")
		for _, reading := range interpretations(p) {
			if !insidePublic(reading) {
				t.Fatalf("original URI %q answered 202 without a session; an upstream may read its path as %q", uri, reading)
			}
		}
	})
}

// fuzzRouteSeeds add matrix parameters, which routes must see through, to
// the public-path seeds.
var fuzzRouteSeeds = append([]string{
	"/admin;x/users", "/admin;jsessionid=1/", "/static;x/../admin/", "/app/x;y/z", "/admin/.", "/admin",
	"/%61dmin/", "/static/%2e%2e/admin/x", "//admin//x", "/admin%3bx/", "/ADMIN/",
}, publicSeeds...)

// FuzzRoutesDecision: whatever the request target, a request without a
// session reaches the upstream only on a path every reading of which lies
// in a public route, and a signed-in user who is not an admin never
// reaches a path that any reading places under the admin route: a target
// never gets a more permissive route than the path the upstream receives.
func FuzzRoutesDecision(f *testing.F) {
	for _, s := range fuzzRouteSeeds {
		f.Add(s)
	}
	specs, err := access.ParseRouteSpecs([]byte(`
- match: "GET /static/"
  public: true
- match: "/healthz"
  public: true
- match: "/admin/"
  allow: '"admins" in groups'
- match: "/"
  allow: 'true'
`))
	if err != nil {
		f.Fatal(err)
	}
	routes, err := access.CompileRoutes(specs)
	if err != nil {
		f.Fatal(err)
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	store, _ := session.NewCookieStore(session.CookieStoreOptions{Keys: [][]byte{key}})
	sealer, _ := session.NewSealer([][]byte{key})
	var forwarded string
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { forwarded = r.URL.EscapedPath() })
	h, err := New(Options{Provider: &fakeProvider{}, Store: store, Sealer: sealer, Upstream: up, Routes: routes, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	w := httptest.NewRecorder()
	if err := store.Save(w, httptest.NewRequest("GET", "/", nil), &session.Session{
		ID: "s", Subject: "u", Groups: []string{"users"}, ExpiresAt: time.Now().Add(time.Hour), Expiry: time.Now().Add(time.Hour),
	}); err != nil {
		f.Fatal(err)
	}
	cookie := w.Result().Cookies()[0]
	f.Fuzz(func(t *testing.T, target string) {
		for _, signedIn := range []bool{false, true} {
			head := "GET " + target + " HTTP/1.1\r\nHost: app.test\r\nAccept: application/json\r\n"
			if signedIn {
				head += "Cookie: " + cookie.Name + "=" + cookie.Value + "\r\n"
			}
			r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head + "\r\n")))
			if err != nil {
				return // net/http refuses it before any handler runs
			}
			forwarded = "-"
			h.ServeHTTP(httptest.NewRecorder(), r)
			if forwarded == "-" {
				continue
			}
			if canon, err := access.NormalizePath(forwarded); err != nil || canon != forwarded {
				t.Fatalf("target %q forwarded as %q, which is not canonical (%q, %v)", target, forwarded, canon, err)
			}
			for _, reading := range interpretations(forwarded) {
				if strings.HasSuffix(forwarded, "/") && reading != "/" {
					reading += "/" // path.Clean drops it; routes tell "/admin" from "/admin/"
				}
				switch {
				case !signedIn && !insidePublic(reading):
					t.Fatalf("target %q forwarded without a session as %q, which an upstream may read as %q", target, forwarded, reading)
				case signedIn && strings.HasPrefix(reading, "/admin/"):
					t.Fatalf("target %q forwarded to a non-admin as %q, which an upstream may read as %q, under /admin/", target, forwarded, reading)
				}
			}
		}
	})
}
