package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/authgate/authgate/proxy/idp/idptest"
)

// TestMixUpDefence is RFC 9207 through the whole program: a callback whose
// iss is missing (where discovery promised it) or names another issuer gets
// the login-failed page, never a session, never a 5xx, and the code is never
// redeemed; the log names the reason.
func TestMixUpDefence(t *testing.T) {
	tests := []struct {
		name       string
		opts       idptest.Options
		wantStatus int
	}{
		{name: "advertised and sent", opts: idptest.Options{ResponseIss: true}, wantStatus: http.StatusOK},
		{name: "neither advertised nor sent", opts: idptest.Options{}, wantStatus: http.StatusOK},
		{name: "advertised, missing", opts: idptest.Options{ResponseIss: true, Faults: idptest.Faults{OmitResponseIssuer: true}}, wantStatus: http.StatusBadRequest},
		{name: "advertised, another issuer", opts: idptest.Options{ResponseIss: true, Faults: idptest.Faults{ResponseIssuer: "https://attacker.example"}}, wantStatus: http.StatusBadRequest},
		{name: "not advertised, another issuer", opts: idptest.Options{Faults: idptest.Faults{ResponseIssuer: "https://attacker.example"}}, wantStatus: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, s := startFakeGate(t, tt.opts)
			b := newBrowser(t)
			resp := b.navigate(g.URL + "/app")
			body := readBody(t, resp)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("login ended with %d %.200q, want %d", resp.StatusCode, body, tt.wantStatus)
			}
			codes := s.TokenCalls("authorization_code")
			if tt.wantStatus == http.StatusOK {
				if body != "upstream /app" || codes != 1 {
					t.Fatalf("login: body %q, code exchanges %d; want the upstream page and 1", body, codes)
				}
				return
			}
			if codes != 0 {
				t.Errorf("code exchanges = %d, want 0: a mixed-up code must not be redeemed", codes)
			}
			if !strings.Contains(body, "did not come from the expected identity provider") {
				t.Errorf("login-failed page = %.300q, want it to say why", body)
			}
			if logs := g.logs.String(); !strings.Contains(logs, "RFC 9207") {
				t.Errorf("logs lack the mix-up reason:\n%s", logs)
			}
			if g.upstream.count() != 0 {
				t.Errorf("upstream reached %d times without a login", g.upstream.count())
			}
		})
	}
}
