package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// received is what the upstream saw of one request.
type received struct {
	header     http.Header
	host       string
	uri        string
	protoMajor int
}

// recordingUpstream starts an upstream that records every request it gets.
func recordingUpstream(t *testing.T) (*httptest.Server, <-chan received) {
	t.Helper()
	got := make(chan received, 16)
	s := httptest.NewServer(recordingHandler(got))
	t.Cleanup(s.Close)
	return s, got
}

func recordingHandler(got chan<- received) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got <- received{header: r.Header.Clone(), host: r.Host, uri: r.URL.RequestURI(), protoMajor: r.ProtoMajor}
		io.WriteString(w, "ok")
	}
}

// front starts authgate's side: a server that puts id in the context and
// hands the request to p, as the proxy package does.
func front(t *testing.T, p *Proxy, id *Identity) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id != nil {
			r = r.WithContext(WithIdentity(r.Context(), id))
		}
		p.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func newProxy(t *testing.T, o Options) *Proxy {
	t.Helper()
	p, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

// get sends a GET to s with the headers set by edit and returns the
// response with its body read.
func get(t *testing.T, s *httptest.Server, path string, edit func(h http.Header)) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(req.Header)
	}
	res, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return res, string(body)
}

func receive(t *testing.T, got <-chan received) received {
	t.Helper()
	select {
	case r := <-got:
		return r
	default:
		t.Fatal("upstream received no request")
		return received{}
	}
}

// syncBuffer is a log sink safe for the server goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func captureLogs() (*slog.Logger, *syncBuffer) {
	b := &syncBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

const testToken = "eyJ.secret-access-token.sig"

var testIdentity = &Identity{
	AccessToken:       testToken,
	User:              "sub-123",
	Email:             "ada@example.com",
	PreferredUsername: "ada",
	Groups:            []string{"admins", "dev"},
}

func TestIdentityHeadersReachUpstream(t *testing.T) {
	up, got := recordingUpstream(t)
	observed := make(chan int, 1)
	p := newProxy(t, Options{
		Target:  up.URL + "/base",
		Observe: func(_ *http.Request, status int, _ time.Duration) { observed <- status },
	})
	fr := front(t, p, testIdentity)

	res, body := get(t, fr, "/a/b?x=1", func(h http.Header) { h.Set("X-Other", "kept") })
	if res.StatusCode != http.StatusOK || body != "ok" {
		t.Fatalf("response = %d %q, want 200 \"ok\"", res.StatusCode, body)
	}
	r := receive(t, got)
	frontHost := strings.TrimPrefix(fr.URL, "http://")
	for _, tt := range []struct{ name, want string }{
		{"Authorization", "Bearer " + testToken},
		{"X-Forwarded-User", "sub-123"},
		{"X-Forwarded-Email", "ada@example.com"},
		{"X-Forwarded-Preferred-Username", "ada"},
		{"X-Forwarded-Groups", "admins,dev"},
		{"X-Forwarded-For", "127.0.0.1"},
		{"X-Forwarded-Host", frontHost},
		{"X-Forwarded-Proto", "http"},
		{"X-Other", "kept"},
	} {
		if v := r.header.Values(tt.name); len(v) != 1 || v[0] != tt.want {
			t.Errorf("Header(%q) = %q, want [%q]", tt.name, v, tt.want)
		}
	}
	if r.host != frontHost {
		t.Errorf("Host = %q, want the client's %q", r.host, frontHost)
	}
	if r.uri != "/base/a/b?x=1" {
		t.Errorf("RequestURI = %q, want %q", r.uri, "/base/a/b?x=1")
	}
	if s := <-observed; s != http.StatusOK {
		t.Errorf("Observe status = %d, want 200", s)
	}
}

