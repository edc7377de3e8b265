package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
)

// testOP is the zitadel example OpenID Provider running in-process: a real
// provider, not a stub that shares our assumptions.
type testOP struct {
	URL  string // issuer, with the trailing slash go-oidc expects
	srv  *httptest.Server
	down atomic.Bool // when true, every request gets 503
	// editDiscovery, when set before the first request, edits the real
	// provider's discovery document (to test what a provider lacks).
	editDiscovery func(doc map[string]any)
	grants        sync.Map // grant_type → *atomic.Int64
	revoke        atomic.Int64
	// traceparents holds the last traceparent header per path.
	traceparents sync.Map
}

var opClientSeq atomic.Int64

// startOP starts the example OP with a client whose redirect URI is
// redirectURL. Tests that call it must not run in parallel: the example
// storage registers clients in a package-global map.
func startOP(t *testing.T, redirectURL string) (op *testOP, clientID, secret string) {
	t.Helper()
	op = &testOP{}
	var handler http.Handler
	op.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if op.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path == "/oauth/token" && r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			form, _ := url.ParseQuery(string(body))
			c, _ := op.grants.LoadOrStore(form.Get("grant_type"), new(atomic.Int64))
			c.(*atomic.Int64).Add(1)
		}
		if r.URL.Path == "/revoke" {
			op.revoke.Add(1)
		}
		if tp := r.Header.Get("Traceparent"); tp != "" {
			op.traceparents.Store(r.URL.Path, tp)
		}
		if op.editDiscovery != nil && r.URL.Path == "/.well-known/openid-configuration" {
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, r)
			var doc map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			op.editDiscovery(doc)
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(doc)
			return
		}
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(op.srv.Close)
	op.URL = op.srv.URL + "/"

	clientID = fmt.Sprintf("authgate-test-%d", opClientSeq.Add(1))
	secret = "test-secret-" + clientID
	client := storage.WebClient(clientID, secret, redirectURL)
	storage.RegisterClients(client)
	st := storage.NewStorage(storage.NewUserStore(op.URL))
	handler = exampleop.SetupServer(op.URL, st, slog.New(slog.DiscardHandler), false)
	return op, clientID, secret
}

// grantCount is how many token requests of grantType the OP has answered.
func (op *testOP) grantCount(grantType string) int64 {
	c, ok := op.grants.Load(grantType)
	if !ok {
		return 0
	}
	return c.(*atomic.Int64).Load()
}

// upstreamRecorder is the protected application: it records what it got.
type upstreamRecorder struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
	// handle, when set, answers instead of the default 200.
	handle func(w http.ResponseWriter, r *http.Request)
}

func startUpstream(t *testing.T) *upstreamRecorder {
	t.Helper()
	u := &upstreamRecorder{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.reqs = append(u.reqs, r.Clone(context.Background()))
		handle := u.handle
		u.mu.Unlock()
		if handle != nil {
			handle(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "upstream %s", r.URL.RequestURI())
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// last returns the latest request the upstream received, or nil.
func (u *upstreamRecorder) last() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		return nil
	}
	return u.reqs[len(u.reqs)-1]
}

func (u *upstreamRecorder) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

// fakeClock is a settable clock shared by authgate's sessions and tokens.
type fakeClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// gate is one authgate started in-process on 127.0.0.1:0.
type gate struct {
	*Main
	URL      string
	cfg      *Config
	env      map[string]string
	op       *testOP
	upstream *upstreamRecorder
	clock    *fakeClock
	logs     *syncBuffer
	cancel   context.CancelFunc
	done     chan error
}

// testCookieSecret is a fixed 32-byte key so that two gates can share cookies.
var testCookieSecret = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

type gateOption func(env map[string]string)

// startGate starts an OP, an upstream and authgate in front of them.
func startGate(t *testing.T, opts ...gateOption) *gate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	op, clientID, secret := startOP(t, base+"/oauth2/callback")
	up := startUpstream(t)
	return startGateWith(t, ln, gateEnv(base, op, clientID, secret, up, opts...), op, up)
}

// gateEnv is the environment of an authgate reached at base, in front of up
// with op as its IdP, changed by opts.
func gateEnv(base string, op *testOP, clientID, secret string, up *upstreamRecorder, opts ...gateOption) map[string]string {
	env := map[string]string{
		"AUTHGATE_UPSTREAM":        up.srv.URL,
		"AUTHGATE_OIDC_ISSUER_URL": op.URL,
		"AUTHGATE_CLIENT_ID":       clientID,
		"AUTHGATE_CLIENT_SECRET":   secret,
		"AUTHGATE_COOKIE_SECRET":   testCookieSecret,
		"AUTHGATE_REDIRECT_URL":    base + "/oauth2/callback",
		"AUTHGATE_COOKIE_SECURE":   "false",
		"AUTHGATE_INTERNAL_ADDR":   "127.0.0.1:0",
		"AUTHGATE_SCOPES":          "openid,email,profile,offline_access",
		"AUTHGATE_LOG_LEVEL":       "debug",
	}
	for _, o := range opts {
		o(env)
	}
	return env
}

func withEnv(k, v string) gateOption { return func(env map[string]string) { env[k] = v } }

