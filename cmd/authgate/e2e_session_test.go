package main

import (
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// request sends a request with the browser's cookies, without following
// redirects, with the given headers.
func (b *browser) request(method, rawURL string, header map[string]string) *http.Response {
	b.t.Helper()
	req, _ := http.NewRequest(method, rawURL, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	c := *b.Client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	return resp
}

// rawRequest sends a request with exactly the Cookie header given.
func rawRequest(t *testing.T, method, rawURL, cookie string, header map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, rawURL, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	return resp
}

// TestBrowserVersusAPI: only navigations are sent to login.
func TestBrowserVersusAPI(t *testing.T) {
	g := startGate(t)
	tests := []struct {
		name   string
		method string
		header map[string]string
		want   int
	}{
		{"navigation", "GET", map[string]string{"Sec-Fetch-Mode": "navigate", "Accept": "text/html"}, http.StatusOK}, // the deep-link page
		{"navigation without fetch metadata", "GET", map[string]string{"Accept": "text/html,*/*"}, http.StatusFound},
		{"fetch", "GET", map[string]string{"Sec-Fetch-Mode": "cors", "Accept": "*/*"}, http.StatusUnauthorized},
		{"fetch accepting html", "GET", map[string]string{"Sec-Fetch-Mode": "cors", "Accept": "text/html"}, http.StatusUnauthorized},
		{"json client", "GET", map[string]string{"Accept": "application/json"}, http.StatusUnauthorized},
		{"curl", "GET", map[string]string{"Accept": "*/*"}, http.StatusUnauthorized},
		{"event stream", "GET", map[string]string{"Accept": "text/event-stream"}, http.StatusUnauthorized},
		{"websocket", "GET", map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Accept": "text/html"}, http.StatusUnauthorized},
		{"form post", "POST", map[string]string{"Accept": "text/html"}, http.StatusUnauthorized},
		{"html refused with q=0", "GET", map[string]string{"Accept": "text/html;q=0, application/json"}, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := rawRequest(t, tt.method, g.URL+"/api/thing", "", tt.header)
			body := readBody(t, resp)
			if resp.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d (%s)", resp.StatusCode, tt.want, body)
			}
			if tt.want == http.StatusFound {
				if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, g.op.URL+"auth?") {
					t.Errorf("Location = %q, want the OP's authorization endpoint", loc)
				}
				return
			}
			if tt.want == http.StatusOK {
				if !strings.Contains(body, `<meta name="authgate-rd" content="/api/thing">`) {
					t.Errorf("body = %.300q, want the deep-link page for /api/thing", body)
				}
				return
			}
			if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer ") {
				t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", got)
			}
			if accept := tt.header["Accept"]; !strings.Contains(accept, "text/html") {
				var e struct{ Error string }
				if json.Unmarshal([]byte(body), &e) != nil || e.Error != "unauthenticated" {
					t.Errorf("body = %q, want JSON with error unauthenticated", body)
				}
			}
		})
	}
	if n := g.upstream.count(); n != 0 {
		t.Errorf("upstream received %d unauthenticated requests", n)
	}
}

// TestLoginRedirectCarriesPKCEStateNonce checks the authorization request.
func TestLoginRedirectCarriesPKCEStateNonce(t *testing.T) {
	g := startGate(t)
	resp := rawRequest(t, "GET", g.URL+"/oauth2/start?rd=/here", "", nil)
	readBody(t, resp)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	for _, want := range []string{"code_challenge_method=S256", "code_challenge=", "state=", "nonce=", "response_type=code", "scope=openid"} {
		if !strings.Contains(loc, want) {
			t.Errorf("authorization URL %q lacks %q", loc, want)
		}
	}
	var flow *http.Cookie
	for _, c := range resp.Cookies() {
		if strings.HasPrefix(c.Name, "authgate_flow_") {
			flow = c
		}
	}
	if flow == nil || !flow.HttpOnly || flow.SameSite != http.SameSiteLaxMode || flow.MaxAge <= 0 || flow.MaxAge > 600 {
		t.Errorf("flow cookie = %+v, want HttpOnly, SameSite=Lax, short-lived", flow)
	}
}

