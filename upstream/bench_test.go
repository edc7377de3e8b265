package upstream

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
)

// discardWriter is a ResponseWriter that costs nothing, so that the
// benchmarks measure the proxies rather than a recorder.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

func benchUpstream(b *testing.B) *httptest.Server {
	b.Helper()
	body := strings.Repeat("x", 128)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(body))
	}))
	b.Cleanup(s.Close)
	return s
}

// benchRequest is a typical browser request: a session cookie, a few
// headers, no request id.
func benchRequest(ctx context.Context) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://app.example/api/items?page=2", nil).WithContext(ctx)
	r.Header.Set("User-Agent", "Mozilla/5.0")
	r.Header.Set("Accept", "application/json")
	r.Header.Set("Accept-Encoding", "gzip, br")
	r.Header.Set("Cookie", "authgate=SEALEDSESSIONVALUE; theme=dark")
	return r
}

func runBench(b *testing.B, h http.Handler, r *http.Request) {
	w := &discardWriter{h: make(http.Header)}
	b.ReportAllocs()
	for b.Loop() {
		delete(r.Header, "X-Request-Id") // generate one every time, as for most clients
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}

func BenchmarkProxy(b *testing.B) {
	up := benchUpstream(b)
	p, err := New(Options{
		Target:      up.URL,
		IsOwnCookie: func(name string) bool { return name == "authgate" },
	})
	if err != nil {
		b.Fatal(err)
	}
	runBench(b, p, benchRequest(WithIdentity(context.Background(), testIdentity)))
}

// BenchmarkBareReverseProxy is the floor: httputil.ReverseProxy with the
// same transport and nothing else.
func BenchmarkBareReverseProxy(b *testing.B) {
	up := benchUpstream(b)
	u, _ := url.Parse(up.URL)
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		Transport: newTransport(Options{}, target{url: u}),
	}
	runBench(b, rp, benchRequest(context.Background()))
}

// BenchmarkBareReverseProxyIdentity is the floor for the same job done
// naively: the headers Proxy sends, set without any stripping, cookie
// filtering or request id. The difference to BenchmarkBareReverseProxy is
// mostly the upstream parsing nine more headers.
func BenchmarkBareReverseProxyIdentity(b *testing.B) {
	up := benchUpstream(b)
	u, _ := url.Parse(up.URL)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
			id := identityFrom(pr.In.Context())
			h := pr.Out.Header
			h.Set("Authorization", "Bearer "+id.AccessToken)
			h.Set(headerUser, id.User)
			h.Set(headerEmail, id.Email)
			h.Set(headerPreferredUsername, id.PreferredUsername)
			h.Set(headerGroups, strings.Join(id.Groups, ","))
			h.Set("X-Request-Id", "0123456789abcdef0123456789abcdef")
		},
		Transport: newTransport(Options{}, target{url: u}),
	}
	runBench(b, rp, benchRequest(WithIdentity(context.Background(), testIdentity)))
}
