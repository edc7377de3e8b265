package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// TestLoginDeepLink: a navigation without a session goes through the real
// OP's login and lands on the page it asked for, and the upstream receives
// the user's access token, which the OP itself accepts at userinfo.
func TestLoginDeepLink(t *testing.T) {
	g := startGate(t)
	b := newBrowser(t)

	resp := b.navigate(g.URL + "/some/page?x=1")
	if got := resp.Request.URL.Host; got != strings.TrimPrefix(strings.TrimSuffix(g.op.URL, "/"), "http://") {
		t.Fatalf("navigation without a session ended on host %q, want the OP", got)
	}
	resp = b.login(resp, g.opUser())
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK || body != "upstream /some/page?x=1" {
		t.Fatalf("after login: %d %q, want 200 %q", resp.StatusCode, body, "upstream /some/page?x=1")
	}
	if got := resp.Request.URL.RequestURI(); got != "/some/page?x=1" {
		t.Errorf("landed on %q, want /some/page?x=1", got)
	}

	seen := g.upstream.last()
	auth := seen.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "Bearer ") || len(auth) < 20 {
		t.Fatalf("upstream Authorization = %q, want a bearer token", auth)
	}
	// The token is the user's real access token: the OP accepts it.
	req, _ := http.NewRequest(http.MethodGet, g.op.URL+"userinfo", nil)
	req.Header.Set("Authorization", auth)
	ui, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Sub   string `json:"sub"`
		Email string `json:"email"`
	}
	json.NewDecoder(ui.Body).Decode(&claims)
	ui.Body.Close()
	if ui.StatusCode != http.StatusOK || claims.Sub == "" {
		t.Fatalf("OP userinfo with the forwarded token: %d sub=%q", ui.StatusCode, claims.Sub)
	}
	for header, want := range map[string]string{
		"X-Forwarded-User":  claims.Sub,
		"X-Forwarded-Email": claims.Email,
	} {
		if got := seen.Header.Get(header); got != want || want == "" {
			t.Errorf("upstream Header(%q) = %q, want %q", header, got, want)
		}
	}
	for _, c := range seen.Cookies() {
		if strings.HasPrefix(c.Name, "authgate") {
			t.Errorf("upstream received authgate's cookie %q", c.Name)
		}
	}
	if g.op.grantCount("authorization_code") != 1 {
		t.Errorf("token calls for the code = %d, want 1", g.op.grantCount("authorization_code"))
	}

	// The session works for the next request without the IdP.
	resp = b.navigate(g.URL + "/next")
	if body := readBody(t, resp); body != "upstream /next" {
		t.Errorf("second request: %q", body)
	}

	// userinfo shows the identity and never a token.
	req, _ = http.NewRequest(http.MethodGet, g.URL+"/oauth2/userinfo", nil)
	resp, err = b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body = readBody(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"sub":"`+claims.Sub+`"`) {
		t.Errorf("userinfo = %d %s", resp.StatusCode, body)
	}
	if strings.Contains(body, strings.TrimPrefix(auth, "Bearer ")) || strings.Contains(strings.ToLower(body), "token\":\"") {
		t.Errorf("userinfo leaks a token: %s", body)
	}
}

// TestTwoTabsLoginAtOnce: two logins started before either finishes both
// succeed, because each flow has its own cookie.
func TestTwoTabsLoginAtOnce(t *testing.T) {
	g := startGate(t)
	b := newBrowser(t)
	tab1 := b.navigate(g.URL + "/tab/1")
	tab2 := b.navigate(g.URL + "/tab/2")
	r2 := b.login(tab2, g.opUser())
	r1 := b.login(tab1, g.opUser())
	for _, c := range []struct {
		resp *http.Response
		want string
	}{{r1, "upstream /tab/1"}, {r2, "upstream /tab/2"}} {
		if body := readBody(t, c.resp); c.resp.StatusCode != http.StatusOK || body != c.want {
			t.Errorf("tab: %d %q, want 200 %q", c.resp.StatusCode, body, c.want)
		}
	}
}

// TestConcurrentLoginsManyTabs runs several logins concurrently in one
// browser; all must succeed.
func TestConcurrentLoginsManyTabs(t *testing.T) {
	g := startGate(t)
	b := newBrowser(t)
	const tabs = 5
	pages := make([]*http.Response, tabs)
	for i := range pages {
		pages[i] = b.navigate(g.URL + "/tab/" + string(rune('a'+i)))
	}
	var wg sync.WaitGroup
	results := make([]string, tabs)
	for i := range pages {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp := b.login(pages[i], g.opUser())
			results[i] = readBody(t, resp)
		}()
	}
	wg.Wait()
	for i, got := range results {
		if want := "upstream /tab/" + string(rune('a'+i)); got != want {
			t.Errorf("tab %d: %q, want %q", i, got, want)
		}
	}
}

// TestOpenRedirectLandsOnRoot: a hostile rd never leaves the origin.
func TestOpenRedirectLandsOnRoot(t *testing.T) {
	g := startGate(t)
	for _, rd := range []string{"//evil.example", "https://evil.example/", `/\evil.example`, "/a/../\\evil.example", "javascript:alert(1)"} {
		t.Run(rd, func(t *testing.T) {
			b := newBrowser(t)
			resp := b.signIn(g, g.URL+"/oauth2/start?rd="+url.QueryEscape(rd))
			readBody(t, resp)
			if resp.Request.URL.Host != strings.TrimPrefix(g.URL, "http://") || resp.Request.URL.Path != "/" {
				t.Errorf("rd=%q landed on %s, want %s/", rd, resp.Request.URL, g.URL)
			}
		})
	}
}

// TestCallbackRejections: state problems are refused before the code is
// redeemed, and an IdP error shows a page, never a 500.
func TestCallbackRejections(t *testing.T) {
	g := startGate(t)

	t.Run("error from IdP", func(t *testing.T) {
		b := newBrowser(t)
		resp := b.navigate(g.URL + "/oauth2/callback?error=access_denied&error_description=nope&state=x")
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "denied") {
			t.Errorf("error=access_denied: %d %.200q", resp.StatusCode, body)
		}
	})
	t.Run("missing state cookie", func(t *testing.T) {
		before := g.op.grantCount("authorization_code")
		b := newBrowser(t)
		resp := b.navigate(g.URL + "/oauth2/callback?code=abc&state=never-issued")
		readBody(t, resp)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status = %d, want 400", resp.StatusCode)
		}
		if got := g.op.grantCount("authorization_code"); got != before {
			t.Errorf("code redeemed without a state cookie")
		}
	})
	t.Run("mismatched and reused state", func(t *testing.T) {
		b := newBrowser(t)
		b.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if strings.HasSuffix(req.URL.Path, "/oauth2/callback") {
				return http.ErrUseLastResponse
			}
			return nil
		}
		resp := b.signIn(g, g.URL+"/x")
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("expected the OP's redirect to the callback, got %d", resp.StatusCode)
		}
		callback, _ := url.Parse(resp.Header.Get("Location"))
		q := callback.Query()
		state := q.Get("state")

		// A different state with this browser's cookies: refused.
		q.Set("state", state[:len(state)-2]+"zz")
		bad := *callback
		bad.RawQuery = q.Encode()
		before := g.op.grantCount("authorization_code")
		b.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		r := b.navigate(bad.String())
		readBody(t, r)
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("mismatched state: %d, want 400", r.StatusCode)
		}
		// The genuine callback works once...
		cookies := b.cookieHeader(g)
		r = b.navigate(callback.String())
		readBody(t, r)
		if r.StatusCode != http.StatusFound || r.Header.Get("Location") != "/x" {
			t.Fatalf("genuine callback: %d Location=%q", r.StatusCode, r.Header.Get("Location"))
		}
		// ...and replaying it with the captured flow cookie is refused
		// before the code reaches the token endpoint.
		redeemed := g.op.grantCount("authorization_code")
		if redeemed != before+1 {
			t.Fatalf("token calls = %d, want %d", redeemed, before+1)
		}
		req, _ := http.NewRequest(http.MethodGet, callback.String(), nil)
		req.Header.Set("Cookie", cookies)
		req.Header.Set("Accept", "text/html")
		r, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, r)
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("replayed callback: %d, want 400", r.StatusCode)
		}
		if got := g.op.grantCount("authorization_code"); got != redeemed {
			t.Errorf("replayed callback redeemed the code again")
		}
	})
}