// TestTamperedCookieIsFreshLogin: every kind of broken cookie means "no
// session", never a 500.
func TestTamperedCookieIsFreshLogin(t *testing.T) {
	g := startGate(t)
	b := newBrowser(t)
	readBody(t, b.signIn(g, g.URL+"/"))
	var value string
	for _, c := range strings.Split(b.cookieHeader(g), "; ") {
		if name, v, _ := strings.Cut(c, "="); name == "authgate" {
			value = v
		}
	}
	if value == "" {
		t.Fatal("no session cookie after login")
	}
	flip := []byte(value)
	flip[len(flip)/2] ^= 1
	cases := map[string]string{
		"flipped byte":  "authgate=" + string(flip),
		"truncated":     "authgate=" + value[:len(value)/2],
		"empty":         "authgate=",
		"garbage":       "authgate=%%%not-base64",
		"other key":     "authgate=AAAA" + value[4:],
		"missing chunk": "authgate=" + value + "; authgate_2=abc",
	}
	for name, cookie := range cases {
		t.Run(name, func(t *testing.T) {
			resp := rawRequest(t, "GET", g.URL+"/x", cookie, map[string]string{"Sec-Fetch-Mode": "navigate", "Accept": "text/html"})
			if body := readBody(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, `<meta name="authgate-start"`) {
				t.Errorf("navigation: %d, want 200 with the page that starts the login", resp.StatusCode)
			}
			resp = rawRequest(t, "GET", g.URL+"/x", cookie, map[string]string{"Accept": "application/json"})
			readBody(t, resp)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("API: %d, want 401", resp.StatusCode)
			}
		})
	}
}

// TestSpoofedIdentityHeadersNeverReachUpstream covers spoofing in every
// spelling and Connection-header stripping.
func TestSpoofedIdentityHeadersNeverReachUpstream(t *testing.T) {
	g := startGate(t)
	b := newBrowser(t)
	readBody(t, b.signIn(g, g.URL+"/"))
	good := g.upstream.last().Header.Clone()

	spoof := map[string]string{
		"X-Forwarded-User":               "admin",
		"X-Forwarded-Email":              "admin@evil.example",
		"X-Forwarded-Groups":             "admins",
		"X-Forwarded-Preferred-Username": "admin",
		"X_Forwarded_User":               "admin",
		"X-Auth-Request-User":            "admin",
		"X-Auth-Request-Email":           "admin@evil.example",
		"Connection":                     "Authorization, X-Forwarded-User, X-Forwarded-Email",
	}
	resp := b.request("GET", g.URL+"/spoof", spoof)
	readBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := g.upstream.last().Header
	for _, h := range []string{"Authorization", "X-Forwarded-User", "X-Forwarded-Email"} {
		if got.Get(h) != good.Get(h) || good.Get(h) == "" {
			t.Errorf("upstream Header(%q) = %q, want %q", h, got.Get(h), good.Get(h))
		}
	}
	for name := range got {
		lower := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
		if strings.HasPrefix(lower, "x-auth-request") {
			t.Errorf("upstream received %s", name)
		}
	}
	for _, v := range got.Values("X-Forwarded-User") {
		if v == "admin" {
			t.Error("spoofed X-Forwarded-User reached the upstream")
		}
	}
	if got.Get("X-Forwarded-Groups") == "admins" || got.Get("X-Forwarded-Preferred-Username") == "admin" {
		t.Error("spoofed identity header reached the upstream")
	}

	// Without a session nothing reaches the upstream, spoofed or not.
	n := g.upstream.count()
	resp = rawRequest(t, "GET", g.URL+"/spoof", "", spoof)
	readBody(t, resp)
	if g.upstream.count() != n {
		t.Error("unauthenticated spoofed request reached the upstream")
	}
}

