package main

// Real-browser tests: headless Chromium, driven through chromedp, signs in
// through authgate in front of the whoami upstream, with the demo provider
// as the IdP. Each test asserts what the page shows and what the upstream
// received. Every test starts its own IdP, upstream, authgate and browser
// (with a fresh profile), so the tests are independent.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/authgate/authgate/internal/demoidp"
	"github.com/authgate/authgate/internal/whoami"
)

const (
	browserClientID     = "authgate-browser-test"
	browserClientSecret = "browser-test-secret"
	// browserTestTimeout bounds everything one test does in the browser.
	browserTestTimeout = 45 * time.Second
	// pageTimeout bounds the wait for one page, so that a missing page
	// fails fast. It waits for a condition; it asserts nothing about speed.
	pageTimeout = 10 * time.Second
)

// seenRequest is what the upstream received.
type seenRequest struct {
	Method, Path, RawQuery string
	Header                 http.Header
}

// bearer returns the token of the Authorization header, or "".
func (s seenRequest) bearer() string {
	scheme, tok, ok := strings.Cut(s.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return tok
}

// upstreamLog wraps the whoami upstream and records every request before
// whoami answers it. It passes the ResponseWriter through untouched, so
// WebSocket hijacking and event-stream flushing behave as without it.
type upstreamLog struct {
	mu   sync.Mutex
	reqs []seenRequest
}

func (l *upstreamLog) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.reqs = append(l.reqs, seenRequest{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone()})
		l.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// to returns the requests the upstream received for path, oldest first.
func (l *upstreamLog) to(path string) []seenRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []seenRequest
	for _, r := range l.reqs {
		if r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// count is how many requests the upstream received, leaving out
// /favicon.ico, which Chromium fetches on its own whenever it likes.
func (l *upstreamLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.reqs {
		if r.Path != "/favicon.ico" {
			n++
		}
	}
	return n
}

// browserEnv is the demo provider, the whoami upstream and authgate in
// front of it, all on 127.0.0.1.
type browserEnv struct {
	t      *testing.T
	base   string // authgate, without a trailing slash
	issuer string // the demo provider, with its trailing slash
	idp    *demoidp.Provider
	up     *upstreamLog
	gate   *gate
}

// longTokens is a token lifetime well beyond AUTHGATE_REFRESH_SKEW's
// default (60s), so that no request in a test refreshes.
const longTokens = 10 * time.Minute

// startBrowserEnv starts the three servers. tokenLifetime is the lifetime
// of access and ID tokens; extra environment variables override the
// defaults.
func startBrowserEnv(t *testing.T, tokenLifetime time.Duration, extra map[string]string) *browserEnv {
	t.Helper()
	return startBrowserEnvUsers(t, tokenLifetime, nil, extra)
}

// startBrowserEnvUsers is startBrowserEnv with the demo provider's users
// (nil: its default users).
func startBrowserEnvUsers(t *testing.T, tokenLifetime time.Duration, users []demoidp.User, extra map[string]string) *browserEnv {
	t.Helper()
	gateLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	idpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &browserEnv{t: t, base: "http://" + gateLn.Addr().String(), issuer: "http://" + idpLn.Addr().String() + "/", up: &upstreamLog{}}

	idpLogs := &syncBuffer{}
	e.idp, err = demoidp.New(demoidp.Options{
		Issuer: e.issuer,
		Clients: []demoidp.Client{{
			ID: browserClientID, Secret: browserClientSecret,
			RedirectURIs:           []string{e.base + "/oauth2/callback"},
			PostLogoutRedirectURIs: []string{e.base + "/"},
		}},
		Users:               users,
		AccessTokenLifetime: tokenLifetime,
		IDTokenLifetime:     tokenLifetime,
		Logger:              slog.New(slog.NewTextHandler(idpLogs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatalf("demoidp.New: %v", err)
	}
	idpSrv := httptest.NewUnstartedServer(e.idp.Handler())
	idpSrv.Listener.Close()
	idpSrv.Listener = idpLn
	idpSrv.Start()
	t.Cleanup(idpSrv.Close)

	upSrv := httptest.NewServer(e.up.wrap(whoami.New(whoami.Options{Logger: slog.New(slog.DiscardHandler)})))
	t.Cleanup(upSrv.Close)

	env := map[string]string{
		"AUTHGATE_UPSTREAM":        upSrv.URL,
		"AUTHGATE_OIDC_ISSUER_URL": e.issuer,
		"AUTHGATE_CLIENT_ID":       browserClientID,
		"AUTHGATE_CLIENT_SECRET":   browserClientSecret,
		"AUTHGATE_COOKIE_SECRET":   testCookieSecret,
		"AUTHGATE_REDIRECT_URL":    e.base + "/oauth2/callback",
		"AUTHGATE_COOKIE_SECURE":   "false",
		"AUTHGATE_INTERNAL_ADDR":   "127.0.0.1:0",
		"AUTHGATE_SCOPES":          "openid,email,profile,groups,offline_access",
		"AUTHGATE_LOG_LEVEL":       "debug",
	}
	for k, v := range extra {
		env[k] = v
	}
	// startGateWith clears every AUTHGATE_* variable, sets env, starts
	// authgate in-process on gateLn and waits for /readyz.
	e.gate = startGateWith(t, gateLn, env, nil, nil)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("authgate logs:\n%s", e.gate.logs.String())
			t.Logf("demo provider logs:\n%s", idpLogs.String())
		}
	})
	return e
}

// chromiumPath finds the browser. A missing browser fails the test: the
// test command (.ci/test) installs it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	t.Fatal("chromium not found on PATH: the browser tests need it; install it with `apt-get install chromium` (bash .ci/test does)")
	return ""
}

// newChromium starts a headless Chromium with a fresh profile in a temp
// dir and returns the context of its first tab. The browser is closed
// when the test ends, before its profile is deleted.
func newChromium(t *testing.T) context.Context {
	t.Helper()
	profile := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.UserDataDir(profile),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	// The deadline bounds the whole test's use of the browser; when it
	// passes, the browser is closed and every action fails.
	root, cancelRoot := context.WithTimeout(context.Background(), browserTestTimeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(root, opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for the browser process to exit
		cancelRoot()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// newTab opens another tab in the browser of ctx.
func newTab(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	return tab
}

// pageState is what a page shows.
type pageState struct {
	URL   string `json:"url"`
	Title string `json:"title"`
	H1    string `json:"h1"`
	Text  string `json:"text"`
}

const pageStateJS = `({
	url: location.href,
	title: document.title,
	h1: (document.querySelector('h1') || {textContent: ''}).textContent.trim(),
	text: document.body ? document.body.innerText : ''
})`

func readPage(t *testing.T, ctx context.Context) pageState {
	t.Helper()
	p, err := chromedp.Run(ctx, chromedp.Evaluate[pageState](pageStateJS))
	if err != nil {
		t.Fatalf("read page: %v", err)
	}
	return p
}

const loginForm = `form[action="/login"]`

// waitLoginPage waits for the demo provider's login page and checks it.
func (e *browserEnv) waitLoginPage(t *testing.T, ctx context.Context) pageState {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, pageTimeout)
	defer cancel()
	if err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.CSS(loginForm))); err != nil {
		t.Fatalf("waiting for the login page: %v (page: %+v)", err, readPageQuiet(ctx))
	}
	p := readPage(t, ctx)
	if p.H1 != "Sign in" {
		t.Errorf("login page heading = %q, want %q", p.H1, "Sign in")
	}
	if !strings.HasPrefix(p.URL, e.issuer+"login?") {
		t.Errorf("login page URL = %q, want it under %q", p.URL, e.issuer+"login?")
	}
	return p
}

// readPageQuiet is readPage for failure messages.
func readPageQuiet(ctx context.Context) pageState {
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	p, _ := chromedp.Run(c, chromedp.Evaluate[pageState](pageStateJS))
	p.Text = trimText(p.Text, 300)
	return p
}

func trimText(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// submitLogin fills the login form that the tab shows and submits it.
func submitLogin(ctx context.Context, username, password string) error {
	return chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(loginForm)),
		chromedp.SendKeys(chromedp.ID("username"), username),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.CSS(loginForm+` button[type="submit"]`)),
	)
}