// TestServeIdentity checks that ServeIdentity sends what ServeHTTP sends
// for the same identity in the context, with and without Observe (whose
// start time shares ServeIdentity's context), and that its identity wins
// over one already in the context.
func TestServeIdentity(t *testing.T) {
	identityHeaders := []string{"Authorization", "X-Forwarded-User", "X-Forwarded-Email",
		"X-Forwarded-Preferred-Username", "X-Forwarded-Groups", "X-Forwarded-For", "X-Forwarded-Proto"}
	for _, observe := range []bool{false, true} {
		t.Run(fmt.Sprintf("observe=%v", observe), func(t *testing.T) {
			up, got := recordingUpstream(t)
			observed := make(chan time.Duration, 4)
			o := Options{Target: up.URL}
			if observe {
				o.Observe = func(_ *http.Request, status int, d time.Duration) {
					if status != http.StatusOK {
						t.Errorf("Observe status = %d, want 200", status)
					}
					observed <- d
				}
			}
			p := newProxy(t, o)
			get(t, front(t, p, testIdentity), "/", nil)
			want := receive(t, got)
			fr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				// A stale identity in the context must not win.
				r = r.WithContext(WithIdentity(r.Context(), &Identity{User: "stale", Email: "stale@example.com"}))
				p.ServeIdentity(w, r, *testIdentity)
			}))
			t.Cleanup(fr.Close)
			get(t, fr, "/", nil)
			r := receive(t, got)
			for _, name := range identityHeaders {
				if g, w := r.header.Values(name), want.header.Values(name); !equalStrings(g, w) || len(w) != 1 {
					t.Errorf("Header(%q) = %q, want %q as ServeHTTP sends it", name, g, w)
				}
			}
			if !observe {
				return
			}
			for range 2 {
				if d := <-observed; d <= 0 {
					t.Errorf("Observe duration = %v, want > 0", d)
				}
			}
		})
	}
}

func TestIdentityOmitsEmptyFields(t *testing.T) {
	up, got := recordingUpstream(t)
	fr := front(t, newProxy(t, Options{Target: up.URL}), &Identity{User: "sub-1"})
	get(t, fr, "/", nil)
	r := receive(t, got)
	if v := r.header.Get("X-Forwarded-User"); v != "sub-1" {
		t.Errorf("Header(%q) = %q, want %q", "X-Forwarded-User", v, "sub-1")
	}
	for _, name := range []string{"Authorization", "X-Forwarded-Email", "X-Forwarded-Preferred-Username", "X-Forwarded-Groups"} {
		if v, ok := r.header[name]; ok {
			t.Errorf("Header(%q) = %q, want absent", name, v)
		}
	}
}

func TestSpoofedHeadersNeverReachUpstream(t *testing.T) {
	spellings := []string{
		"Authorization",
		"authorization",
		"X-Forwarded-User",
		"X_Forwarded_User",
		"x-forwarded_user",
		"X-FORWARDED-USER",
		"X-Forwarded-Email",
		"X_FORWARDED_EMAIL",
		"X-Forwarded-Groups",
		"x_forwarded_groups",
		"X-Forwarded-Preferred-Username",
		"X_Forwarded_Preferred_Username",
		"X-Forwarded-Access-Token",
		"x_forwarded_access_token",
		"X-Auth-Request-User",
		"X-AUTH-REQUEST-EMAIL",
		"X_Auth_Request_Access_Token",
		"x-auth-request_groups",
		"X-Auth-Request-Preferred-Username",
		"X-Forwarded-For",
		"X_Forwarded_For",
		"X-Forwarded-Host",
		"X-Forwarded-Proto",
		"X-Forwarded-Port",
		"Forwarded",
		"X-Real-Ip",
		"X_Real_IP",
	}
	const evil = "spoofed-value"
	for _, id := range []*Identity{testIdentity, nil} {
		up, got := recordingUpstream(t)
		fr := front(t, newProxy(t, Options{Target: up.URL}), id)
		for _, name := range spellings {
			t.Run(name+"/identity="+boolString(id != nil), func(t *testing.T) {
				get(t, fr, "/", func(h http.Header) { h[name] = []string{evil} })
				r := receive(t, got)
				for k, vs := range r.header {
					for _, v := range vs {
						if strings.Contains(v, evil) {
							t.Errorf("Header(%q) = %q: the client's %s reached the upstream", k, v, name)
						}
					}
				}
				if id == nil {
					for k := range r.header {
						if k == "Authorization" || strings.HasPrefix(k, "X-Auth-Request") || isIdentityHeader(k) {
							t.Errorf("Header(%q) present without an identity", k)
						}
					}
				} else if v := r.header.Get("X-Forwarded-User"); v != id.User {
					t.Errorf("Header(%q) = %q, want %q", "X-Forwarded-User", v, id.User)
				}
			})
		}
	}
}

