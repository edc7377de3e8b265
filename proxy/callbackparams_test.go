package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authgate/authgate/proxy/idp"
)

// TestCallbackRepeatedParams: a callback that repeats state, code, iss,
// error or session_state is refused with 400 and the login-failed page
// before the code is redeemed, and the flow's cookie is cleared.
func TestCallbackRepeatedParams(t *testing.T) {
	const state = "state-0123456789abcdef"
	for _, tc := range []struct{ name, query string }{
		{"state twice, same value", "code=c&state=" + state + "&state=" + state},
		{"state twice, other value", "code=c&state=" + state + "&state=other-0123456789abcdef"},
		{"code twice", "code=a&code=b&state=" + state},
		{"iss twice", "code=c&state=" + state + "&iss=https://idp.example&iss=https://evil.example"},
		{"error twice", "error=access_denied&error=x&state=" + state},
		{"session_state twice", "code=c&state=" + state + "&session_state=a&session_state=b"},
		{"empty repeat", "code=c&state=" + state + "&code="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &fakeProvider{exchangeID: &idp.Identity{Subject: "alice"}}
			env := newTestEnv(t, p)
			w := httptest.NewRecorder()
			env.h.ServeHTTP(w, httptest.NewRequest("GET", "/oauth2/start?rd=/deep", nil))
			var flow []string
			var flowName string
			for _, c := range w.Result().Cookies() {
				flow = append(flow, c.Name+"="+c.Value)
				flowName = c.Name
			}
			r := httptest.NewRequest("GET", "/oauth2/callback?"+tc.query, nil)
			r.Header.Set("Cookie", strings.Join(flow, "; "))
			r.Header.Set("Accept", "text/html")
			w = httptest.NewRecorder()
			env.h.ServeHTTP(w, r)
			if w.Code != http.StatusBadRequest {
				t.Fatalf("callback ?%s: status %d (Location %q), want 400", tc.query, w.Code, w.Header().Get("Location"))
			}
			if body := w.Body.String(); !strings.Contains(body, "Sign in again") || !strings.Contains(body, "invalid_callback") {
				t.Errorf("body = %q, want the login-failed page with invalid_callback", body)
			}
			cleared, session := false, false
			for _, c := range w.Result().Cookies() {
				cleared = cleared || c.Name == flowName && c.MaxAge < 0
				session = session || c.Name == "authgate" && c.Value != ""
			}
			if strings.Contains(tc.query, "state="+state) && !cleared {
				t.Errorf("Set-Cookie = %q, want %s cleared", w.Header().Values("Set-Cookie"), flowName)
			}
			if session {
				t.Error("a session cookie was set for a tampered callback")
			}
		})
	}
}

func TestRepeatedCallbackParamSingleValues(t *testing.T) {
	r := httptest.NewRequest("GET", "/oauth2/callback?code=c&state=s&iss=i&session_state=x&other=1&other=2", nil)
	if got := repeatedCallbackParam(r.URL.Query()); got != "" {
		t.Errorf("repeatedCallbackParam() = %q, want \"\" (only unlisted parameters repeat)", got)
	}
}