// waitWhoami waits for the whoami page (its access-token section) and
// returns what it shows.
func waitWhoami(t *testing.T, ctx context.Context) pageState {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, pageTimeout)
	defer cancel()
	if err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.ID("token"))); err != nil {
		t.Fatalf("waiting for the whoami page: %v (page: %+v)", err, readPageQuiet(ctx))
	}
	p := readPage(t, ctx)
	if p.H1 != "whoami: what authgate forwarded" {
		t.Errorf("whoami page heading = %q", p.H1)
	}
	return p
}

// signIn navigates to path, expects the login page, signs in as alice and
// returns the whoami page the browser lands on.
func (e *browserEnv) signIn(t *testing.T, ctx context.Context, path string) pageState {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(e.base+path)); err != nil {
		t.Fatalf("navigate %s: %v", path, err)
	}
	e.waitLoginPage(t, ctx)
	if err := submitLogin(ctx, "alice", "alice-pw"); err != nil {
		t.Fatalf("submit login form: %v", err)
	}
	p := waitWhoami(t, ctx)
	if p.URL != e.base+path {
		t.Errorf("after sign-in the browser is at %q, want %q", p.URL, e.base+path)
	}
	return p
}

// jwtClaims decodes the payload of a compact JWS without checking it.
func jwtClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("bearer token is not a JWT (%d parts)", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("decode JWT payload: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("parse JWT payload: %v", err)
	}
	return c
}