func isIdentityHeader(k string) bool {
	switch k {
	case headerUser, headerEmail, headerGroups, headerPreferredUsername, "X-Forwarded-Access-Token":
		return true
	}
	return false
}

func boolString(b bool) string {
	if b {
		return "set"
	}
	return "nil"
}

// A client listing our headers in Connection must not make ReverseProxy's
// hop-by-hop removal delete them after we set them (the Director flaw).
func TestConnectionHeaderCannotStripIdentity(t *testing.T) {
	up, got := recordingUpstream(t)
	fr := front(t, newProxy(t, Options{Target: up.URL}), testIdentity)
	get(t, fr, "/", func(h http.Header) {
		h.Set("Connection", "Authorization, X-Forwarded-User, X-Forwarded-Email, X-Forwarded-Groups, X-Forwarded-Preferred-Username, X-Request-Id, X-Forwarded-For")
		h.Set("X-Request-Id", "client-id-1")
	})
	r := receive(t, got)
	for _, tt := range []struct{ name, want string }{
		{"Authorization", "Bearer " + testToken},
		{"X-Forwarded-User", "sub-123"},
		{"X-Forwarded-Email", "ada@example.com"},
		{"X-Forwarded-Groups", "admins,dev"},
		{"X-Forwarded-Preferred-Username", "ada"},
		{"X-Request-Id", "client-id-1"},
		{"X-Forwarded-For", "127.0.0.1"},
	} {
		if v := r.header.Get(tt.name); v != tt.want {
			t.Errorf("Header(%q) = %q, want %q", tt.name, v, tt.want)
		}
	}
}

