package proxy

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/proxy/idp"
	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/upstream"
)

// fakeProvider is a Provider whose Refresh answer a test chooses. Logins go
// through a real OP in cmd/authgate's end-to-end tests; this covers the
// faults a real OP will not produce on demand.
type fakeProvider struct {
	exchangeID   *idp.Identity // Exchange's answer; nil fails
	refreshErr   error
	refreshes    atomic.Int64
	release      chan struct{} // when set, Refresh waits for it
	newRefreshTk string
}

func (p *fakeProvider) Ready() bool { return true }
func (p *fakeProvider) NewAuthRequest() (*idp.AuthRequest, error) {
	return &idp.AuthRequest{State: "state-0123456789abcdef", Nonce: "n", CodeVerifier: "v", URL: "https://idp.example/auth?state=x"}, nil
}
func (p *fakeProvider) CheckResponseIssuer(string, bool) error { return nil }
func (p *fakeProvider) Exchange(context.Context, string, string, string) (*idp.Tokens, *idp.Identity, error) {
	if p.exchangeID == nil {
		return nil, nil, errors.New("not used")
	}
	return &idp.Tokens{AccessToken: "access-x", RefreshToken: "refresh-x", Expiry: time.Now().Add(time.Hour)}, p.exchangeID, nil
}
func (p *fakeProvider) Refresh(ctx context.Context, refreshToken, subject string) (*idp.Tokens, error) {
	n := p.refreshes.Add(1)
	if p.release != nil {
		<-p.release
	}
	if p.refreshErr != nil {
		return nil, p.refreshErr
	}
	return &idp.Tokens{AccessToken: fmt.Sprintf("access-%d", n), RefreshToken: p.newRefreshTk, Expiry: time.Now().Add(time.Hour)}, nil
}
func (p *fakeProvider) Revoke(context.Context, string) error { return nil }
func (p *fakeProvider) EndSessionURL(string, string, string) (string, bool) {
	return "", false
}

type testEnv struct {
	h        *Handler
	store    *session.CookieStore
	sealer   *session.Sealer
	provider *fakeProvider
	now      time.Time
	seen     chan string // Authorization headers the upstream saw
	up       *recorder
	srv      *httptest.Server // env.h served over real TCP, for raw request lines
}

// recorder keeps every request the upstream received.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (rec *recorder) add(r *http.Request) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.reqs = append(rec.reqs, r.Clone(context.Background()))
}

func (rec *recorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.reqs)
}

func (rec *recorder) last() *http.Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.reqs) == 0 {
		return nil
	}
	return rec.reqs[len(rec.reqs)-1]
}

func newTestEnv(t *testing.T, p *fakeProvider) *testEnv {
	return newTestEnvWith(t, p, nil)
}

