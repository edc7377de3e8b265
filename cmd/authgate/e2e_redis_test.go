package main

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/redistest"
)

// recoveryWait bounds how long a Redis restart or a Sentinel failover may
// take to show in authgate's answers; the tests wait for a condition, they
// do not measure.
const recoveryWait = 30 * time.Second

// TestRedisSessionsShared: a login on one replica is a session on the
// other, and the browser holds only a ticket.
func TestRedisSessionsShared(t *testing.T) {
	srv := redistest.Start(t)
	r := startReplicas(t, replicaOptions{env: redisEnv(srv)})
	_, cookie := r.signIn(r.a)
	loginToken := bearer(r.up.to("/")[0].Header)

	code, _, body := send(t, "GET", r.b.URL+"/api/echo", cookie, apiHeader)
	if code != http.StatusOK {
		t.Fatalf("GET b/api/echo with a's cookie = %d %.200s, want 200", code, body)
	}
	seen := r.up.to("/api/echo")
	if len(seen) != 1 || bearer(seen[0].Header) != loginToken || seen[0].Header.Get("X-Forwarded-Email") != "alice@example.com" {
		t.Errorf("upstream via b got %d requests; want one with a's access token and alice's email", len(seen))
	}
	if keys := redisSessions(t, srv); len(keys) != 1 {
		t.Errorf("sessions in Redis = %d, want 1", len(keys))
	}
	// A ticket (ID and key) is far smaller than a sealed session holding
	// three tokens.
	if len(cookie) > 300 {
		t.Errorf("cookie is %d bytes, want a ticket under 300", len(cookie))
	}
}

// TestRedisRefreshOnceAcrossReplicas: a burst of requests split over both
// replicas with a token inside the refresh skew makes one refresh at the
// IdP, and every request reaches the upstream with the new token.
func TestRedisRefreshOnceAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	// Two-minute tokens: the refresh skew is 60 s (at most half the
	// lifetime), so 90 s after login a token is due but still valid.
	r := startReplicas(t, replicaOptions{env: redisEnv(srv), tokenLifetime: 2 * time.Minute})
	_, cookie := r.signIn(r.a)
	oldToken := bearer(r.up.to("/")[0].Header)
	r.advance(90 * time.Second)

	const parallel = 20
	codes := make([]int, parallel)
	var wg sync.WaitGroup
	for i := range parallel {
		g := r.a
		if i%2 == 1 {
			g = r.b
		}
		wg.Go(func() {
			req, _ := http.NewRequest("GET", g.URL+"/burst", nil)
			req.Header.Set("Cookie", cookie)
			req.Header.Set("Accept", "application/json")
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes[i] = resp.StatusCode
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("request %d (replica %s) = %d, want 200", i, map[bool]string{true: "a", false: "b"}[i%2 == 0], c)
		}
	}
	if got := r.idp.TokenRequests("refresh_token"); got != 1 {
		t.Fatalf("refresh_token grants at the IdP = %d, want 1", got)
	}
	seen := r.up.to("/burst")
	if len(seen) != parallel {
		t.Fatalf("upstream received %d burst requests, want %d", len(seen), parallel)
	}
	newToken := bearer(seen[0].Header)
	for i, s := range seen {
		if tok := bearer(s.Header); tok == oldToken || tok != newToken {
			t.Errorf("burst request %d reached the upstream with the old token = %t or another new one, want the one refreshed token", i, tok == oldToken)
		}
	}

	// Both replicas go on with the refreshed session, no second refresh.
	for _, g := range []*gate{r.a, r.b} {
		if code, _, _ := send(t, "GET", g.URL+"/after", cookie, apiHeader); code != http.StatusOK {
			t.Errorf("GET %s/after = %d, want 200", g.URL, code)
		}
	}
	for i, s := range r.up.to("/after") {
		if bearer(s.Header) != newToken {
			t.Errorf("request %d after the burst did not carry the refreshed token", i)
		}
	}
	if got := r.idp.TokenRequests("refresh_token"); got != 1 {
		t.Errorf("refresh_token grants after the burst = %d, want 1", got)
	}
	// The replicas' metrics count refreshes at the IdP: one in all.
	var counted int
	for _, g := range []*gate{r.a, r.b} {
		counted += metricValue(t, g, `authgate_refreshes_total{result="success"}`)
	}
	if counted != 1 {
		t.Errorf("authgate_refreshes_total{result=\"success\"} summed over the replicas = %d, want 1", counted)
	}
}