func jwtExpiry(t *testing.T, tok string) time.Time {
	t.Helper()
	exp, ok := jwtClaims(t, tok)["exp"].(float64)
	if !ok {
		t.Fatal("access token has no exp claim")
	}
	return time.Unix(int64(exp), 0)
}

// checkAliceToken checks that tok is an access token of the demo
// provider for alice.
func (e *browserEnv) checkAliceToken(t *testing.T, tok string) {
	t.Helper()
	if tok == "" {
		t.Fatal("upstream received no bearer token")
	}
	c := jwtClaims(t, tok)
	if c["sub"] != "user-alice" {
		t.Errorf("token sub = %v, want user-alice", c["sub"])
	}
	if c["iss"] != e.issuer {
		t.Errorf("token iss = %v, want %q", c["iss"], e.issuer)
	}
}

// userinfoStatus asks the demo provider's userinfo endpoint about tok: 200
// when the IdP holds it valid (signature, expiry, not revoked).
func (e *browserEnv) userinfoStatus(t *testing.T, tok string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.issuer+"userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// authgateCookies returns the browser's cookies for authgate's origin
// that authgate set (session and login-flow cookies), by name.
func (e *browserEnv) authgateCookies(t *testing.T, ctx context.Context) map[string]*network.Cookie {
	t.Helper()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{e.base + "/"}})
	if err != nil {
		t.Fatalf("get cookies: %v", err)
	}
	out := map[string]*network.Cookie{}
	for _, c := range res.Cookies {
		if strings.HasPrefix(c.Name, "authgate") {
			out[c.Name] = c
		}
	}
	return out
}

// TestBrowserDeepLink: a deep link opened without a session shows the
// login page; after signing in the browser is back on exactly that link
// and the upstream received alice's bearer token.
func TestBrowserDeepLink(t *testing.T) {
	tests := []struct {
		name      string
		path      string
		wantPath  string // as the upstream sees it
		wantQuery string
	}{
		{name: "query", path: "/some/page?x=1", wantPath: "/some/page", wantQuery: "x=1"},
		{name: "escaped path and repeated query", path: "/docs/a%20b/c?q=%E2%9C%93&x=1&x=2", wantPath: "/docs/a b/c", wantQuery: "q=%E2%9C%93&x=1&x=2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startBrowserEnv(t, longTokens, nil)
			ctx := newChromium(t)

			if err := chromedp.Do(ctx, chromedp.Navigate(e.base+tt.path)); err != nil {
				t.Fatalf("navigate: %v", err)
			}
			e.waitLoginPage(t, ctx)
			if n := e.up.count(); n != 0 {
				t.Fatalf("upstream received %d requests before sign-in, want 0", n)
			}

			if err := submitLogin(ctx, "alice", "alice-pw"); err != nil {
				t.Fatalf("submit login form: %v", err)
			}
			p := waitWhoami(t, ctx)
			if p.URL != e.base+tt.path {
				t.Errorf("after sign-in the browser is at %q, want %q", p.URL, e.base+tt.path)
			}
			for _, want := range []string{"Path\t" + tt.wantPath, "Query\t" + tt.wantQuery, "sub\tuser-alice", "preferred_username\talice"} {
				if !strings.Contains(p.Text, want) {
					t.Errorf("whoami page does not show %q:\n%s", want, trimText(p.Text, 1500))
				}
			}

			got := e.up.to(tt.wantPath)
			if len(got) != 1 {
				t.Fatalf("upstream received %d requests for %q, want 1", len(got), tt.wantPath)
			}
			if got[0].RawQuery != tt.wantQuery {
				t.Errorf("upstream RawQuery = %q, want %q", got[0].RawQuery, tt.wantQuery)
			}
			e.checkAliceToken(t, got[0].bearer())
			if c := got[0].Header.Get("Cookie"); strings.Contains(c, "authgate") {
				t.Errorf("upstream Header(%q) = %q, want authgate's cookies removed", "Cookie", c)
			}
			if n := e.up.count(); n != 1 {
				t.Errorf("upstream received %d requests in all, want 1", n)
			}
		})
	}
}

