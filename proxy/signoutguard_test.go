package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestSignOutCrossSite: sign-out ends the session only for a same-origin
// POST, an API client's POST, or a same-origin/typed GET; other GETs get a
// page whose button POSTs, and a cross-site POST is refused.
func TestSignOutCrossSite(t *testing.T) {
	const (
		ended   = "ended"
		confirm = "confirm"
		refused = "refused"
	)
	html := map[string]string{"Accept": "text/html"}
	for _, tc := range []struct {
		name, method string
		header       map[string]string
		want         string
	}{
		{"GET link on our page", "GET", map[string]string{"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate"}, ended},
		{"GET typed or bookmarked", "GET", map[string]string{"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate"}, ended},
		{"GET img on another site", "GET", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Accept": "image/*"}, confirm},
		{"GET link on another site", "GET", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Accept": "text/html"}, confirm},
		{"GET from a sibling subdomain", "GET", map[string]string{"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "navigate", "Accept": "text/html"}, confirm},
		{"GET without Fetch Metadata from a browser", "GET", html, confirm},
		{"GET without Fetch Metadata from curl", "GET", nil, confirm},
		{"POST same-origin Fetch Metadata", "POST", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://app.test"}, ended},
		{"POST same-origin Origin, old browser", "POST", map[string]string{"Origin": "https://APP.test"}, ended},
		{"POST API client", "POST", nil, ended},
		{"POST cross-site form", "POST", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.test"}, refused},
		{"POST cross-site claiming our Origin", "POST", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://app.test"}, refused},
		{"POST same-site", "POST", map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "https://other.app.test"}, refused},
		{"POST other Origin, old browser", "POST", map[string]string{"Origin": "https://evil.test"}, refused},
		{"POST Origin null", "POST", map[string]string{"Origin": "null"}, refused},
		{"POST Origin with our host as a path", "POST", map[string]string{"Origin": "https://evil.test/app.test"}, refused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, &fakeProvider{})
			s := env.session(time.Hour)
			r := httptest.NewRequest(tc.method, "http://app.test/oauth2/sign_out?rd=/bye", nil)
			r.Header.Set("Cookie", env.cookieFor(t, s))
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			env.h.ServeHTTP(w, r)
			cleared := false
			for _, c := range w.Result().Cookies() {
				cleared = cleared || c.Name == "authgate" && c.MaxAge < 0
			}
			revoked := env.h.revocations.Revoked(s)
			switch tc.want {
			case ended:
				if w.Code != http.StatusFound || w.Header().Get("Location") != "/bye" || !cleared || !revoked {
					t.Errorf("%s: %d Location %q cleared %v revoked %v, want 302 to /bye, cookie cleared, session revoked",
						tc.name, w.Code, w.Header().Get("Location"), cleared, revoked)
				}
				return
			case confirm:
				if cleared || revoked {
					t.Errorf("%s: session ended (cleared %v revoked %v), want the confirmation only", tc.name, cleared, revoked)
				}
				if tc.header["Accept"] == "text/html" {
					body := w.Body.String()
					if w.Code != http.StatusOK || !strings.Contains(body, `<form method="post" action="/oauth2/sign_out">`) ||
						!strings.Contains(body, `name="rd" value="/bye"`) || strings.Contains(body, "<script") {
						t.Errorf("%s: %d %q, want 200 with a POST form carrying rd and no script", tc.name, w.Code, body)
					}
					if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
						t.Errorf("Header(%q) = %q, want default-src 'none' and no script", "Content-Security-Policy", csp)
					}
				} else if w.Code != http.StatusForbidden || w.Header().Get("Allow") != "POST" {
					t.Errorf("%s: %d Allow %q, want 403 with Allow: POST", tc.name, w.Code, w.Header().Get("Allow"))
				}
			case refused:
				if w.Code != http.StatusForbidden || cleared || revoked {
					t.Errorf("%s: %d cleared %v revoked %v, want 403 and the session kept", tc.name, w.Code, cleared, revoked)
				}
			}
		})
	}
}

// TestSignOutConfirmationPagePosts: the confirmation page's form, sent as
// the browser sends it (same-origin POST with rd in the body), signs out.
func TestSignOutConfirmationPagePosts(t *testing.T) {
	env := newTestEnv(t, &fakeProvider{})
	s := env.session(time.Hour)
	r := httptest.NewRequest("POST", "http://app.test/oauth2/sign_out", strings.NewReader("rd=%2Fbye%3Fx%3D1"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.Header.Set("Origin", "http://app.test")
	r.Header.Set("Cookie", env.cookieFor(t, s))
	w := httptest.NewRecorder()
	env.h.ServeHTTP(w, r)
	if w.Code != http.StatusFound || w.Header().Get("Location") != "/bye?x=1" || !env.h.revocations.Revoked(s) {
		t.Errorf("POST from the page: %d Location %q revoked %v, want 302 to /bye?x=1 and the session revoked",
			w.Code, w.Header().Get("Location"), env.h.revocations.Revoked(s))
	}
}