func TestOwnCookiesStripped(t *testing.T) {
	own := func(name string) bool { return name == "authgate" || strings.HasPrefix(name, "authgate_") }
	tests := []struct {
		name    string
		cookies []string // Cookie header lines the client sends
		own     func(string) bool
		want    []string // Cookie values the upstream gets; nil = no header
	}{
		{"mixed over two lines", []string{"a=1; authgate=SEALED; b=2", "authgate_csrf=x; c=3"}, own, []string{"a=1; b=2; c=3"}},
		{"own first", []string{"authgate=SEALED;a=1"}, own, []string{"a=1"}},
		{"only own", []string{"authgate=SEALED; authgate_csrf=x"}, own, nil},
		{"none own untouched", []string{"a=1;b=2", "c=3"}, own, []string{"a=1;b=2", "c=3"}},
		{"prefix is not a match", []string{"authgatex=1"}, own, []string{"authgatex=1"}},
		{"no cookie", nil, own, nil},
		{"empty parts and spaces", []string{"; a=1 ;; authgate=S ;", "b=2"}, own, []string{"a=1; b=2"}},
		{"one kept is trimmed", []string{"authgate=S;  a=1"}, own, []string{"a=1"}},
		{"nameless kept", []string{"=x; authgate=S"}, own, []string{"=x"}},
		{"nil IsOwnCookie keeps all", []string{"authgate=SEALED; a=1"}, nil, []string{"authgate=SEALED; a=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, got := recordingUpstream(t)
			fr := front(t, newProxy(t, Options{Target: up.URL, IsOwnCookie: tt.own}), testIdentity)
			get(t, fr, "/", func(h http.Header) {
				if tt.cookies != nil {
					h["Cookie"] = tt.cookies
				}
			})
			r := receive(t, got)
			if v := r.header["Cookie"]; !equalStrings(v, tt.want) {
				t.Errorf("Header(%q) = %q, want %q", "Cookie", v, tt.want)
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRequestID(t *testing.T) {
	generated := regexp.MustCompile(`^[0-9a-f]{32}$`)
	tests := []struct {
		name   string
		header string // RequestIDHeader option
		sent   []string
		want   string // "" = a generated id
	}{
		{"kept", "", []string{"abc-123"}, "abc-123"},
		{"kept at 128", "", []string{strings.Repeat("a", 128)}, strings.Repeat("a", 128)},
		{"absent", "", nil, ""},
		{"too long", "", []string{strings.Repeat("a", 129)}, ""},
		{"space", "", []string{"a b"}, ""},
		{"non-ASCII", "", []string{"idé"}, ""},
		{"two values", "", []string{"a", "b"}, ""},
		{"custom header", "X-Correlation-Id", []string{"corr-1"}, "corr-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := tt.header
			if header == "" {
				header = "X-Request-Id"
			}
			up, got := recordingUpstream(t)
			p := newProxy(t, Options{Target: up.URL, RequestIDHeader: tt.header})
			outer := make(chan string, 1)
			fr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				outer <- EnsureRequestID(r, header) // as the proxy package does, before logging
				p.ServeHTTP(w, r)
			}))
			defer fr.Close()
			get(t, fr, "/", func(h http.Header) {
				if tt.sent != nil {
					h[header] = tt.sent
				}
			})
			r := receive(t, got)
			v := r.header.Values(header)
			if len(v) != 1 {
				t.Fatalf("Header(%q) = %q, want one value", header, v)
			}
			if tt.want != "" && v[0] != tt.want {
				t.Errorf("Header(%q) = %q, want %q", header, v[0], tt.want)
			}
			if tt.want == "" && !generated.MatchString(v[0]) {
				t.Errorf("Header(%q) = %q, want 32 hex digits", header, v[0])
			}
			if o := <-outer; o != v[0] {
				t.Errorf("EnsureRequestID = %q, upstream got %q: want the same id", o, v[0])
			}
		})
	}
}

func TestEnsureRequestIDStable(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	first := EnsureRequestID(r, "")
	if second := EnsureRequestID(r, "x-request-id"); second != first {
		t.Errorf("EnsureRequestID second call = %q, want %q", second, first)
	}
	if v := r.Header.Get("X-Request-Id"); v != first {
		t.Errorf("Header(%q) = %q, want %q", "X-Request-Id", v, first)
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

type errorCall struct {
	status int
	header http.Header
}

func TestBadGatewayOnClosedPort(t *testing.T) {
	logger, logs := captureLogs()
	calls := make(chan errorCall, 1)
	observed := make(chan int, 1)
	p := newProxy(t, Options{
		Target: "http://" + closedAddr(t),
		Logger: logger,
		WriteError: func(w http.ResponseWriter, r *http.Request, status int) {
			calls <- errorCall{status, r.Header.Clone()}
			w.WriteHeader(status)
			io.WriteString(w, "custom page")
		},
		Observe: func(_ *http.Request, status int, _ time.Duration) { observed <- status },
	})
	fr := front(t, p, testIdentity)

	res, body := get(t, fr, "/some/path", func(h http.Header) { h.Set("X-Request-Id", "rid-502") })
	if res.StatusCode != http.StatusBadGateway || body != "custom page" {
		t.Errorf("response = %d %q, want 502 \"custom page\"", res.StatusCode, body)
	}
	c := <-calls
	if c.status != http.StatusBadGateway {
		t.Errorf("WriteError status = %d, want 502", c.status)
	}
	if v := c.header.Get("Authorization"); v != "" {
		t.Errorf("WriteError request Header(%q) = %q, want absent", "Authorization", v)
	}
	if s := <-observed; s != http.StatusBadGateway {
		t.Errorf("Observe status = %d, want 502", s)
	}
	out := logs.String()
	for _, want := range []string{"level=WARN", "request_id=rid-502", "method=GET", "path=/some/path", "status=502", "connection refused"} {
		if !strings.Contains(out, want) {
			t.Errorf("log = %q, want it to contain %q", out, want)
		}
	}
	if strings.Contains(out, testToken) {
		t.Errorf("log contains the access token: %q", out)
	}
}

func TestPlainErrorByDefault(t *testing.T) {
	logger, _ := captureLogs()
	fr := front(t, newProxy(t, Options{Target: "http://" + closedAddr(t), Logger: logger}), nil)
	res, body := get(t, fr, "/", nil)
	if res.StatusCode != http.StatusBadGateway || body != "Bad Gateway\n" {
		t.Errorf("response = %d %q, want 502 %q", res.StatusCode, body, "Bad Gateway\n")
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Header(%q) = %q, want text/plain", "Content-Type", ct)
	}
}

// hangingUpstream accepts requests and answers none until the proxy gives up.
func hangingUpstream(t *testing.T) (*httptest.Server, <-chan struct{}) {
	t.Helper()
	arrived := make(chan struct{}, 1)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done() // canceled when the proxy drops the connection
	}))
	t.Cleanup(s.Close)
	return s, arrived
}