// TestBrowserDeepLinkFragment: the fragment of a deep link survives the
// login (issue 11), both for a hash-routed SPA URL opened cold (through
// authgate's deep-link page, whose script runs under its strict CSP) and
// for an explicit rd that carries one.
func TestBrowserDeepLinkFragment(t *testing.T) {
	tests := []struct {
		name, open, want string
	}{
		{"hash-routed link opened cold", "/some/deep/link?x=1#/settings/profile", "/some/deep/link?x=1#/settings/profile"},
		{"explicit rd with a fragment", "/oauth2/start?rd=" + url.QueryEscape("/app/?tab=2#/settings/profile?y=1"), "/app/?tab=2#/settings/profile?y=1"},
		{"fragment that looks like a host stays on our origin", "/oauth2/start?rd=" + url.QueryEscape("/#//evil.example/x"), "/#//evil.example/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startBrowserEnv(t, longTokens, nil)
			ctx := newChromium(t)
			if err := chromedp.Do(ctx, chromedp.Navigate(e.base+tt.open)); err != nil {
				t.Fatalf("navigate: %v", err)
			}
			e.waitLoginPage(t, ctx)
			if err := submitLogin(ctx, "alice", "alice-pw"); err != nil {
				t.Fatalf("submit login form: %v", err)
			}
			p := waitWhoami(t, ctx)
			if p.URL != e.base+tt.want {
				t.Errorf("after sign-in the browser is at %q, want %q", p.URL, e.base+tt.want)
			}
			path, query, _ := strings.Cut(strings.SplitN(tt.want, "#", 2)[0], "?")
			got := e.up.to(path)
			if len(got) != 1 || got[0].RawQuery != query {
				t.Fatalf("upstream received %d requests for %q (%+v), want 1 with query %q", len(got), path, got, query)
			}
			e.checkAliceToken(t, got[0].bearer())
		})
	}
}