// TestRefreshSingleFlight: many concurrent requests with an expiring token
// cause exactly one refresh at the IdP; requests still carrying the old
// cookie within the grace window get the new token.
func TestRefreshSingleFlight(t *testing.T) {
	g := startGate(t)
	b := newBrowser(t)
	readBody(t, b.signIn(g, g.URL+"/"))
	oldAuth := g.upstream.last().Header.Get("Authorization")
	oldCookies := b.cookieHeader(g)

	// The example OP's access tokens live 5 minutes; 4m30s later the token
	// is inside the 60s refresh skew.
	g.clock.Advance(4*time.Minute + 30*time.Second)
	const parallel = 20
	var wg sync.WaitGroup
	statuses := make([]int, parallel)
	for i := range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp := rawRequest(t, "GET", g.URL+"/burst", oldCookies, map[string]string{"Accept": "application/json"})
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusOK {
			t.Errorf("request %d: status %d", i, s)
		}
	}
	if got := g.op.grantCount("refresh_token"); got != 1 {
		t.Fatalf("refresh calls at the IdP = %d, want 1", got)
	}
	newAuth := g.upstream.last().Header.Get("Authorization")
	if newAuth == oldAuth || newAuth == "" {
		t.Fatalf("upstream did not receive a new token")
	}

	// The old cookie again, within the grace window: new token, no new refresh.
	resp := rawRequest(t, "GET", g.URL+"/again", oldCookies, map[string]string{"Accept": "application/json"})
	readBody(t, resp)
	if resp.StatusCode != http.StatusOK || g.upstream.last().Header.Get("Authorization") != newAuth {
		t.Errorf("old cookie within grace: %d, token changed=%v", resp.StatusCode, g.upstream.last().Header.Get("Authorization") != newAuth)
	}
	if got := g.op.grantCount("refresh_token"); got != 1 {
		t.Errorf("refresh calls = %d after grace reuse, want 1", got)
	}

	// After the grace window the old cookie holds a spent (rotated) refresh
	// token: the IdP says invalid_grant and the session ends.
	g.clock.Advance(time.Minute)
	resp = rawRequest(t, "GET", g.URL+"/late", oldCookies, map[string]string{"Accept": "application/json"})
	readBody(t, resp)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("spent refresh token: status %d, want 401", resp.StatusCode)
	}
}

// TestSignOut: cookies cleared, refresh token revoked, IdP session ended, and
// a captured cookie replayed afterwards is refused.
func TestSignOut(t *testing.T) {
	g := startGate(t)
	b := newBrowser(t)
	readBody(t, b.signIn(g, g.URL+"/"))
	captured := b.cookieHeader(g)

	resp := b.request("GET", g.URL+"/oauth2/sign_out", sameOriginLink)
	readBody(t, resp)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("sign_out status %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, g.op.URL) || !strings.Contains(loc, "id_token_hint=") || !strings.Contains(loc, "post_logout_redirect_uri=") {
		t.Errorf("sign_out Location = %q, want the OP's end_session_endpoint with id_token_hint", loc)
	}
	cleared := false
	for _, c := range resp.Cookies() {
		if c.Name == "authgate" && c.MaxAge < 0 {
			cleared = true
		}
	}
	if !cleared {
		t.Error("sign_out did not clear the session cookie")
	}
	if g.op.revoke.Load() != 1 {
		t.Errorf("revocation calls = %d, want 1", g.op.revoke.Load())
	}
	resp = rawRequest(t, "GET", g.URL+"/after", captured, map[string]string{"Accept": "application/json"})
	readBody(t, resp)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("replayed cookie after sign-out: %d, want 401", resp.StatusCode)
	}
	resp = b.request("GET", g.URL+"/after", map[string]string{"Sec-Fetch-Mode": "navigate", "Accept": "text/html"})
	if body := readBody(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, `<meta name="authgate-start"`) {
		t.Errorf("navigation after sign-out: %d, want 200 with the page that starts the login", resp.StatusCode)
	}
}

