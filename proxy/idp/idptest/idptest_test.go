package idptest_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authgate/authgate/proxy/idp/idptest"
)

func TestDiscoveryFailures(t *testing.T) {
	s := idptest.New(t, idptest.Options{DiscoveryFailures: 2})
	want := []int{http.StatusServiceUnavailable, http.StatusServiceUnavailable, http.StatusOK}
	for i, code := range want {
		resp, err := s.Client().Get(s.URL + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatalf("GET discovery: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != code {
			t.Errorf("discovery request %d status = %d, want %d", i+1, resp.StatusCode, code)
		}
	}
	if got := s.DiscoveryCalls(); got != 3 {
		t.Errorf("DiscoveryCalls() = %d, want 3", got)
	}
}

func TestAuthorizeRequiresPKCE(t *testing.T) {
	s := idptest.New(t, idptest.Options{})
	q := url.Values{
		"client_id":     {s.ClientID},
		"response_type": {"code"},
		"scope":         {"openid"},
		"redirect_uri":  {"http://127.0.0.1:1/cb"},
		"state":         {"st"},
	}
	if _, _, err := s.Login(s.URL + "/authorize?" + q.Encode()); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("Login() without PKCE error = %v, want a 400", err)
	}
	q.Set("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
	q.Set("code_challenge_method", "S256")
	code, state, err := s.Login(s.URL + "/authorize?" + q.Encode())
	if err != nil || code == "" || state != "st" {
		t.Errorf("Login() = %q, %q, %v, want a code and state %q", code, state, err, "st")
	}
}

func TestTokenCallsCountFaults(t *testing.T) {
	s := idptest.New(t, idptest.Options{Faults: idptest.Faults{Token: idptest.TokenServerError}})
	for range 2 {
		resp, err := s.Client().PostForm(s.URL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}})
		if err != nil {
			t.Fatalf("POST token: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("token status = %d, want 500", resp.StatusCode)
		}
	}
	if got := s.TokenCalls("refresh_token"); got != 2 {
		t.Errorf("TokenCalls(refresh_token) = %d, want 2", got)
	}
	if got := s.TokenCalls("authorization_code"); got != 0 {
		t.Errorf("TokenCalls(authorization_code) = %d, want 0", got)
	}
}