// TestBrowserRefresh: with access tokens that live 3s, a page reloaded
// after its token expired loads without a login page, and the upstream
// receives a new token that the IdP holds valid. This test waits for real
// expiry: Chromium and the IdP keep real time.
func TestBrowserRefresh(t *testing.T) {
	e := startBrowserEnv(t, 3*time.Second, map[string]string{"AUTHGATE_REFRESH_SKEW": "1s"})
	ctx := newChromium(t)

	e.signIn(t, ctx, "/refresh?n=1")
	first := e.up.to("/refresh")
	if len(first) != 1 {
		t.Fatalf("upstream received %d requests for /refresh, want 1", len(first))
	}
	tok1 := first[0].bearer()
	e.checkAliceToken(t, tok1)
	exp1 := jwtExpiry(t, tok1)

	// Wait until the IdP itself refuses the first token: that is expiry.
	deadline := time.Now().Add(15 * time.Second)
	for e.userinfoStatus(t, tok1) == http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("the IdP still accepts the first token 15s after sign-in (exp %s)", exp1.Format(time.RFC3339))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !time.Now().After(exp1) {
		t.Fatalf("the IdP refused the first token before its exp %s", exp1.Format(time.RFC3339))
	}
	refreshes := e.idp.TokenRequests("refresh_token")

	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	p := waitWhoami(t, ctx)
	if p.URL != e.base+"/refresh?n=1" {
		t.Errorf("after reload the browser is at %q, want %q", p.URL, e.base+"/refresh?n=1")
	}
	if strings.Contains(p.Text, "Sign in") {
		t.Errorf("reloaded page shows a sign-in prompt:\n%s", trimText(p.Text, 800))
	}
	// The page's countdown reads the token's exp: it must not be past.
	class, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('countdown').className`))
	if err != nil {
		t.Fatalf("read countdown: %v", err)
	}
	if class != "ok" {
		t.Errorf("countdown class = %q, want %q (the page shows an expired token)", class, "ok")
	}

	all := e.up.to("/refresh")
	if len(all) != 2 {
		t.Fatalf("upstream received %d requests for /refresh, want 2", len(all))
	}
	tok2 := all[1].bearer()
	e.checkAliceToken(t, tok2)
	if tok2 == tok1 {
		t.Fatal("upstream received the expired token again after reload")
	}
	if exp2 := jwtExpiry(t, tok2); !exp2.After(exp1) {
		t.Errorf("new token exp %s is not after the old one's %s", exp2.Format(time.RFC3339), exp1.Format(time.RFC3339))
	}
	if code := e.userinfoStatus(t, tok2); code != http.StatusOK {
		t.Errorf("IdP userinfo with the new token = %d, want 200", code)
	}
	if got := e.idp.TokenRequests("refresh_token") - refreshes; got != 1 {
		t.Errorf("refresh_token grants during the reload = %d, want 1", got)
	}
	if got := e.idp.TokenRequests("authorization_code"); got != 1 {
		t.Errorf("authorization_code grants = %d, want 1 (a second means a new login)", got)
	}
}

// TestBrowserTwoTabs: two tabs reach the login page before either signs
// in; both then submit at once, and both end up signed in on their own
// pages.
func TestBrowserTwoTabs(t *testing.T) {
	e := startBrowserEnv(t, longTokens, nil)
	ctx := newChromium(t)
	tabs := map[string]context.Context{"/tab/a?from=a": newTab(t, ctx), "/tab/b?from=b": newTab(t, ctx)}

	for path, tab := range tabs {
		if err := chromedp.Do(tab, chromedp.Navigate(e.base+path)); err != nil {
			t.Fatalf("navigate %s: %v", path, err)
		}
		e.waitLoginPage(t, tab)
	}
	if n := len(e.authgateCookies(t, ctx)); n != 2 {
		t.Errorf("login-flow cookies with two logins in flight = %d, want 2 (one per login)", n)
	}

	var wg sync.WaitGroup
	errs := make(chan error, len(tabs))
	for path, tab := range tabs {
		wg.Go(func() {
			if err := submitLogin(tab, "alice", "alice-pw"); err != nil {
				errs <- fmt.Errorf("tab %s: submit login form: %w", path, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	for path, tab := range tabs {
		p := waitWhoami(t, tab)
		if p.URL != e.base+path {
			t.Errorf("tab %s landed on %q, want %q", path, p.URL, e.base+path)
		}
	}
	// Both tabs stay signed in: a reload goes to the upstream, not to login.
	for path, tab := range tabs {
		if err := chromedp.Do(tab, chromedp.Reload()); err != nil {
			t.Fatalf("reload %s: %v", path, err)
		}
		waitWhoami(t, tab)
	}
	for _, path := range []string{"/tab/a", "/tab/b"} {
		got := e.up.to(path)
		if len(got) != 2 {
			t.Errorf("upstream received %d requests for %s, want 2 (landing and reload)", len(got), path)
			continue
		}
		for _, r := range got {
			e.checkAliceToken(t, r.bearer())
		}
	}
	cookies := e.authgateCookies(t, ctx)
	if _, ok := cookies["authgate"]; !ok || len(cookies) != 1 {
		names := make([]string, 0, len(cookies))
		for n := range cookies {
			names = append(names, n)
		}
		t.Errorf("authgate cookies after both logins = %v, want only the session cookie %q", names, "authgate")
	}
	if got := e.idp.TokenRequests("authorization_code"); got != 2 {
		t.Errorf("authorization_code grants = %d, want 2", got)
	}
}

// fetchResult is what a fetch() from the page got.
type fetchResult struct {
	Status      int    `json:"status"`
	Redirected  bool   `json:"redirected"`
	URL         string `json:"url"`
	ContentType string `json:"contentType"`
	Body        string `json:"body"`
}

func pageFetch(t *testing.T, ctx context.Context, path, init string) fetchResult {
	t.Helper()
	js := fmt.Sprintf(`fetch(%q, %s).then(async r => ({
		status: r.status, redirected: r.redirected, url: r.url,
		contentType: r.headers.get('content-type') || '', body: await r.text()
	}))`, path, init)
	res, err := chromedp.Run(ctx, chromedp.Evaluate[fetchResult](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("fetch %s: %v", path, err)
	}
	return res
}

// TestBrowserFetchAfterSignOut: a page left open after the user signed out
// in another tab gets 401 JSON from fetch(), never a login page; a
// navigation from it gets the login page.
func TestBrowserFetchAfterSignOut(t *testing.T) {
	e := startBrowserEnv(t, longTokens, nil)
	ctx := newChromium(t)
	e.signIn(t, ctx, "/app")

	// Signed in, the same fetch reaches the upstream.
	ok := pageFetch(t, ctx, "/api/echo", `{headers: {Accept: 'application/json'}}`)
	if ok.Status != http.StatusOK || !strings.Contains(ok.Body, `"path": "/api/echo"`) {
		t.Fatalf("signed-in fetch = %d %q, want 200 from the upstream", ok.Status, trimText(ok.Body, 200))
	}
	echoes := len(e.up.to("/api/echo"))

	other := newTab(t, ctx)
	if err := chromedp.Do(other, chromedp.Navigate(e.base+"/oauth2/sign_out")); err != nil {
		t.Fatalf("sign out in the other tab: %v", err)
	}
	e.waitLoginPage(t, other)

	tests := []struct {
		name string
		init string
	}{
		{name: "Accept JSON", init: `{headers: {Accept: 'application/json'}}`},
		{name: "default Accept", init: `{}`},
		{name: "POST", init: `{method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pageFetch(t, ctx, "/api/echo", tt.init)
			if got.Status != http.StatusUnauthorized {
				t.Errorf("fetch status = %d, want 401 (body %q)", got.Status, trimText(got.Body, 200))
			}
			if got.Redirected {
				t.Errorf("fetch was redirected to %q, want no redirect", got.URL)
			}
			if !strings.HasPrefix(got.ContentType, "application/json") {
				t.Errorf("fetch Header(%q) = %q, want application/json", "Content-Type", got.ContentType)
			}
			var body struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal([]byte(got.Body), &body); err != nil || body.Error != "unauthenticated" {
				t.Errorf("fetch body = %q, want JSON with error \"unauthenticated\"", trimText(got.Body, 200))
			}
		})
	}
	if n := len(e.up.to("/api/echo")); n != echoes {
		t.Errorf("upstream received %d /api/echo requests after sign-out, want none", n-echoes)
	}

	// The page itself is still the whoami page; navigating from it goes to
	// the login page.
	if p := readPage(t, ctx); p.URL != e.base+"/app" {
		t.Fatalf("the first tab is at %q, want %q", p.URL, e.base+"/app")
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"/app?again=1")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	e.waitLoginPage(t, ctx)
	if n := len(e.up.to("/app")); n != 1 {
		t.Errorf("upstream received %d requests for /app, want 1 (before sign-out only)", n)
	}
}

