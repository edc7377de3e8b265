package main

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/demoidp"
)

// guids returns n random GUIDs, Entra's group ids.
func guids(n int) []string {
	out := make([]string, n)
	for i := range out {
		b := make([]byte, 16)
		rand.Read(b)
		out[i] = fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	}
	return out
}

// TestSessionCookieSizeE2E: with the demo provider putting the same groups
// in the ID token and the access token (issue 11), a user with 200 GUID
// groups signs in with a Cookie header of at most 8 KB; a user whose
// session cannot fit in cookies at all gets the page that names
// AUTHGATE_SESSION_STORE=redis, not a 503, and the sizes are logged once.
func TestSessionCookieSizeE2E(t *testing.T) {
	entraGroups := guids(200)
	e := startBrowserEnvUsers(t, longTokens, []demoidp.User{
		{ID: "user-gina", Username: "gina", Password: "gina-pw", Email: "gina@example.com", EmailVerified: true, Name: "Gina", Groups: entraGroups},
		{ID: "user-hugo", Username: "hugo", Password: "hugo-pw", Email: "hugo@example.com", EmailVerified: true, Name: "Hugo", Groups: guids(3000)},
	}, nil)
	base, issuer, up, g := e.base, e.issuer, e.up, e.gate

	login := func(user string) (*browser, *http.Response, string) {
		b := newBrowser(t)
		resp := b.navigate(base + "/app?x=1")
		page := readBody(t, resp)
		m := demoLoginIDRe.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("demo login page expected at %s, got %d: %.300s", resp.Request.URL, resp.StatusCode, page)
		}
		resp, err := b.PostForm(issuer+"login", url.Values{"authRequestID": {m[1]}, "username": {user}, "password": {user + "-pw"}})
		if err != nil {
			t.Fatalf("POST login form: %v", err)
		}
		return b, resp, readBody(t, resp)
	}

	b, resp, _ := login("gina")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != base+"/app?x=1" {
		t.Fatalf("gina after login: %d at %s, want 200 at /app?x=1", resp.StatusCode, resp.Request.URL)
	}
	u, _ := url.Parse(base)
	var parts []string
	for _, c := range b.Jar.Cookies(u) {
		if strings.HasPrefix(c.Name, "authgate") && !strings.HasPrefix(c.Name, "authgate_flow") {
			parts = append(parts, c.Name+"="+c.Value)
		}
	}
	header := strings.Join(parts, "; ")
	t.Logf("Cookie header for 200 GUID groups in the ID and access token: %d bytes in %d cookies", len(header), len(parts))
	if len(header) > 8192 {
		t.Errorf("Cookie header = %d bytes in %d cookies, want ≤ 8192", len(header), len(parts))
	}
	got := up.to("/app")
	if len(got) != 1 || len(strings.Split(got[0].Header.Get("X-Forwarded-Groups"), ",")) != 200 {
		t.Fatalf("upstream received %d requests for /app, want 1 with 200 groups", len(got))
	}
	if g := got[0].Header.Get("X-Forwarded-Groups"); !strings.Contains(g, entraGroups[199]) {
		t.Errorf("X-Forwarded-Groups lacks the last group")
	}

	for range 2 {
		_, resp, body := login("hugo")
		if resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode < 400 ||
			!strings.Contains(body, "AUTHGATE_SESSION_STORE=redis") || !strings.Contains(body, "session_too_large") {
			t.Errorf("hugo after login: %d %.400q, want the session_too_large page naming AUTHGATE_SESSION_STORE=redis", resp.StatusCode, body)
		}
	}
	logs := g.logs.String()
	if n := strings.Count(logs, `"level":"ERROR","msg":"session too large`); n != 1 {
		t.Errorf("%d Error log lines about the session size, want 1:\n%.3000s", n, logs)
	}
	if !strings.Contains(logs, `"cookies_needed":`) {
		t.Errorf("logs do not give the sizes:\n%.3000s", logs)
	}
}