func TestGatewayTimeout(t *testing.T) {
	up, arrived := hangingUpstream(t)
	logger, logs := captureLogs()
	calls := make(chan int, 1)
	p := newProxy(t, Options{
		Target:                up.URL,
		ResponseHeaderTimeout: 50 * time.Millisecond,
		Logger:                logger,
		WriteError: func(w http.ResponseWriter, _ *http.Request, status int) {
			calls <- status
			w.WriteHeader(status)
		},
	})
	fr := front(t, p, testIdentity)
	res, _ := get(t, fr, "/", nil)
	<-arrived
	if res.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("status = %d, want 504", res.StatusCode)
	}
	if s := <-calls; s != http.StatusGatewayTimeout {
		t.Errorf("WriteError status = %d, want 504", s)
	}
	if out := logs.String(); !strings.Contains(out, "status=504") || strings.Contains(out, testToken) {
		t.Errorf("log = %q, want status=504 and no token", out)
	}
}

func TestOuterDeadlineIsGatewayTimeout(t *testing.T) {
	up, got := recordingUpstream(t)
	logger, _ := captureLogs()
	p := newProxy(t, Options{Target: up.URL, Logger: logger})
	fr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A deadline an outer handler set that has already passed: the
		// transport gives up with context.DeadlineExceeded, no clock needed.
		ctx, cancel := context.WithDeadline(r.Context(), time.Unix(0, 0))
		defer cancel()
		p.ServeHTTP(w, r.WithContext(ctx))
	}))
	defer fr.Close()
	res, _ := get(t, fr, "/", nil)
	if res.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("status = %d, want 504", res.StatusCode)
	}
	if len(got) != 0 {
		t.Errorf("upstream received %d requests, want 0", len(got))
	}
}

func TestClientWentAway(t *testing.T) {
	up, arrived := hangingUpstream(t)
	logger, logs := captureLogs()
	observed := make(chan int, 1)
	p := newProxy(t, Options{
		Target: up.URL,
		Logger: logger,
		WriteError: func(http.ResponseWriter, *http.Request, int) {
			t.Error("WriteError called for a client that went away")
		},
		Observe: func(_ *http.Request, status int, _ time.Duration) { observed <- status },
	})
	fr := front(t, p, testIdentity)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fr.URL+"/", nil)
	done := make(chan error, 1)
	go func() {
		res, err := fr.Client().Do(req)
		if err == nil {
			res.Body.Close()
		}
		done <- err
	}()
	<-arrived
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("client error = %v, want context.Canceled", err)
	}
	if s := <-observed; s != StatusClientClosedRequest {
		t.Errorf("Observe status = %d, want %d", s, StatusClientClosedRequest)
	}
	out := logs.String()
	if !strings.Contains(out, "level=DEBUG") || strings.Contains(out, "level=WARN") || strings.Contains(out, "level=ERROR") {
		t.Errorf("log = %q, want one DEBUG line and no WARN or ERROR", out)
	}
}

