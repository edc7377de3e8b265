package proxy_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/authgate/authgate/internal/demoidp"
	"github.com/authgate/authgate/proxy"
	"github.com/authgate/authgate/proxy/idp"
	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/upstream"
)

// The handler benchmarks (issue 7) run the whole proxy.Handler wired as
// cmd/authgate wires it: the real idp.Provider against the demo OpenID
// Provider, the sealed-cookie store, metrics, and a real upstream.Proxy in
// front of an httptest upstream that answers 128 bytes. The session cookie
// comes from a real login, so tokens and cookie have their real sizes.
// BenchmarkBareReverseProxy is the floor: httputil.ReverseProxy with the
// same transport settings in front of the same kind of upstream.

const benchCookie = "authgate"

type benchEnv struct {
	handler  http.Handler
	store    *session.CookieStore
	upstream *url.URL
	cookie   string // Cookie header of the logged-in session
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	return newBenchEnvWith(b, benchObserve{})
}

// benchObserve turns on tracing (with tp) and the access log in a bench
// environment.
type benchObserve struct {
	tp        trace.TracerProvider
	accessLog *slog.Logger
}

func newBenchEnvWith(b *testing.B, obs benchObserve) *benchEnv {
	b.Helper()
	discard := slog.New(slog.DiscardHandler)

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"text/plain"}
		io.WriteString(w, strings.Repeat("x", 128))
	}))
	b.Cleanup(up.Close)
	upURL, _ := url.Parse(up.URL)

	// Both servers need their addresses before the IdP registers the
	// client, so they start unstarted.
	idpSrv := httptest.NewUnstartedServer(nil)
	front := httptest.NewUnstartedServer(nil)
	issuer := "http://" + idpSrv.Listener.Addr().String() + "/"
	redirectURL := "http://" + front.Listener.Addr().String() + "/oauth2/callback"
	op, err := demoidp.New(demoidp.Options{
		Issuer:  issuer,
		Clients: []demoidp.Client{{ID: "bench", Secret: "bench-secret", RedirectURIs: []string{redirectURL}}},
		Logger:  discard,
	})
	if err != nil {
		b.Fatal(err)
	}
	idpSrv.Config.Handler = op.Handler()
	idpSrv.Start()
	b.Cleanup(idpSrv.Close)

	provider, err := idp.New(idp.Options{
		IssuerURL:      issuer,
		ClientID:       "bench",
		ClientSecret:   "bench-secret",
		RedirectURL:    redirectURL,
		Scopes:         []string{"openid", "email", "profile", "groups", "offline_access"},
		HTTPClient:     &http.Client{Timeout: 10 * time.Second},
		Logger:         discard,
		TracerProvider: obs.tp,
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	provider.Run(ctx) // returns once discovered
	if !provider.Ready() {
		b.Fatal("discovery did not succeed")
	}

	key := []byte("0123456789abcdef0123456789abcdef")
	cookieOpts := session.CookieOptions{Name: benchCookie}
	store, err := session.NewCookieStore(session.CookieStoreOptions{Cookie: cookieOpts, Keys: [][]byte{key}})
	if err != nil {
		b.Fatal(err)
	}
	sealer, err := session.NewSealer([][]byte{key})
	if err != nil {
		b.Fatal(err)
	}
	flowCookie := cookieOpts
	flowCookie.Name = benchCookie + "_flow"
	flowPrefix := session.NewCookies(flowCookie).Name() + "_"
	sessionCookies := store.Cookies()
	metrics := proxy.NewMetrics(prometheus.NewRegistry())
	upstreamProxy, err := upstream.New(upstream.Options{
		Target: up.URL,
		IsOwnCookie: func(name string) bool {
			return sessionCookies.Owns(name) || strings.HasPrefix(name, flowPrefix)
		},
		RequestIDHeader: "X-Request-Id",
		WriteError:      proxy.UpstreamErrorWriter("X-Request-Id"),
		Logger:          discard,
		Observe: func(_ *http.Request, status int, d time.Duration) {
			metrics.ObserveUpstream(status, d.Seconds())
		},
		TracerProvider: obs.tp,
	})
	if err != nil {
		b.Fatal(err)
	}
	h, err := proxy.New(proxy.Options{
		Provider:        provider,
		Store:           store,
		Sealer:          sealer,
		Upstream:        upstreamProxy,
		FlowCookie:      flowCookie,
		RequestIDHeader: "X-Request-Id",
		Metrics:         metrics,
		Logger:          discard,
		TracerProvider:  obs.tp,
		AccessLog:       obs.accessLog,
	})
	if err != nil {
		b.Fatal(err)
	}
	front.Config.Handler = h
	front.Start()
	b.Cleanup(front.Close)

	return &benchEnv{handler: h, store: store, upstream: upURL, cookie: benchLogin(b, front.URL, issuer)}
}

// benchLogin signs alice in through the front server and returns the
// Cookie header of her session.
func benchLogin(b *testing.B, front, issuer string) string {
	b.Helper()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Path == "/landed" {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	resp, err := client.Get(front + "/oauth2/start?rd=/landed")
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	id := resp.Request.URL.Query().Get("authRequestID")
	if resp.StatusCode != http.StatusOK || id == "" {
		b.Fatalf("login start ended at %s with %d, want the IdP's login form", resp.Request.URL.Path, resp.StatusCode)
	}
	resp, err = client.PostForm(issuer+"login", url.Values{"authRequestID": {id}, "username": {"alice"}, "password": {"alice-pw"}})
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/landed" {
		b.Fatalf("login ended with %d to %q, want 302 to /landed", resp.StatusCode, resp.Header.Get("Location"))
	}
	u, _ := url.Parse(front)
	var parts []string
	for _, c := range jar.Cookies(u) {
		if c.Name == benchCookie || (strings.HasPrefix(c.Name, benchCookie+"_") && !strings.HasPrefix(c.Name, benchCookie+"_flow")) {
			parts = append(parts, c.Name+"="+c.Value)
		}
	}
	if len(parts) == 0 {
		b.Fatal("login set no session cookie")
	}
	return strings.Join(parts, "; ")
}

// discardWriter is a ResponseWriter that costs nothing, so that the
// benchmarks measure the handlers rather than a recorder.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (d *discardWriter) Header() http.Header { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) {
	if d.status == 0 {
		d.status = http.StatusOK
	}
	d.n += len(p)
	return len(p), nil
}
func (d *discardWriter) WriteHeader(code int) {
	if d.status == 0 {
		d.status = code
	}
}