// TestBrowserSignOut: the whoami page's "Sign out" link ends the session:
// the cookie is gone from the browser, the old cookie is refused if
// replayed, and the next navigation shows the login page (the IdP session
// ended too, so there is no silent sign-in).
func TestBrowserSignOut(t *testing.T) {
	e := startBrowserEnv(t, longTokens, nil)
	ctx := newChromium(t)
	e.signIn(t, ctx, "/home")

	before := e.authgateCookies(t, ctx)
	sess, ok := before["authgate"]
	if !ok {
		t.Fatalf("no session cookie %q after sign-in", "authgate")
	}
	if !sess.HTTPOnly {
		t.Errorf("session cookie is not HttpOnly")
	}
	seen := e.up.count()

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`a[href="/oauth2/sign_out"]`))); err != nil {
		t.Fatalf("click Sign out: %v", err)
	}
	// sign_out → the IdP's end_session → back to authgate's "/" → login.
	e.waitLoginPage(t, ctx)

	// The login page that follows has a login in flight, so its flow
	// cookie may be there; the session cookie must not.
	for name := range e.authgateCookies(t, ctx) {
		if !strings.HasPrefix(name, "authgate_flow") {
			t.Errorf("cookie %q is still in the browser after sign-out", name)
		}
	}
	// Replaying the captured cookie does not bring the session back.
	req, _ := http.NewRequest(http.MethodGet, e.base+"/api/echo", nil)
	req.AddCookie(&http.Cookie{Name: sess.Name, Value: sess.Value})
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("replay old cookie: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("request with the signed-out cookie = %d, want 401", resp.StatusCode)
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"/home")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	e.waitLoginPage(t, ctx)
	if n := e.up.count(); n != seen {
		t.Errorf("upstream received %d requests after sign-out, want none", n-seen)
	}
}