func TestInvalidIdentityValueFailsClosed(t *testing.T) {
	up, got := recordingUpstream(t)
	logger, logs := captureLogs()
	id := &Identity{AccessToken: testToken, User: "sub", PreferredUsername: "ada\r\nX-Injected: 1"}
	fr := front(t, newProxy(t, Options{Target: up.URL, Logger: logger}), id)
	res, _ := get(t, fr, "/", nil)
	if res.StatusCode != http.StatusBadGateway {
		t.Errorf("status = %d, want 502", res.StatusCode)
	}
	if len(got) != 0 {
		t.Errorf("upstream received %d requests, want 0", len(got))
	}
	if out := logs.String(); strings.Contains(out, testToken) || strings.Contains(out, "X-Injected") {
		t.Errorf("log = %q, want no header value", out)
	}
}

func TestRequestBodyTooLarge(t *testing.T) {
	up, _ := recordingUpstream(t)
	logger, _ := captureLogs()
	p := newProxy(t, Options{Target: up.URL, Logger: logger})
	fr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 8)
		p.ServeHTTP(w, r)
	}))
	defer fr.Close()
	res, err := fr.Client().Post(fr.URL+"/", "text/plain", strings.NewReader(strings.Repeat("x", 64<<10)))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status = %d, want 413", res.StatusCode)
	}
}

func TestConnectIsMethodNotAllowed(t *testing.T) {
	p := newProxy(t, Options{Target: "http://" + closedAddr(t)})
	w := httptest.NewRecorder()
	p.ServeHTTP(w, httptest.NewRequest(http.MethodConnect, "http://example.com:443", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("status = %d, want 405", w.Code)
	}
}

func TestInvalidUpgradeIsBadRequest(t *testing.T) {
	up, got := recordingUpstream(t)
	p := newProxy(t, Options{Target: up.URL})
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket\xff")
	p.ServeHTTP(w, r)
	if w.Code != http.StatusBadRequest {
		t.Errorf("status = %d, want 400", w.Code)
	}
	if len(got) != 0 {
		t.Errorf("upstream received %d requests, want 0", len(got))
	}
}

func TestNewRejectsBadTargets(t *testing.T) {
	tests := []struct{ name, target string }{
		{"empty", ""},
		{"no scheme", "localhost:8080"},
		{"ftp", "ftp://example.com"},
		{"no host", "http://"},
		{"h2c no host", "h2c:///x"},
		{"unix no path", "unix://"},
		{"unix with host", "unix://host/x.sock"},
		{"credentials", "http://user:hunter2@127.0.0.1"},
		{"fragment", "http://127.0.0.1/#x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Options{Target: tt.target})
			if !errors.Is(err, ErrInvalidTarget) {
				t.Fatalf("New(%q) error = %v, want ErrInvalidTarget", tt.target, err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func TestIsUntrusted(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"Authorization", true},
		{"AUTHORIZATION", true},
		{"X_Forwarded_User", true},
		{"x-forwarded_user", true},
		{"X-AUTH-REQUEST-EMAIL", true},
		{"X-Forwarded-", true},
		{"Forwarded", true},
		{"X_real_ip", true},
		{"Authorizations", false},
		{"X-Forwarded", false},
		{"X-Forwardedx-User", false},
		{"X-Auth-Requests", false},
		{"Accept", false},
		{"Cookie", false},
		{"X-Request-Id", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isUntrusted(tt.name); got != tt.want {
				t.Errorf("isUntrusted(%q) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

// TestNewRequestIDBatches: ids cut from batches are distinct, 32 hex
// characters, and each header value holds its own id with no room to
// append into a neighbour's.
func TestNewRequestIDBatches(t *testing.T) {
	hexID := regexp.MustCompile(`^[0-9a-f]{32}$`)
	seen := make(map[string]bool)
	var vals [][]string
	for range 3*idsPerBatch + 5 {
		id, val := newRequestID()
		if !hexID.MatchString(id) || len(val) != 1 || cap(val) != 1 || val[0] != id {
			t.Fatalf("newRequestID() = %q, %q (cap %d): want 32 hex and a one-element value holding it", id, val, cap(val))
		}
		if seen[id] {
			t.Fatalf("id %q handed out twice", id)
		}
		seen[id] = true
		vals = append(vals, val)
	}
	_ = append(vals[0], "x") // must copy, not write into vals[1]
	if vals[1][0] == "x" {
		t.Fatal("appending to one value changed another")
	}
}