// newTestEnvWith builds a Handler in front of a real upstream.Proxy and a
// recording server; edit, when set, changes the Options first.
func newTestEnvWith(t *testing.T, p *fakeProvider, edit func(*Options)) *testEnv {
	t.Helper()
	key := []byte("0123456789abcdef0123456789abcdef")
	env := &testEnv{provider: p, now: time.Now(), seen: make(chan string, 1000), up: &recorder{}}
	clock := func() time.Time { return env.now }
	store, err := session.NewCookieStore(session.CookieStoreOptions{Cookie: session.CookieOptions{Name: "authgate"}, Keys: [][]byte{key}, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	sealer, _ := session.NewSealer([][]byte{key})
	// A real upstream.Proxy in front of a recording server: the identity
	// travels in the request context, so only a real hop shows what the
	// upstream receives.
	rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		env.up.add(r)
		env.seen <- r.Header.Get("Authorization")
		io.WriteString(w, "ok")
	}))
	t.Cleanup(rec.Close)
	real, err := upstream.New(upstream.Options{Target: rec.URL, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	env.store = store
	env.sealer = sealer
	o := Options{Provider: p, Store: store, Sealer: sealer, Upstream: real, Logger: slog.New(slog.DiscardHandler), Now: clock}
	if edit != nil {
		edit(&o)
	}
	env.h, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	env.srv = httptest.NewServer(env.h)
	t.Cleanup(env.srv.Close)
	return env
}

// cookieFor returns the Cookie header of a saved session.
func (e *testEnv) cookieFor(t *testing.T, s *session.Session) string {
	t.Helper()
	w := httptest.NewRecorder()
	if err := e.store.Save(w, httptest.NewRequest("GET", "/", nil), s); err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, c := range w.Result().Cookies() {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

func (e *testEnv) do(cookie string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/app", nil)
	r.Header.Set("Cookie", cookie)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func (e *testEnv) session(expiresIn time.Duration) *session.Session {
	return &session.Session{
		ID: "sid-1", Subject: "alice", AccessToken: "access-0", RefreshToken: "refresh-0",
		Expiry: e.now.Add(expiresIn), IssuedAt: e.now, ExpiresAt: e.now.Add(time.Hour),
	}
}

func TestRefreshFailureClasses(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		expiresIn  time.Duration
		wantStatus int
		wantToken  string
	}{
		{"idp down, token still valid: served", fmt.Errorf("refresh: %w", idp.ErrUnavailable), 30 * time.Second, http.StatusOK, "Bearer access-0"},
		{"idp down, token expired: 503", fmt.Errorf("refresh: %w", idp.ErrUnavailable), -time.Second, http.StatusServiceUnavailable, ""},
		{"not ready, token valid: served", idp.ErrNotReady, 10 * time.Second, http.StatusOK, "Bearer access-0"},
		{"invalid_grant: login", fmt.Errorf("refresh: %w", idp.ErrInvalidGrant), 30 * time.Second, http.StatusUnauthorized, ""},
		{"success", nil, 30 * time.Second, http.StatusOK, "Bearer access-1"},
		{"no refresh needed", nil, time.Hour, http.StatusOK, "Bearer access-0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, &fakeProvider{refreshErr: tt.err})
			w := env.do(env.cookieFor(t, env.session(tt.expiresIn)), "Accept", "application/json")
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", w.Code, tt.wantStatus, w.Body)
			}
			if tt.wantStatus == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			if tt.wantToken != "" {
				if got := <-env.seen; got != tt.wantToken {
					t.Errorf("upstream Authorization = %q, want %q", got, tt.wantToken)
				}
			}
			if tt.err != nil && errors.Is(tt.err, idp.ErrInvalidGrant) {
				cleared := false
				for _, c := range w.Result().Cookies() {
					cleared = cleared || (c.Name == "authgate" && c.MaxAge < 0)
				}
				if !cleared {
					t.Error("invalid_grant did not clear the session cookie")
				}
			}
		})
	}
}

// TestUpstreamIdentityBothWays: an Upstream that is an *upstream.Proxy
// gets the identity through ServeIdentity; any other http.Handler gets it
// in the request's context (upstream.WithIdentity). Both reach the
// upstream alike.
func TestUpstreamIdentityBothWays(t *testing.T) {
	for _, plain := range []bool{false, true} {
		t.Run(fmt.Sprintf("plain handler=%v", plain), func(t *testing.T) {
			env := newTestEnvWith(t, &fakeProvider{}, func(o *Options) {
				if plain {
					o.Upstream = http.HandlerFunc(o.Upstream.ServeHTTP) // hides ServeIdentity
				}
			})
			if _, ok := env.h.upstream.(identityServer); ok == plain {
				t.Fatalf("upstream implements ServeIdentity = %v, want %v", ok, !plain)
			}
			s := env.session(time.Hour)
			s.Email, s.Groups = "alice@example.com", []string{"staff", "dev"}
			w := env.do(env.cookieFor(t, s), "Accept", "application/json")
			if w.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200", w.Code)
			}
			if got := <-env.seen; got != "Bearer access-0" {
				t.Errorf("upstream Authorization = %q, want %q", got, "Bearer access-0")
			}
			r := env.up.last()
			if r == nil {
				t.Fatal("upstream received no request")
			}
			for name, want := range map[string]string{"X-Forwarded-User": "alice", "X-Forwarded-Email": "alice@example.com",
				"X-Forwarded-Groups": "staff,dev"} {
				if got := r.Header.Get(name); got != want {
					t.Errorf("upstream %s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

// TestRefreshSharedAcrossConcurrentRequests: many requests of one session
// wait for one refresh; a transient failure is shared for a moment rather
// than repeated by every request.
func TestRefreshSharedAcrossConcurrentRequests(t *testing.T) {
	p := &fakeProvider{release: make(chan struct{}), newRefreshTk: "refresh-1"}
	env := newTestEnv(t, p)
	cookie := env.cookieFor(t, env.session(10*time.Second))
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if w := env.do(cookie, "Accept", "application/json"); w.Code != http.StatusOK {
				t.Errorf("status %d", w.Code)
			}
		}()
	}
	// Let every request reach the refresher before the single call returns.
	deadline := time.Now().Add(5 * time.Second)
	for p.refreshes.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(p.release)
	wg.Wait()
	if got := p.refreshes.Load(); got != 1 {
		t.Errorf("refreshes = %d, want 1", got)
	}
	for range 10 {
		if got := <-env.seen; got != "Bearer access-1" {
			t.Errorf("upstream Authorization = %q, want the refreshed token", got)
		}
	}
}

func TestUnauthenticatedNavigationSetsFlowCookie(t *testing.T) {
	env := newTestEnv(t, &fakeProvider{})
	// Without Fetch Metadata a navigation gets the 302 at once (with it,
	// the deep-link page first: TestDeepLinkPage).
	w := env.do("", "Accept", "text/html")
	if w.Code != http.StatusFound || !strings.HasPrefix(w.Header().Get("Location"), "https://idp.example/auth") {
		t.Fatalf("got %d %q", w.Code, w.Header().Get("Location"))
	}
	var flow *http.Cookie
	for _, c := range w.Result().Cookies() {
		if strings.HasPrefix(c.Name, "authgate_flow_") {
			flow = c
		}
	}
	if flow == nil {
		t.Fatal("no flow cookie")
	}
	raw, _ := base64.RawURLEncoding.DecodeString(flow.Value)
	if strings.Contains(string(raw), "/app") || strings.Contains(flow.Value, "state-0123") {
		t.Error("flow cookie is not sealed")
	}
}

func TestIsNavigation(t *testing.T) {
	tests := []struct {
		name   string
		method string
		header map[string]string
		want   bool
	}{
		{"fetch metadata navigate", "GET", map[string]string{"Sec-Fetch-Mode": "navigate"}, true},
		{"fetch metadata cors", "GET", map[string]string{"Sec-Fetch-Mode": "cors", "Accept": "text/html"}, false},
		{"no-cors", "GET", map[string]string{"Sec-Fetch-Mode": "no-cors"}, false},
		{"websocket mode", "GET", map[string]string{"Sec-Fetch-Mode": "websocket"}, false},
		{"accept html", "GET", map[string]string{"Accept": "text/html"}, true},
		{"accept xhtml", "HEAD", map[string]string{"Accept": "application/xhtml+xml"}, true},
		{"accept html q=0", "GET", map[string]string{"Accept": "text/html;q=0"}, false},
		{"accept html q=0.5", "GET", map[string]string{"Accept": "text/html;q=0.5"}, true},
		{"accept json", "GET", map[string]string{"Accept": "application/json"}, false},
		{"no accept", "GET", nil, false},
		{"post", "POST", map[string]string{"Sec-Fetch-Mode": "navigate", "Accept": "text/html"}, false},
		{"upgrade", "GET", map[string]string{"Upgrade": "websocket", "Accept": "text/html"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/", nil)
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			if got := isNavigation(r); got != tt.want {
				t.Errorf("isNavigation = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRefreshSkewBoundedByLifetime(t *testing.T) {
	now := time.Now()
	for _, tt := range []struct {
		name     string
		lifetime time.Duration
		issued   bool
		want     time.Duration
	}{
		{"long token", time.Hour, true, time.Minute},
		{"token shorter than skew", time.Minute, true, 30 * time.Second},
		{"token equal to skew", 2 * time.Minute, true, time.Minute},
		{"unknown issue time", time.Minute, false, time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &session.Session{Expiry: now.Add(tt.lifetime)}
			if tt.issued {
				s.TokenIssuedAt = now
			}
			if got := refreshSkew(time.Minute, s); got != tt.want {
				t.Errorf("refreshSkew = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestUsedStates(t *testing.T) {
	now := time.Now()
	u := newUsedStates(func() time.Time { return now })
	if !u.claim("a", now.Add(time.Minute)) {
		t.Fatal("first claim refused")
	}
	if u.claim("a", now.Add(time.Minute)) {
		t.Error("second claim accepted")
	}
	now = now.Add(2 * time.Minute)
	if !u.claim("a", now.Add(time.Minute)) {
		t.Error("claim after expiry refused")
	}
	for i := range maxUsedStates + 10 {
		u.claim(fmt.Sprint(i), now.Add(time.Minute))
	}
	if len(u.seen) > maxUsedStates {
		t.Errorf("used states grew to %d, bound %d", len(u.seen), maxUsedStates)
	}
}

// TestRefresherMemoryIsBounded: a storm of refreshes of distinct sessions
// keeps at most maxRefreshCalls results, however long the grace window.
func TestRefresherMemoryIsBounded(t *testing.T) {
	now := time.Now()
	f := newRefresher(time.Hour, func() time.Time { return now })
	work := func(context.Context) (*session.Session, error) { return &session.Session{}, nil }
	for i := range 3 * maxRefreshCalls {
		s := &session.Session{ID: fmt.Sprint(i), RefreshToken: "r"}
		if _, _, err := f.refresh(context.Background(), s, work); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Millisecond)
	}
	if n := len(f.calls); n > maxRefreshCalls {
		t.Errorf("remembered refreshes = %d, bound %d", n, maxRefreshCalls)
	}
	// The latest one is still shared within its grace window.
	s := &session.Session{ID: fmt.Sprint(3*maxRefreshCalls - 1), RefreshToken: "r"}
	if _, shared, _ := f.refresh(context.Background(), s, work); !shared {
		t.Error("the latest refresh was forgotten")
	}
}
