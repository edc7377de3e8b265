package proxy

import (
	"crypto/sha256"
	"encoding/base64"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestDeepLinkPage: a navigation with Fetch Metadata and no session gets a
// 200 no-store page whose only allowed script is its own (by hash), which
// reads where to go from the page; a <noscript> refresh keeps the 302's
// behaviour. Clients without Fetch Metadata still get the 302.
func TestDeepLinkPage(t *testing.T) {
	env := newTestEnv(t, &fakeProvider{})
	resp, body := env.raw(t, "GET", "/some/deep/link?x=1&y=%22a%22", map[string]string{"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "none", "Accept": "text/html"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Header(%q) = %q, want no-store", "Cache-Control", cc)
	}
	for _, c := range resp.Cookies() {
		t.Errorf("Set-Cookie %s on the page, want none before <prefix>/start", c.Name)
	}
	m := regexp.MustCompile(`(?s)<script>(.*?)</script>`).FindAllStringSubmatch(body, -1)
	if len(m) != 1 {
		t.Fatalf("%d scripts in %q, want 1", len(m), body)
	}
	sum := sha256.Sum256([]byte(m[0][1]))
	csp := resp.Header.Get("Content-Security-Policy")
	wantCSP := "default-src 'none'; script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	if !strings.HasPrefix(csp, wantCSP) || strings.Contains(csp, "unsafe") || strings.Count(csp, "script-src") != 1 {
		t.Errorf("Header(%q) = %q, want it to start with %q and allow nothing else", "Content-Security-Policy", csp, wantCSP)
	}
	if !strings.Contains(m[0][1], "location.hash") || !strings.Contains(m[0][1], "location.replace") {
		t.Errorf("script %q does not send location.hash to login", m[0][1])
	}
	for _, want := range []string{
		`<meta name="authgate-start" content="/oauth2/start">`,
		`<meta name="authgate-rd" content="/some/deep/link?x=1&amp;y=%22a%22">`,
		`<noscript><meta http-equiv="refresh" content="0;url=/oauth2/start?rd=` + attrEscaped(url.QueryEscape("/some/deep/link?x=1&y=%22a%22")) + `"></noscript>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s:\n%s", want, body)
		}
	}

	// Without Fetch Metadata: the 302 as before.
	resp, _ = env.raw(t, "GET", "/some/deep/link?x=1", map[string]string{"Accept": "text/html"})
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "https://idp.example/auth") {
		t.Errorf("navigation without Fetch Metadata: %d %q, want 302 to the IdP", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Not a navigation: 401 as before.
	resp, _ = env.raw(t, "GET", "/some/deep/link", map[string]string{"Sec-Fetch-Mode": "cors", "Accept": "text/html"})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("fetch: %d, want 401", resp.StatusCode)
	}
}

// attrEscaped is what html/template makes of s inside an attribute.
func attrEscaped(s string) string { return strings.ReplaceAll(s, "&", "&amp;") }

// TestPagesEscapeValues: the hand-written deep-link and sign-out pages
// escape every value they carry, whatever reaches them.
func TestPagesEscapeValues(t *testing.T) {
	const evil = `/x"><script>alert(1)</script>&y='z'`
	var b strings.Builder
	writeDeepLinkPage(&b, "/oauth2/start", evil, "/oauth2/start?rd="+evil)
	writeSignOutPage(&b, "/oauth2/sign_out", evil)
	page := b.String()
	if strings.Contains(page, `"><script>alert`) || strings.Contains(page, `'z'`) {
		t.Errorf("pages carry an unescaped value:\n%s", page)
	}
	if want := html.EscapeString(evil); strings.Count(page, want) != 4 {
		t.Errorf("pages carry the escaped value %q %d times, want 4 (rd, refresh, link, hidden field):\n%s", want, strings.Count(page, want), page)
	}
}