// benchRequest is a typical request to the proxy: a few browser headers,
// no request id; cookie is the Cookie header ("" for none).
func benchRequest(cookie string, header ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://app.example/api/items?page=2", nil)
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")
	r.Header.Set("Accept-Encoding", "gzip, br")
	if cookie != "" {
		r.Header.Set("Cookie", cookie+"; theme=dark")
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	return r
}

// serve runs h on r once, ready for the next round: a new request id every
// time (most clients send none) and an empty response header.
func serve(h http.Handler, w *discardWriter, r *http.Request) {
	delete(r.Header, "X-Request-Id")
	clear(w.h)
	w.status, w.n = 0, 0
	h.ServeHTTP(w, r)
}

// runHandlerBench checks one round answers want, then times rounds.
func runHandlerBench(b *testing.B, h http.Handler, want int, requests ...*http.Request) {
	b.Helper()
	w := &discardWriter{h: make(http.Header)}
	serve(h, w, requests[0])
	if w.status != want {
		b.Fatalf("status = %d, want %d", w.status, want)
	}
	if want == http.StatusOK && w.n != 128 {
		b.Fatalf("body = %d bytes, want the upstream's 128", w.n)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		serve(h, w, requests[i])
		i++
		if i == len(requests) {
			i = 0
		}
	}
}

// BenchmarkHandlerAuthenticated is one authenticated GET: session cookie
// opened (a hit in the store's open cache, as for a browser's repeated
// requests), expiry, revocation and policy checks, identity headers and the
// upstream round trip.
func BenchmarkHandlerAuthenticated(b *testing.B) {
	env := newBenchEnv(b)
	runHandlerBench(b, env.handler, http.StatusOK, benchRequest(env.cookie, "Accept", "application/json"))
}

// BenchmarkHandlerAuthenticatedTracing is the same request with tracing
// on (issue 13): the SDK with a batch processor and an exporter that drops
// what it gets, sampling nothing (always_off: the span context is still
// made and propagated) or everything (always_on: four spans recorded per
// request). Tracing off is BenchmarkHandlerAuthenticated.
func BenchmarkHandlerAuthenticatedTracing(b *testing.B) {
	for _, sampler := range []struct {
		name string
		s    sdktrace.Sampler
	}{{"always_off", sdktrace.NeverSample()}, {"always_on", sdktrace.AlwaysSample()}} {
		b.Run(sampler.name, func(b *testing.B) {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler.s), sdktrace.WithBatcher(discardExporter{}))
			b.Cleanup(func() { tp.Shutdown(context.Background()) })
			env := newBenchEnvWith(b, benchObserve{tp: tp})
			runHandlerBench(b, env.handler, http.StatusOK, benchRequest(env.cookie, "Accept", "application/json"))
		})
	}
}

