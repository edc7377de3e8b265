package main

import (
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/demoidp"
	"github.com/authgate/authgate/internal/redistest"
	"github.com/authgate/authgate/internal/whoami"
)

// replicas is the demo provider, the whoami upstream and two authgate
// instances, a and b, in front of them: two replicas behind a load
// balancer, with one cookie secret, one client registration and (as the
// test configures) one Redis.
type replicas struct {
	t       *testing.T
	issuer  string
	idp     *demoidp.Provider
	idpLogs *syncBuffer
	up      *upstreamLog
	a, b    *gate
	logouts *sentLogouts
}

// replicaOptions configures startReplicas.
type replicaOptions struct {
	// env is added to both instances' environment (AUTHGATE_SESSION_STORE,
	// AUTHGATE_REDIS_*).
	env map[string]string
	// tokenLifetime is the demo provider's access and ID token lifetime;
	// zero means longTokens.
	tokenLifetime time.Duration
}

// redisEnv is the environment of the Redis session store on srv.
func redisEnv(srv *redistest.Server) map[string]string {
	return map[string]string{"AUTHGATE_SESSION_STORE": "redis", "AUTHGATE_REDIS_URL": srv.URL()}
}

// sentLogout is one back-channel logout the demo provider delivered.
type sentLogout struct {
	clientID, token string
	status          int
}

// sentLogouts records the demo provider's back-channel logout deliveries.
type sentLogouts struct {
	mu   sync.Mutex
	list []sentLogout
}

func (s *sentLogouts) record(clientID, token string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, sentLogout{clientID, token, status})
}

func (s *sentLogouts) all() []sentLogout {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.list)
}

// startReplicas starts the demo provider, the upstream and the two
// instances. The provider sends back-channel logouts to b only, as an IdP
// that knows one URL for the client (the load balancer's) reaches one
// replica.
func startReplicas(t *testing.T, o replicaOptions) *replicas {
	t.Helper()
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	aLn, bLn, idpLn := listen(), listen(), listen()
	aBase, bBase := "http://"+aLn.Addr().String(), "http://"+bLn.Addr().String()
	r := &replicas{t: t, issuer: "http://" + idpLn.Addr().String() + "/", idpLogs: &syncBuffer{}, up: &upstreamLog{}, logouts: &sentLogouts{}}

	lifetime := o.tokenLifetime
	if lifetime == 0 {
		lifetime = longTokens
	}
	var err error
	r.idp, err = demoidp.New(demoidp.Options{
		Issuer: r.issuer,
		Clients: []demoidp.Client{{
			ID: browserClientID, Secret: browserClientSecret,
			RedirectURIs:           []string{aBase + "/oauth2/callback", bBase + "/oauth2/callback"},
			PostLogoutRedirectURIs: []string{aBase + "/", bBase + "/"},
			BackchannelLogoutURI:   bBase + "/oauth2/backchannel_logout",
		}},
		AccessTokenLifetime: lifetime,
		IDTokenLifetime:     lifetime,
		Logger:              slog.New(slog.NewTextHandler(r.idpLogs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnBackchannelLogout: r.logouts.record,
	})
	if err != nil {
		t.Fatalf("demoidp.New: %v", err)
	}
	idpSrv := httptest.NewUnstartedServer(r.idp.Handler())
	idpSrv.Listener.Close()
	idpSrv.Listener = idpLn
	idpSrv.Start()
	t.Cleanup(idpSrv.Close)

	upSrv := httptest.NewServer(r.up.wrap(whoami.New(whoami.Options{Logger: slog.New(slog.DiscardHandler)})))
	t.Cleanup(upSrv.Close)

	env := func(base string) map[string]string {
		e := map[string]string{
			"AUTHGATE_UPSTREAM":        upSrv.URL,
			"AUTHGATE_OIDC_ISSUER_URL": r.issuer,
			"AUTHGATE_CLIENT_ID":       browserClientID,
			"AUTHGATE_CLIENT_SECRET":   browserClientSecret,
			"AUTHGATE_COOKIE_SECRET":   testCookieSecret,
			"AUTHGATE_REDIRECT_URL":    base + "/oauth2/callback",
			"AUTHGATE_COOKIE_SECURE":   "false",
			"AUTHGATE_INTERNAL_ADDR":   "127.0.0.1:0",
			"AUTHGATE_SCOPES":          "openid,email,profile,offline_access",
			"AUTHGATE_LOG_LEVEL":       "debug",
		}
		maps.Copy(e, o.env)
		return e
	}
	r.a = startGateWith(t, aLn, env(aBase), nil, nil)
	r.b = startGateWith(t, bLn, env(bBase), nil, nil)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("authgate a logs:\n%s", r.a.logs.String())
			t.Logf("authgate b logs:\n%s", r.b.logs.String())
			t.Logf("demo provider logs:\n%s", r.idpLogs.String())
		}
	})
	return r
}

