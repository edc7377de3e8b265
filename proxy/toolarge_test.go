package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/proxy/idp"
)

// hugeTokens is a provider whose tokens no cookie store can hold: 60 KB
// of random (incompressible) access token.
type hugeTokens struct {
	fakeProvider
	access string
	n      int
}

func (p *hugeTokens) NewAuthRequest() (*idp.AuthRequest, error) {
	p.n++
	state := fmt.Sprintf("state-%016d", p.n)
	return &idp.AuthRequest{State: state, Nonce: "n", CodeVerifier: "v", URL: "https://idp.example/auth"}, nil
}

func (p *hugeTokens) Exchange(context.Context, string, string, string) (*idp.Tokens, *idp.Identity, error) {
	return &idp.Tokens{AccessToken: p.access, Expiry: time.Now().Add(time.Hour)}, &idp.Identity{Subject: "alice"}, nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSessionTooLargeForCookies: a login whose session does not fit in
// the cookie store gets a page (browser) or JSON (API) naming the cause and
// AUTHGATE_SESSION_STORE=redis, not a 503; the sizes are logged once at
// Error, never the token; the size reaches the metric.
func TestSessionTooLargeForCookies(t *testing.T) {
	raw := make([]byte, 45000)
	rand.Read(raw)
	p := &hugeTokens{access: base64.RawURLEncoding.EncodeToString(raw)}
	logs := &lockedBuffer{}
	reg := prometheus.NewRegistry()
	metrics := NewMetrics(reg)
	env := newTestEnvWith(t, &p.fakeProvider, func(o *Options) {
		o.Provider = p
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		o.Metrics = metrics
	})
	login := func(accept string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		env.h.ServeHTTP(w, httptest.NewRequest("GET", "/oauth2/start?rd=/deep", nil))
		var flow []string
		for _, c := range w.Result().Cookies() {
			flow = append(flow, c.Name+"="+c.Value)
		}
		r := httptest.NewRequest("GET", fmt.Sprintf("/oauth2/callback?code=c&state=state-%016d", p.n), nil)
		r.Header.Set("Cookie", strings.Join(flow, "; "))
		r.Header.Set("Accept", accept)
		w = httptest.NewRecorder()
		env.h.ServeHTTP(w, r)
		return w
	}

	w := login("text/html")
	if w.Code == http.StatusServiceUnavailable || w.Code < 400 {
		t.Fatalf("callback status %d, want an error other than 503", w.Code)
	}
	if body := w.Body.String(); !strings.Contains(body, "AUTHGATE_SESSION_STORE=redis") || !strings.Contains(body, "too large") || !strings.Contains(body, "<html") {
		t.Errorf("browser page = %.300q, want HTML naming the cause and AUTHGATE_SESSION_STORE=redis", body)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == "authgate" && c.Value != "" {
			t.Errorf("session cookie %q set although it does not fit", c.Name)
		}
	}

	w = login("application/json")
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error != "session_too_large" || !strings.Contains(body.Description, "AUTHGATE_SESSION_STORE=redis") {
		t.Errorf("API answer %d %q, want JSON error session_too_large naming AUTHGATE_SESSION_STORE=redis", w.Code, w.Body.String())
	}

	out := logs.String()
	if n := strings.Count(out, "level=ERROR msg=\"session too large"); n != 1 {
		t.Errorf("%d Error lines about the size, want exactly 1:\n%s", n, out)
	}
	for _, want := range []string{"sealed_bytes=", "cookies_needed=", "access_token_bytes=60000"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%.2000s", want, out)
		}
	}
	if strings.Contains(out, p.access[:64]) {
		t.Error("logs contain the access token")
	}

	metrics.ObserveSessionCookie(7000)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var count uint64
	var sum float64
	for _, f := range families {
		if f.GetName() == "authgate_session_cookie_bytes" {
			count, sum = f.GetMetric()[0].GetHistogram().GetSampleCount(), f.GetMetric()[0].GetHistogram().GetSampleSum()
		}
	}
	if count != 1 || sum != 7000 {
		t.Errorf("authgate_session_cookie_bytes count %d sum %v, want one sample of 7000", count, sum)
	}
}