// BenchmarkHandlerAuthenticatedAccessLog is the same request with the
// access log on (AUTHGATE_ACCESS_LOG), written as JSON to io.Discard: the
// cost of the line without the cost of the disk.
func BenchmarkHandlerAuthenticatedAccessLog(b *testing.B) {
	env := newBenchEnvWith(b, benchObserve{accessLog: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	runHandlerBench(b, env.handler, http.StatusOK, benchRequest(env.cookie, "Accept", "application/json"))
}

// discardExporter is a span exporter that drops every span.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// BenchmarkHandlerAuthenticatedManySessions is the same with 8192 distinct
// sessions going round: far more than the open cache holds, so nearly every
// request pays for base64, AES-GCM and decoding.
func BenchmarkHandlerAuthenticatedManySessions(b *testing.B) {
	env := newBenchEnv(b)
	s, err := env.store.Load(benchRequest(env.cookie))
	if err != nil {
		b.Fatal(err)
	}
	requests := make([]*http.Request, 8192)
	for i := range requests {
		s.ID = "bench-session-" + strconv.Itoa(i)
		w := httptest.NewRecorder()
		if err := env.store.Save(w, benchRequest(""), s); err != nil {
			b.Fatal(err)
		}
		var parts []string
		for _, c := range w.Result().Cookies() {
			parts = append(parts, c.Name+"="+c.Value)
		}
		requests[i] = benchRequest(strings.Join(parts, "; "), "Accept", "application/json")
	}
	runHandlerBench(b, env.handler, http.StatusOK, requests...)
}

// BenchmarkBareReverseProxy is the floor: httputil.ReverseProxy with the
// transport authgate's upstream package builds by default (MaxIdleConnsPerHost
// 128, no compression, the same timeouts) and nothing else.
func BenchmarkBareReverseProxy(b *testing.B) {
	env := newBenchEnv(b)
	target := env.upstream
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: &http.Transport{
			DialContext:           d.DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   128,
			ExpectContinueTimeout: time.Second,
			DisableCompression:    true,
		},
	}
	runHandlerBench(b, rp, http.StatusOK, benchRequest(env.cookie, "Accept", "application/json"))
}

// BenchmarkHandlerUnauthenticatedAPI is a request without a session from an
// API client: 401 with a JSON body, no upstream call.
func BenchmarkHandlerUnauthenticatedAPI(b *testing.B) {
	env := newBenchEnv(b)
	runHandlerBench(b, env.handler, http.StatusUnauthorized, benchRequest("", "Accept", "application/json"))
}

// BenchmarkHandlerNavigationRedirect is a browser navigation without a
// session: a new state, nonce and PKCE verifier, a sealed login-flow cookie
// and a 302 to the IdP.
func BenchmarkHandlerNavigationRedirect(b *testing.B) {
	env := newBenchEnv(b)
	runHandlerBench(b, env.handler, http.StatusFound, benchRequest("",
		"Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "Sec-Fetch-Mode", "navigate"))
}