// advance moves both instances' clocks.
func (r *replicas) advance(d time.Duration) {
	r.a.clock.Advance(d)
	r.b.clock.Advance(d)
}

var demoLoginIDRe = regexp.MustCompile(`name="authRequestID" value="([^"]+)"`)

// signIn signs alice in on g with a fresh browser and returns the browser
// and the Cookie header its requests to either instance carry.
func (r *replicas) signIn(g *gate) (*browser, string) {
	r.t.Helper()
	b := newBrowser(r.t)
	resp := b.navigate(g.URL + "/")
	page := readBody(r.t, resp)
	m := demoLoginIDRe.FindStringSubmatch(page)
	if m == nil {
		r.t.Fatalf("demo login page expected at %s, got %d: %.300s", resp.Request.URL, resp.StatusCode, page)
	}
	resp, err := b.PostForm(r.issuer+"login", url.Values{"authRequestID": {m[1]}, "username": {"alice"}, "password": {"alice-pw"}})
	if err != nil {
		r.t.Fatalf("POST login form: %v", err)
	}
	readBody(r.t, resp)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != g.URL+"/" {
		r.t.Fatalf("after login: %d at %s, want 200 at %s/", resp.StatusCode, resp.Request.URL, g.URL)
	}
	return b, sessionCookie(r.t, b, g)
}

// sessionCookie returns the Cookie header of b's authgate cookie for g,
// without the provider's own cookie (cookies do not keep ports apart).
func sessionCookie(t *testing.T, b *browser, g *gate) string {
	t.Helper()
	u, _ := url.Parse(g.URL)
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == "authgate" {
			return c.Name + "=" + c.Value
		}
	}
	t.Fatal("no authgate cookie after login")
	return ""
}

// apiHeader is what an API client (fetch, curl) sends: never sent to login.
var apiHeader = map[string]string{"Accept": "application/json"}

// navHeader is what a browser navigation sends.
var navHeader = map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}

// sameOriginLink is what a browser sends for a click on a link of the
// application's own pages (the whoami page's "Sign out"): sign-out ends the
// session at once only for such a request (or a typed URL, or a POST).
var sameOriginLink = map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "same-origin"}

// send sends one request with cookie and returns its status, the
// Retry-After header and the body.
func send(t *testing.T, method, rawURL, cookie string, header map[string]string) (int, string, string) {
	t.Helper()
	resp := rawRequest(t, method, rawURL, cookie, header)
	body := readBody(t, resp)
	return resp.StatusCode, resp.Header.Get("Retry-After"), body
}

// readyz returns the status of g's readiness probe.
func readyz(t *testing.T, g *gate) int {
	t.Helper()
	resp, err := http.Get("http://" + g.InternalAddr() + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	readBody(t, resp)
	return resp.StatusCode
}

// redisSessions returns the keys of the sessions Redis holds.
func redisSessions(t *testing.T, srv *redistest.Server) []string {
	t.Helper()
	v, err := srv.Do("KEYS", "authgate:{*}:s")
	if err != nil {
		t.Fatalf("KEYS: %v", err)
	}
	var keys []string
	for _, k := range v.([]any) {
		keys = append(keys, k.(string))
	}
	return keys
}

// stillRunning fails the test if g's Run has returned.
func stillRunning(t *testing.T, g *gate) {
	t.Helper()
	select {
	case err := <-g.done:
		g.done <- err // for the cleanup
		t.Fatalf("authgate stopped: %v", err)
	default:
	}
	if code, _, _ := send(t, "GET", "http://"+g.InternalAddr()+"/healthz", "", nil); code != http.StatusOK {
		t.Errorf("healthz = %d, want 200", code)
	}
}

// bearer returns the access token in an upstream request's Authorization.
func bearer(h http.Header) string {
	return strings.TrimPrefix(h.Get("Authorization"), "Bearer ")
}

// endsWithin waits until drain returns, that is until the server ended
// the connection, at most until since+limit; then it closes c, which makes
// drain return anyway, and fails the test. It returns how long after since
// the connection ended.
func endsWithin(t *testing.T, what string, since time.Time, limit time.Duration, c io.Closer, drain func()) time.Duration {
	t.Helper()
	done := make(chan struct{})
	go func() { drain(); close(done) }()
	timer := time.NewTimer(time.Until(since.Add(limit)))
	defer timer.Stop()
	select {
	case <-done:
		return time.Since(since)
	case <-timer.C:
		c.Close()
		<-done
		t.Errorf("%s still open %v after the session ended", what, limit)
		return limit
	}
}

// metricValue returns the value of one series on g's /metrics, 0 when
// absent.
func metricValue(t *testing.T, g *gate, series string) int {
	t.Helper()
	_, _, body := send(t, "GET", "http://"+g.InternalAddr()+"/metrics", "", nil)
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("metric %s = %q, want an integer", series, v)
			}
			return n
		}
	}
	return 0
}
