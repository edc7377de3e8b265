package proxy_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/authgate/authgate/internal/demoidp"
	"github.com/authgate/authgate/proxy"
	"github.com/authgate/authgate/proxy/access"
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
	front    string // URL of the handler's server
	issuer   string // the demo IdP's issuer URL
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	return newBenchEnvWith(b, benchObserve{})
}

// benchObserve turns on tracing (with tp) and the access log in a bench
// environment, and sets its routes (nil for none); routes that read claims
// make the provider keep them, as cmd/authgate does.
type benchObserve struct {
	tp        trace.TracerProvider
	accessLog *slog.Logger
	routes    *access.Routes
}

func newBenchEnvWith(b *testing.B, obs benchObserve) *benchEnv {
	routes := obs.routes
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
		NeedGroups:     routes.UsesGroups(),
		KeepClaims:     routes.UsesClaims(),
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
	// Without routes, cmd/authgate always passes the parsed
	// AUTHGATE_PUBLIC_PATHS and policy, empty by default: so does this.
	var public *access.PublicPaths
	var policy *access.Policy
	if routes == nil {
		if public, err = access.ParsePublicPaths(nil); err != nil {
			b.Fatal(err)
		}
		if policy, err = access.NewPolicy(nil, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
	h, err := proxy.New(proxy.Options{
		Provider:        provider,
		Store:           store,
		Sealer:          sealer,
		Upstream:        upstreamProxy,
		FlowCookie:      flowCookie,
		RequestIDHeader: "X-Request-Id",
		PublicPaths:     public,
		Policy:          policy,
		Metrics:         metrics,
		Logger:          discard,
		TracerProvider:  obs.tp,
		AccessLog:       obs.accessLog,
		Routes:          routes,
	})
	if err != nil {
		b.Fatal(err)
	}
	front.Config.Handler = h
	front.Start()
	b.Cleanup(front.Close)

	return &benchEnv{handler: h, store: store, upstream: upURL, cookie: benchLogin(b, front.URL, issuer), front: front.URL, issuer: issuer}
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
// made and propagated) or everything (always_on: three spans recorded per
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

// benchRoutes returns a 20-route file with CEL in every rule but the
// public ones, such as an application with several areas would have; the
// benchmark request (GET /api/items) matches route 17, after seventeen that
// do not match. claims makes route 17 read claims and a header as well.
func benchRoutes(b *testing.B, claims bool) *access.Routes {
	b.Helper()
	var src strings.Builder
	src.WriteString("- match: \"GET /static/\"\n  public: true\n- match: \"/healthz\"\n  public: true\n")
	for i := range 14 {
		fmt.Fprintf(&src, "- name: area%d\n  match: \"/area%d/\"\n  allow: '\"team%d\" in groups || email.endsWith(\"@corp%d.example\")'\n", i, i, i, i)
	}
	rule := `"staff" in groups && email.endsWith("@example.com") && request.method in ["GET", "HEAD"]`
	if claims {
		rule = `"staff" in groups && claims.email_verified == true && has(claims.name) && !("x-debug" in request.headers)`
	}
	fmt.Fprintf(&src, "- name: api-write\n  match: \"POST /api/\"\n  allow: '\"admins\" in groups'\n")
	fmt.Fprintf(&src, "- name: api\n  match: \"/api/\"\n  allow: '%s'\n", strings.ReplaceAll(rule, "'", "''"))
	src.WriteString("- name: admin\n  match: \"/admin/\"\n  allow: '\"admins\" in groups'\n")
	src.WriteString("- name: rest\n  match: \"/\"\n  allow: 'sub != \"\"'\n")
	specs, err := access.ParseRouteSpecs([]byte(src.String()))
	if err != nil {
		b.Fatal(err)
	}
	routes, err := access.CompileRoutes(specs)
	if err != nil {
		b.Fatal(err)
	}
	if routes.Len() != 20 {
		b.Fatalf("%d routes, want 20", routes.Len())
	}
	return routes
}

// BenchmarkHandlerAuthenticatedRoutes is BenchmarkHandlerAuthenticated with
// a 20-route file (issue 14): the request matches route 17, whose CEL rule
// reads groups, email and request.method ("cel"), or claims and
// request.headers ("cel-claims", which decodes the session's claims and
// builds the header map on every request).
func BenchmarkHandlerAuthenticatedRoutes(b *testing.B) {
	for _, claims := range []bool{false, true} {
		name := "cel"
		if claims {
			name = "cel-claims"
		}
		b.Run(name, func(b *testing.B) {
			env := newBenchEnvWith(b, benchObserve{routes: benchRoutes(b, claims)})
			runHandlerBench(b, env.handler, http.StatusOK, benchRequest(env.cookie, "Accept", "application/json"))
		})
	}
}

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
// session and without Fetch Metadata: a new state, nonce and PKCE verifier,
// a sealed login-flow cookie and a 302 to the IdP.
func BenchmarkHandlerNavigationRedirect(b *testing.B) {
	env := newBenchEnv(b)
	runHandlerBench(b, env.handler, http.StatusFound, benchRequest("",
		"Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"))
}

// BenchmarkHandlerNavigationPage is a browser navigation without a session
// that sends Fetch Metadata: the deep-link page, whose script then starts
// the login (the 302 above) with the fragment.
func BenchmarkHandlerNavigationPage(b *testing.B) {
	env := newBenchEnv(b)
	r := benchRequest("", "Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "Sec-Fetch-Mode", "navigate")
	w := &discardWriter{h: make(http.Header)}
	serve(env.handler, w, r)
	if w.status != http.StatusOK || w.h.Get("Content-Security-Policy") == "" {
		b.Fatalf("status = %d, want 200 with the deep-link page", w.status)
	}
	b.ReportAllocs()
	for b.Loop() {
		serve(env.handler, w, r)
	}
}

// BenchmarkLoginRoundTrip is a whole login over loopback HTTP, from the
// navigation to a deep link to landing on it with a session: authgate, the
// demo IdP's login form and the code exchange. "redirect" is a client
// without Fetch Metadata (302 at once); "page" sends Sec-Fetch-Mode and
// follows the deep-link page as its script would, one more round trip to
// authgate. The difference is what the page costs a login (the browser's
// script itself, well under a millisecond, is not in it).
//
// The two alternate within each iteration (A B A B), so that the load of
// a shared machine falls on both alike, and the medians are reported:
// redirect-ms, page-ms and their difference delta-ms.
func BenchmarkLoginRoundTrip(b *testing.B) {
	env := newBenchEnv(b)
	var redirect, page []float64
	for b.Loop() {
		t0 := time.Now()
		benchDeepLogin(b, env, false)
		t1 := time.Now()
		benchDeepLogin(b, env, true)
		redirect = append(redirect, float64(t1.Sub(t0))/1e6)
		page = append(page, float64(time.Since(t1))/1e6)
	}
	r, p := median(redirect), median(page)
	b.ReportMetric(r, "redirect-ms")
	b.ReportMetric(p, "page-ms")
	b.ReportMetric(p-r, "delta-ms")
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// benchDeepLogin signs alice in from a cold navigation to
// /some/deep/link?x=1 and checks that she lands there.
func benchDeepLogin(b *testing.B, env *benchEnv, fetchMetadata bool) {
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Path == "/some/deep/link" {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	req, _ := http.NewRequest(http.MethodGet, env.front+"/some/deep/link?x=1", nil)
	req.Header.Set("Accept", "text/html")
	if fetchMetadata {
		req.Header.Set("Sec-Fetch-Mode", "navigate")
		req.Header.Set("Sec-Fetch-Site", "none")
	}
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	if fetchMetadata {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		const marker = `<meta name="authgate-rd" content="`
		i := strings.Index(string(body), marker)
		if resp.StatusCode != http.StatusOK || i < 0 {
			b.Fatalf("navigation: %d, want the deep-link page", resp.StatusCode)
		}
		rd, _, _ := strings.Cut(string(body[i+len(marker):]), `"`)
		rd = strings.ReplaceAll(rd, "&amp;", "&") + "#/settings/profile" // what location.hash adds
		resp, err = client.Get(env.front + "/oauth2/start?rd=" + url.QueryEscape(rd))
		if err != nil {
			b.Fatal(err)
		}
	}
	resp.Body.Close()
	id := resp.Request.URL.Query().Get("authRequestID")
	if resp.StatusCode != http.StatusOK || id == "" {
		b.Fatalf("login start ended at %s with %d, want the IdP's login form", resp.Request.URL.Path, resp.StatusCode)
	}
	resp, err = client.PostForm(env.issuer+"login", url.Values{"authRequestID": {id}, "username": {"alice"}, "password": {"alice-pw"}})
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	want := "/some/deep/link?x=1"
	if fetchMetadata {
		want += "#/settings/profile"
	}
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
		b.Fatalf("login ended with %d to %q, want 302 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
}
