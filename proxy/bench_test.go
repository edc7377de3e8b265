package proxy

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/proxy/access"
	"github.com/authgate/authgate/session"
)

// BenchmarkServeHTTP measures authgate's own work per request (the
// upstream is a no-op handler): a session request with no access rules, the
// same with public paths and a policy configured, a public-path request,
// a session request decided by a 20-route file with CEL rules (issue 14),
// and a request refused as ambiguous. The difference between the first two
// is what path normalisation, public-path matching and the policy add.
func BenchmarkServeHTTP(b *testing.B) {
	key := []byte("0123456789abcdef0123456789abcdef")
	now := time.Now()
	store, _ := session.NewCookieStore(session.CookieStoreOptions{Cookie: session.CookieOptions{Name: "authgate"}, Keys: [][]byte{key}})
	sealer, _ := session.NewSealer([][]byte{key})
	public, _ := access.ParsePublicPaths([]string{"GET /static/", "/healthz", "GET /assets/", "POST /hooks/github", "/favicon.ico"})
	policy, _ := access.NewPolicy([]string{"boss@corp.example"}, []string{"corp.example", "corp.test"}, []string{"admins", "dev"})
	noop := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	// Twenty routes as a routes file would hold them; /app/items/42
	// matches route 17, after seventeen that do not.
	var src strings.Builder
	src.WriteString("- match: \"GET /static/\"\n  public: true\n- match: \"/healthz\"\n  public: true\n")
	for i := range 14 {
		fmt.Fprintf(&src, "- match: \"/area%d/\"\n  allow: '\"team%d\" in groups || email.endsWith(\"@corp%d.example\")'\n", i, i, i)
	}
	src.WriteString("- match: \"POST /app/\"\n  allow: '\"admins\" in groups'\n")
	src.WriteString("- match: \"/app/\"\n  allow: '\"dev\" in groups && email.endsWith(\"@corp.example\") && request.method in [\"GET\", \"HEAD\"]'\n")
	src.WriteString("- match: \"/admin/\"\n  allow: '\"admins\" in groups'\n- match: \"/\"\n  allow: 'sub != \"\"'\n")
	specs, err := access.ParseRouteSpecs([]byte(src.String()))
	if err != nil {
		b.Fatal(err)
	}
	routes, err := access.CompileRoutes(specs)
	if err != nil || routes.Len() != 20 {
		b.Fatalf("routes: %d, %v", routes.Len(), err)
	}
	build := func(rules bool) *Handler {
		o := Options{Provider: &fakeProvider{}, Store: store, Sealer: sealer, Upstream: noop, Logger: slog.New(slog.DiscardHandler)}
		if rules {
			o.PublicPaths, o.Policy = public, policy
		}
		h, err := New(o)
		if err != nil {
			b.Fatal(err)
		}
		return h
	}
	s := &session.Session{ID: "sid", Subject: "alice", Email: "alice@corp.example", Groups: []string{"dev"},
		AccessToken: strings.Repeat("a", 800), RefreshToken: "r", Expiry: now.Add(time.Hour), IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	w := httptest.NewRecorder()
	store.Save(w, httptest.NewRequest("GET", "/", nil), s)
	var cookie []string
	for _, c := range w.Result().Cookies() {
		cookie = append(cookie, c.Name+"="+c.Value)
	}
	run := func(b *testing.B, h *Handler, target string, withCookie bool, want int) {
		r := httptest.NewRequest("GET", target, nil)
		if withCookie {
			r.Header.Set("Cookie", strings.Join(cookie, "; "))
		}
		r.Header.Set("Accept", "application/json")
		rawURL := *r.URL
		b.ReportAllocs()
		for b.Loop() {
			u := rawURL
			r.URL = &u
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != want {
				b.Fatalf("status %d, want %d", rec.Code, want)
			}
		}
	}
	b.Run("session/no-rules", func(b *testing.B) { run(b, build(false), "/app/items/42?x=1", true, 200) })
	b.Run("session/public-paths+policy", func(b *testing.B) { run(b, build(true), "/app/items/42?x=1", true, 200) })
	b.Run("session/routes-20", func(b *testing.B) {
		h, err := New(Options{Provider: &fakeProvider{}, Store: store, Sealer: sealer, Upstream: noop, Logger: slog.New(slog.DiscardHandler), Routes: routes})
		if err != nil {
			b.Fatal(err)
		}
		run(b, h, "/app/items/42?x=1", true, 200)
	})
	b.Run("public-path", func(b *testing.B) { run(b, build(true), "/static/js/app.js", false, 200) })
	b.Run("ambiguous-path", func(b *testing.B) { run(b, build(true), "/static/..;/admin", false, 400) })
}
