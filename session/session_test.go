package session

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"
)

// clock is an injectable time source for tests.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time          { return c.t }
func (c *clock) Advance(d time.Duration) { c.t = c.t.Add(d) }

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

// testKey returns a deterministic 32-byte key.
func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

// fullSession has every field set, with token sizes typical of a real
// OpenID Provider (JWT access and ID tokens, an opaque refresh token).
func fullSession(now time.Time) *Session {
	v := true
	return &Session{
		ID:                "dGhpcyBpcyBhIHNlc3Npb24",
		Subject:           "248289761001",
		Email:             "jane@example.com",
		EmailVerified:     &v,
		PreferredUsername: "jane",
		Name:              "Jane Doe",
		Groups:            []string{"admins", "developers", "on-call"},
		IDPSessionID:      "08a5019c-17e1-4977-8f42-65a12843ea02",
		AccessToken:       "at." + strings.Repeat("A", 900),
		RefreshToken:      "rt." + strings.Repeat("R", 200),
		IDToken:           "it." + strings.Repeat("I", 900),
		Expiry:            now.Add(5 * time.Minute),
		IssuedAt:          now.Add(-time.Hour),
		ExpiresAt:         now.Add(7 * time.Hour),
		TokenIssuedAt:     now.Add(-time.Minute),
	}
}

// browser is a minimal user agent: it applies Set-Cookie headers the way
// RFC 6265 §5.3 does for our cookies (Max-Age<=0 deletes) and sends the
// rest back in one Cookie header.
type browser map[string]string

func (b browser) apply(t *testing.T, h http.Header) {
	t.Helper()
	resp := http.Response{Header: h}
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			delete(b, c.Name)
			continue
		}
		b[c.Name] = c.Value
	}
}

func (b browser) request() *http.Request {
	r := httptest.NewRequest(http.MethodGet, "https://app.example.com/", nil)
	names := make([]string, 0, len(b))
	for n := range b {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		parts = append(parts, n+"="+b[n])
	}
	if len(parts) > 0 {
		r.Header.Set("Cookie", strings.Join(parts, "; "))
	}
	return r
}

func TestSessionLogValueHidesTokens(t *testing.T) {
	s := fullSession(newClock().Now())
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("signed in", "session", s)
	out := buf.String()
	for _, secret := range []string{s.AccessToken, s.RefreshToken, s.IDToken, "AAAAAAAA", "RRRRRRRR", "IIIIIIII"} {
		if strings.Contains(out, secret[:8]) {
			t.Errorf("log output contains token prefix %q: %s", secret[:8], out)
		}
	}
	var rec struct {
		Session map[string]any `json:"session"`
	}
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("unmarshal log line %q: %v", out, err)
	}
	if got := rec.Session["session_id"]; got != s.ID {
		t.Errorf("session.session_id = %v, want %q", got, s.ID)
	}
	if got := rec.Session["sub"]; got != s.Subject {
		t.Errorf("session.sub = %v, want %q", got, s.Subject)
	}

	buf.Reset()
	log.Info("no session", "session", (*Session)(nil))
	if !strings.Contains(buf.String(), `"session":"<nil>"`) {
		t.Errorf("nil session logged as %s, want \"<nil>\"", buf.String())
	}
}