// TestIdPDownAtStart: authgate listens, reports not ready, answers logins
// with 503 and keeps serving valid sessions; it becomes ready by itself.
func TestIdPDownAtStart(t *testing.T) {
	first := startGate(t)
	b := newBrowser(t)
	readBody(t, b.signIn(first, first.URL+"/"))
	cookies := b.cookieHeader(first)

	// A second authgate with the same keys starts while the IdP is down.
	first.op.down.Store(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env := maps.Clone(first.env)
	second := startGateWith(t, ln, env, first.op, first.upstream)

	resp, err := http.Get("http://" + second.InternalAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readyz with IdP down = %d, want 503", resp.StatusCode)
	}
	resp = rawRequest(t, "GET", second.URL+"/oauth2/start", "", map[string]string{"Accept": "text/html"})
	readBody(t, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("login with IdP down = %d Retry-After=%q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	resp = rawRequest(t, "GET", second.URL+"/still-works", cookies, map[string]string{"Accept": "application/json"})
	if body := readBody(t, resp); resp.StatusCode != http.StatusOK || body != "upstream /still-works" {
		t.Errorf("valid session with IdP down: %d %q", resp.StatusCode, body)
	}

	first.op.down.Store(false)
	second.waitReady(t)
	resp = rawRequest(t, "GET", second.URL+"/oauth2/start", "", nil)
	readBody(t, resp)
	if resp.StatusCode != http.StatusFound {
		t.Errorf("login after the IdP came back = %d, want 302", resp.StatusCode)
	}
}

// TestUpstreamDown: 502, as JSON for API clients and a page for browsers.
func TestUpstreamDown(t *testing.T) {
	g := startGate(t)
	b := newBrowser(t)
	readBody(t, b.signIn(g, g.URL+"/"))
	g.upstream.srv.Close()

	resp := b.request("GET", g.URL+"/x", map[string]string{"Accept": "application/json"})
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, `"error":"bad_gateway"`) {
		t.Errorf("API: %d %q, want 502 JSON", resp.StatusCode, body)
	}
	resp = b.request("GET", g.URL+"/x", map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "navigate"})
	body = readBody(t, resp)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "<html") {
		t.Errorf("browser: %d %.100q, want 502 HTML", resp.StatusCode, body)
	}
}

// TestLogsNeverHoldSecrets runs a login, a refresh and a sign-out and then
// searches the captured logs for every token, secret and cookie value.
func TestLogsNeverHoldSecrets(t *testing.T) {
	g := startGate(t)
	b := newBrowser(t)
	readBody(t, b.signIn(g, g.URL+"/"))
	secrets := []string{g.cfg.ClientSecret, g.cfg.CookieSecret}
	secrets = append(secrets, strings.TrimPrefix(g.upstream.last().Header.Get("Authorization"), "Bearer "))
	for _, c := range strings.Split(b.cookieHeader(g), "; ") {
		_, v, _ := strings.Cut(c, "=")
		secrets = append(secrets, v)
	}
	g.clock.Advance(4*time.Minute + 30*time.Second)
	readBody(t, b.request("GET", g.URL+"/r", map[string]string{"Accept": "application/json"}))
	secrets = append(secrets, strings.TrimPrefix(g.upstream.last().Header.Get("Authorization"), "Bearer "))
	readBody(t, b.request("GET", g.URL+"/oauth2/sign_out", sameOriginLink))

	logs := g.logs.String()
	if !strings.Contains(logs, `"msg":"login"`) {
		t.Fatalf("expected a login log line; logs:\n%s", logs)
	}
	for _, s := range secrets {
		if len(s) >= 8 && strings.Contains(logs, s) {
			t.Errorf("logs contain a secret value (%d chars)", len(s))
		}
	}
}