// TestRedisSignOutDeletesSession: sign-out on one replica deletes the
// session from Redis, so its ticket replayed on the other is refused, and
// closes the session's WebSocket on the other.
func TestRedisSignOutDeletesSession(t *testing.T) {
	srv := redistest.Start(t)
	r := startReplicas(t, replicaOptions{env: redisEnv(srv)})
	b, cookie := r.signIn(r.a)
	ws := openWebSocket(t, r.b, cookie)

	resp := b.request("GET", r.a.URL+"/oauth2/sign_out", sameOriginLink)
	signedOut := time.Now()
	readBody(t, resp)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, r.issuer+"end_session?") {
		t.Fatalf("sign_out = %d Location %q, want 302 to the provider's end_session", resp.StatusCode, loc)
	}
	if keys := redisSessions(t, srv); len(keys) != 0 {
		t.Errorf("sessions in Redis after sign-out = %d, want 0", len(keys))
	}
	if code, _, _ := send(t, "GET", r.b.URL+"/x", cookie, apiHeader); code != http.StatusUnauthorized {
		t.Errorf("ticket replayed on b after sign-out on a = %d, want 401", code)
	}
	if code, _, _ := send(t, "GET", r.a.URL+"/x", cookie, apiHeader); code != http.StatusUnauthorized {
		t.Errorf("ticket replayed on a after sign-out = %d, want 401", code)
	}
	took := endsWithin(t, "WebSocket on b", signedOut, streamCloseLimit, ws, drainWebSocket(ws))
	t.Logf("WebSocket on b closed %v after sign-out on a", took.Round(time.Millisecond))
}

// traffic sends requests with one cookie to every gate in turn until
// stopped, and counts the answers by status (0: the request failed).
type traffic struct {
	stop chan struct{}
	done chan struct{}

	mu    sync.Mutex
	codes map[int]int
}

// maxTraffic bounds the requests of one traffic run.
const maxTraffic = 20000

func startTraffic(cookie string, gates ...*gate) *traffic {
	tr := &traffic{stop: make(chan struct{}), done: make(chan struct{}), codes: make(map[int]int)}
	// Paced, so that the loop does not take the machine's every core.
	tick := time.NewTicker(2 * time.Millisecond)
	go func() {
		defer close(tr.done)
		defer tick.Stop()
		for i := range maxTraffic {
			select {
			case <-tr.stop:
				return
			case <-tick.C:
			}
			code := 0
			req, _ := http.NewRequest("GET", gates[i%len(gates)].URL+"/traffic", nil)
			req.Header.Set("Cookie", cookie)
			req.Header.Set("Accept", "application/json")
			if resp, err := http.DefaultTransport.RoundTrip(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				code = resp.StatusCode
			}
			tr.mu.Lock()
			tr.codes[code]++
			tr.mu.Unlock()
		}
	}()
	return tr
}

// count returns how many answers had status code.
func (tr *traffic) count(code int) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.codes[code]
}

// end stops the traffic and returns the counts.
func (tr *traffic) end() map[int]int {
	close(tr.stop)
	<-tr.done
	return tr.codes
}