func startGateWith(t *testing.T, ln net.Listener, env map[string]string, op *testOP, up *upstreamRecorder) *gate {
	t.Helper()
	for _, v := range configVariables() {
		t.Setenv(v.Name, "")
		os.Unsetenv(v.Name)
	}
	for _, k := range otelVariables {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	cfg, err := loadConfig()
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	g := &gate{cfg: cfg, env: env, op: op, upstream: up, clock: &fakeClock{}, logs: &syncBuffer{}, done: make(chan error, 1)}
	g.Main, err = NewMain(cfg, MainOptions{
		LogOutput:         g.logs,
		Now:               g.clock.Now,
		DiscoveryRetryMin: 5 * time.Millisecond,
		DiscoveryRetryMax: 50 * time.Millisecond,
		ProxyListener:     ln,
		// Rotation tests wait for a file to be read again.
		SecretPollInterval: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("NewMain: %v", err)
	}
	g.URL = "http://" + g.ProxyAddr()
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	go func() { g.done <- g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-g.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("authgate did not stop within 10s")
		}
	})
	g.waitReady(t)
	return g
}

// waitReady polls /readyz until discovery has succeeded. It waits for a
// condition, with a deadline; it asserts nothing about timing.
func (g *gate) waitReady(t *testing.T) {
	t.Helper()
	if g.op != nil && g.op.down.Load() {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + g.InternalAddr() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("authgate not ready within 10s")
}

// browser is an HTTP client with a cookie jar that behaves like a browser
// for navigations: it sends Accept: text/html and Sec-Fetch-Mode: navigate.
type browser struct {
	*http.Client
	t *testing.T
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{Client: &http.Client{Jar: jar, Timeout: 10 * time.Second}, t: t}
}

// navigate GETs url like a top-level navigation, following redirects.
func (b *browser) navigate(rawURL string) *http.Response {
	b.t.Helper()
	return b.navigateFrom(rawURL, "none")
}

// navigateFrom is navigate with the Sec-Fetch-Site a browser would send:
// "none" for a typed URL, "same-origin" for a link on the site's own page.
func (b *browser) navigateFrom(rawURL, site string) *http.Response {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, rawURL, nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Sec-Fetch-Site", site)
	resp, err := b.Do(req)
	if err != nil {
		b.t.Fatalf("GET %s: %v", rawURL, err)
	}
	return b.runDeepLinkPage(resp, rawURL)
}

var (
	deepLinkStartRe = regexp.MustCompile(`<meta name="authgate-start" content="([^"]*)">`)
	deepLinkRdRe    = regexp.MustCompile(`<meta name="authgate-rd" content="([^"]*)">`)
)

// runDeepLinkPage does what authgate's deep-link page's script does in a
// browser (this client runs no JavaScript): it navigates to the login start
// with the page's rd plus rawURL's fragment. Any other response is
// returned unchanged.
func (b *browser) runDeepLinkPage(resp *http.Response, rawURL string) *http.Response {
	b.t.Helper()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		return resp
	}
	body := readBody(b.t, resp)
	start, rd := deepLinkStartRe.FindStringSubmatch(body), deepLinkRdRe.FindStringSubmatch(body)
	if start == nil || rd == nil {
		resp.Body = io.NopCloser(strings.NewReader(body))
		return resp
	}
	target := html.UnescapeString(rd[1])
	if _, frag, ok := strings.Cut(rawURL, "#"); ok {
		target += "#" + frag
	}
	next := resp.Request.URL.ResolveReference(&url.URL{Path: html.UnescapeString(start[1]), RawQuery: "rd=" + url.QueryEscape(target)})
	req, _ := http.NewRequest(http.MethodGet, next.String(), nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := b.Do(req)
	if err != nil {
		b.t.Fatalf("GET %s: %v", next, err)
	}
	return resp
}

var loginIDRe = regexp.MustCompile(`name="id" value="([^"]+)"`)

// login completes the example OP's login form on resp (the login page) and
// returns the response after every redirect, which should be the page the
// browser asked for.
func (b *browser) login(resp *http.Response, username string) *http.Response {
	b.t.Helper()
	body := readBody(b.t, resp)
	m := loginIDRe.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("login page expected at %s, got %d: %.300s", resp.Request.URL, resp.StatusCode, body)
	}
	action := resp.Request.URL.ResolveReference(&url.URL{Path: "/login/username"})
	resp, err := b.PostForm(action.String(), url.Values{"id": {m[1]}, "username": {username}, "password": {"verysecure"}})
	if err != nil {
		b.t.Fatalf("POST login form: %v", err)
	}
	return resp
}

// signIn navigates to rawURL and signs in as test-user.
func (b *browser) signIn(g *gate, rawURL string) *http.Response {
	b.t.Helper()
	return b.login(b.navigate(rawURL), g.opUser())
}

func (g *gate) opUser() string {
	u, _ := url.Parse(g.op.URL)
	return "test-user@" + u.Hostname()
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

// sessionCookies returns the browser's cookies for the gate as a header value.
func (b *browser) cookieHeader(g *gate) string {
	u, _ := url.Parse(g.URL)
	var parts []string
	for _, c := range b.Jar.Cookies(u) {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

func unsetenv(k string) { os.Unsetenv(k) }