// streamResult is what the page's WebSocket and EventSource saw.
type streamResult struct {
	Echo   string `json:"echo"`
	Events []struct {
		Data string  `json:"data"`
		At   float64 `json:"at"` // ms after the EventSource was created
	} `json:"events"`
	End float64 `json:"end"` // ms after creation when the stream ended
}

const streamJS = `(async () => {
	const echo = await new Promise((resolve, reject) => {
		const ws = new WebSocket('ws://' + location.host + '/ws');
		const timer = setTimeout(() => reject(new Error('websocket: no echo within 10s')), 10000);
		ws.onopen = () => ws.send('hello');
		ws.onmessage = e => { clearTimeout(timer); ws.close(); resolve(e.data); };
		ws.onerror = () => { clearTimeout(timer); reject(new Error('websocket error')); };
	});
	const t0 = performance.now();
	const events = [];
	const end = await new Promise(resolve => {
		const es = new EventSource('/events?n=3&interval=1s');
		const done = () => { es.close(); resolve(performance.now() - t0); };
		const timer = setTimeout(done, 15000);
		es.onmessage = e => {
			events.push({data: e.data, at: performance.now() - t0});
			if (events.length === 3) { clearTimeout(timer); done(); }
		};
		es.onerror = () => { clearTimeout(timer); done(); };
	});
	return {echo, events, end};
})()`

// TestBrowserStreams: after sign-in, a WebSocket echo and a server-sent
// event stream from the upstream work through authgate, and the events
// arrive as they are sent, not all at once when the stream ends.
func TestBrowserStreams(t *testing.T) {
	e := startBrowserEnv(t, longTokens, nil)
	ctx := newChromium(t)
	e.signIn(t, ctx, "/streams")

	res, err := chromedp.Run(ctx, chromedp.Evaluate[streamResult](streamJS, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("run streams in the page: %v", err)
	}
	if res.Echo != "hello" {
		t.Errorf("websocket echo = %q, want %q", res.Echo, "hello")
	}
	var data []string
	for _, ev := range res.Events {
		data = append(data, ev.Data)
	}
	if strings.Join(data, ",") != "1,2,3" {
		t.Fatalf("events = %v, want [1 2 3]", data)
	}
	// The upstream sends the events 1s apart. Delivered as sent, the first
	// arrives about 2s before the last; buffered until the stream ends, all
	// arrive together. Half the gap is a generous margin either way.
	first, last := res.Events[0].At, res.Events[2].At
	if last-first < 1000 {
		t.Errorf("first event at %.0f ms, last at %.0f ms: want the first at least 1000 ms before the last (the stream was buffered)", first, last)
	}

	ws := e.up.to("/ws")
	if len(ws) != 1 {
		t.Fatalf("upstream received %d /ws requests, want 1", len(ws))
	}
	if got := ws[0].Header.Get("Upgrade"); !strings.EqualFold(got, "websocket") {
		t.Errorf("upstream /ws Header(%q) = %q, want websocket", "Upgrade", got)
	}
	e.checkAliceToken(t, ws[0].bearer())
	ev := e.up.to("/events")
	if len(ev) == 0 {
		t.Fatal("upstream received no /events request")
	}
	if got := ev[0].Header.Get("Accept"); got != "text/event-stream" {
		t.Errorf("upstream /events Header(%q) = %q, want text/event-stream", "Accept", got)
	}
	e.checkAliceToken(t, ev[0].bearer())
}