// TestRequestID: a sane client id is kept, else one is generated, and the
// upstream sees the same one.
func TestRequestID(t *testing.T) {
	g := startGate(t)
	b := newBrowser(t)
	readBody(t, b.signIn(g, g.URL+"/"))
	readBody(t, b.request("GET", g.URL+"/a", map[string]string{"X-Request-Id": "abc-123"}))
	if got := g.upstream.last().Header.Get("X-Request-Id"); got != "abc-123" {
		t.Errorf("upstream X-Request-Id = %q, want abc-123", got)
	}
	tooLong := strings.Repeat("x", 300)
	readBody(t, b.request("GET", g.URL+"/b", map[string]string{"X-Request-Id": tooLong}))
	if got := g.upstream.last().Header.Get("X-Request-Id"); got == "" || got == tooLong {
		t.Errorf("upstream X-Request-Id = %q, want a generated id", got)
	}
}

// TestMetrics: the internal listener exposes the counters.
func TestMetrics(t *testing.T) {
	g := startGate(t)
	b := newBrowser(t)
	readBody(t, b.signIn(g, g.URL+"/"))
	resp, err := http.Get("http://" + g.InternalAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	for _, want := range []string{
		`authgate_logins_total{result="success"} 1`,
		`authgate_requests_total{code="0",outcome="forwarded"}`,
		`authgate_upstream_duration_seconds_bucket`,
		`authgate_refreshes_total{result="success"} 0`,
		`authgate_session_cookie_bytes_count 1`,
		`authgate_session_cookie_bytes_bucket{le="4096"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestGracefulShutdown: an in-flight request finishes after shutdown starts.
func TestGracefulShutdown(t *testing.T) {
	g := startGate(t)
	b := newBrowser(t)
	readBody(t, b.signIn(g, g.URL+"/"))
	started, release := make(chan struct{}), make(chan struct{})
	g.upstream.mu.Lock()
	g.upstream.handle = func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "finished")
	}
	g.upstream.mu.Unlock()

	result := make(chan string, 1)
	go func() {
		resp := b.request("GET", g.URL+"/slow", map[string]string{"Accept": "application/json"})
		result <- readBody(t, resp)
	}()
	<-started
	g.cancel() // as SIGTERM does
	// New connections are refused once shutdown has begun, while the
	// in-flight request is still running.
	refused := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		c, err := net.Dial("tcp", g.ProxyAddr())
		if err != nil {
			refused = true
			break
		}
		c.Close()
	}
	if !refused {
		t.Error("new connections still accepted 5s after shutdown began")
	}
	close(release)
	if got := <-result; got != "finished" {
		t.Errorf("in-flight request got %q, want it to finish", got)
	}
	if err := <-g.done; err != nil {
		t.Errorf("Run: %v", err)
	}
	g.done <- nil // for the cleanup
}

// TestForwardedForFromTrustedProxy: behind a trusted proxy the upstream is
// told the client's address the proxy reported; from anyone else the
// client's own X-Forwarded-For is replaced by the peer's address.
func TestForwardedForFromTrustedProxy(t *testing.T) {
	for _, tt := range []struct {
		name    string
		trusted string
		want    string
	}{
		{"trusted loopback proxy", "127.0.0.1/32", "203.0.113.7"},
		{"no trusted proxies", "", "127.0.0.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := startGate(t, withEnv("AUTHGATE_TRUSTED_PROXIES", tt.trusted))
			b := newBrowser(t)
			readBody(t, b.signIn(g, g.URL+"/"))
			readBody(t, b.request("GET", g.URL+"/ip", map[string]string{"X-Forwarded-For": "203.0.113.7", "Accept": "application/json"}))
			if got := g.upstream.last().Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != tt.want {
				t.Errorf("upstream X-Forwarded-For = %q, want %q", got, tt.want)
			}
		})
	}
}