// TestRedisOutage: Redis dies under traffic: sessions get 503 with
// Retry-After (never 500, never a login loop), readiness fails, authgate
// keeps running; Redis comes back with its data and the same cookie works
// again without restarting authgate.
func TestRedisOutage(t *testing.T) {
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	r := startReplicas(t, replicaOptions{env: redisEnv(srv)})
	_, cookie := r.signIn(r.a)

	tr := startTraffic(cookie, r.a, r.b)
	redistest.Eventually(t, recoveryWait, "traffic answered", func() bool { return tr.count(http.StatusOK) > 10 })
	srv.Kill()
	redistest.Eventually(t, 10*time.Second, "traffic sees the outage", func() bool { return tr.count(http.StatusServiceUnavailable) > 10 })

	for _, g := range []*gate{r.a, r.b} {
		for _, h := range []struct {
			name   string
			header map[string]string
			want   string // in the body
		}{
			{"api", apiHeader, `"error":"session_store_unavailable"`},
			{"navigation", navHeader, "<html"},
		} {
			code, retry, body := send(t, "GET", g.URL+"/page", cookie, h.header)
			if code != http.StatusServiceUnavailable || retry == "" || !strings.Contains(body, h.want) {
				t.Errorf("%s with Redis down on %s = %d Retry-After %q, want 503 with Retry-After and %q in %.200q", h.name, g.URL, code, retry, h.want, body)
			}
		}
		if code := readyz(t, g); code != http.StatusServiceUnavailable {
			t.Errorf("readyz with Redis down = %d, want 503", code)
		}
		stillRunning(t, g)
	}
	// A sign-out that cannot reach the session must not pretend: clearing
	// the cookie alone would leave the session alive for any copy of it.
	resp := rawRequest(t, "GET", r.a.URL+"/oauth2/sign_out", cookie, sameOriginLink)
	readBody(t, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("sign_out with Redis down = %d Location %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, c := range resp.Cookies() {
		if c.Name == "authgate" {
			t.Errorf("sign_out with Redis down set the session cookie (MaxAge %d), want it kept for a retry", c.MaxAge)
		}
	}

	srv.Restart()
	for _, g := range []*gate{r.a, r.b} {
		redistest.Eventually(t, recoveryWait, "session works again on "+g.URL, func() bool {
			code, _, _ := send(t, "GET", g.URL+"/back", cookie, apiHeader)
			return code == http.StatusOK
		})
		if code := readyz(t, g); code != http.StatusOK {
			t.Errorf("readyz after Redis came back = %d, want 200", code)
		}
	}
	before := tr.count(http.StatusOK)
	redistest.Eventually(t, recoveryWait, "traffic recovers", func() bool { return tr.count(http.StatusOK) > before+10 })
	codes := tr.end()
	for code, n := range codes {
		if code != http.StatusOK && code != http.StatusServiceUnavailable {
			t.Errorf("%d requests under traffic answered %d, want only 200 and 503", n, code)
		}
	}
	t.Logf("traffic: %v", codes)
	for _, g := range []*gate{r.a, r.b} {
		stillRunning(t, g)
		if logs := g.logs.String(); strings.Contains(logs, "panic") {
			t.Errorf("logs of %s mention a panic", g.URL)
		}
	}

	// Now the sign-out goes through, and the session is gone.
	resp = rawRequest(t, "GET", r.a.URL+"/oauth2/sign_out", cookie, sameOriginLink)
	readBody(t, resp)
	if resp.StatusCode != http.StatusFound {
		t.Errorf("sign_out after Redis came back = %d, want 302", resp.StatusCode)
	}
	if code, _, _ := send(t, "GET", r.b.URL+"/x", cookie, apiHeader); code != http.StatusUnauthorized {
		t.Errorf("cookie after sign-out = %d, want 401", code)
	}
}

// TestRedisSentinelFailover: the master dies; once Sentinel has promoted
// the replica the session works again, and until then requests get 503,
// never a login.
func TestRedisSentinelFailover(t *testing.T) {
	set := redistest.StartSentinels(t)
	r := startReplicas(t, replicaOptions{env: map[string]string{
		"AUTHGATE_SESSION_STORE":         "redis",
		"AUTHGATE_REDIS_ADDRS":           set.Sentinel.Addr(),
		"AUTHGATE_REDIS_SENTINEL_MASTER": set.Name,
	}})
	_, cookie := r.signIn(r.a)
	if code, _, _ := send(t, "GET", r.b.URL+"/before", cookie, apiHeader); code != http.StatusOK {
		t.Fatalf("GET b/before = %d, want 200", code)
	}
	set.Replicate(t)

	set.Master.Kill()
	start := time.Now()
	// a cached the session at login (AUTHGATE_REDIS_CACHE_TTL, 1s by
	// default) and may serve it until its revocation feed notices the
	// master is gone; from then on it reads Redis until the feed is back.
	redistest.Eventually(t, recoveryWait, "a's revocation feed notices", func() bool {
		return strings.Contains(r.a.logs.String(), "revocation feed interrupted")
	})
	codes := make(map[int]int)
	redistest.Eventually(t, recoveryWait, "session works after failover", func() bool {
		code, _, _ := send(t, "GET", r.a.URL+"/during", cookie, apiHeader)
		codes[code]++
		return code == http.StatusOK
	})
	t.Logf("session works %v after the master died (answers meanwhile: %v)", time.Since(start).Round(time.Millisecond), codes)
	for code, n := range codes {
		if code != http.StatusOK && code != http.StatusServiceUnavailable {
			t.Errorf("%d requests during the failover answered %d, want only 503 until it works", n, code)
		}
	}
	if addr, err := set.MasterAddr(); addr != set.Replica.Addr() || err != nil {
		t.Errorf("master after failover = %q, %v; want the replica %s", addr, err, set.Replica.Addr())
	}
	redistest.Eventually(t, recoveryWait, "session works on b after failover", func() bool {
		code, _, _ := send(t, "GET", r.b.URL+"/after", cookie, apiHeader)
		return code == http.StatusOK
	})
	if code := readyz(t, r.a); code != http.StatusOK {
		t.Errorf("readyz after failover = %d, want 200", code)
	}
}

// TestRedisRefusedRefreshEndsSessionEverywhere: when the IdP refuses the
// session's refresh token (an administrator revoked the user's grants), the
// session ends on every replica, and its open WebSocket on the other
// replica is closed.
func TestRedisRefusedRefreshEndsSessionEverywhere(t *testing.T) {
	srv := redistest.Start(t)
	// Two-minute tokens: 90 s after login a refresh is due (see
	// TestRedisRefreshOnceAcrossReplicas).
	r := startReplicas(t, replicaOptions{env: redisEnv(srv), tokenLifetime: 2 * time.Minute})
	_, cookie := r.signIn(r.a)
	ws := openWebSocket(t, r.b, cookie)
	if n := r.idp.RevokeRefreshTokens("user-alice"); n != 1 {
		t.Fatalf("RevokeRefreshTokens = %d, want 1", n)
	}
	r.advance(90 * time.Second)

	code, _, _ := send(t, "GET", r.a.URL+"/x", cookie, apiHeader)
	refused := time.Now()
	if code != http.StatusUnauthorized {
		t.Fatalf("request whose refresh the IdP refuses = %d, want 401", code)
	}
	took := endsWithin(t, "WebSocket on b", refused, streamCloseLimit, ws, drainWebSocket(ws))
	t.Logf("WebSocket on b closed %v after the refused refresh on a", took.Round(time.Millisecond))
	if code, _, _ := send(t, "GET", r.b.URL+"/x", cookie, apiHeader); code != http.StatusUnauthorized {
		t.Errorf("session on b after the refused refresh on a = %d, want 401", code)
	}
	if got := r.idp.TokenRequests("refresh_token"); got != 1 {
		t.Errorf("refresh calls at the IdP = %d, want 1", got)
	}
}
