package idp_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/authgate/authgate/proxy/idp"
	"github.com/authgate/authgate/proxy/idp/idptest"
)

func TestCheckPrompt(t *testing.T) {
	tests := []struct {
		prompt  string
		wantErr string
	}{
		{prompt: ""},
		{prompt: "consent"},
		{prompt: "login consent"},
		{prompt: "select_account  consent"},
		{prompt: "none"},
		{prompt: "none login", wantErr: `"none" cannot be combined`},
		{prompt: "create", wantErr: `"create" is not one of`},
		{prompt: "consent,login", wantErr: `"consent,login" is not one of`},
		{prompt: "login login", wantErr: "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.prompt, func(t *testing.T) {
			err := idp.CheckPrompt(tt.prompt)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckPrompt(%q) = %v, want nil", tt.prompt, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("CheckPrompt(%q) = %v, want it to contain %q", tt.prompt, err, tt.wantErr)
			}
		})
	}
}

func TestParseAuthParams(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    url.Values
		wantErr string
	}{
		{name: "empty", raw: ""},
		{name: "google", raw: "access_type=offline", want: url.Values{"access_type": {"offline"}}},
		{name: "auth0 audience, encoded", raw: "audience=https%3A%2F%2Fapi.example", want: url.Values{"audience": {"https://api.example"}}},
		{name: "audience unencoded", raw: "audience=https://api.example/v1", want: url.Values{"audience": {"https://api.example/v1"}}},
		{name: "two resources", raw: "resource=https://a.example&resource=https://b.example", want: url.Values{"resource": {"https://a.example", "https://b.example"}}},
		{name: "several", raw: "access_type=offline&hd=example.com", want: url.Values{"access_type": {"offline"}, "hd": {"example.com"}}},
		{name: "empty value", raw: "login_hint=", want: url.Values{"login_hint": {""}}},
		{name: "no value", raw: "access_type", wantErr: "has no =value"},
		{name: "no name", raw: "=x", wantErr: "has no name"},
		{name: "bad escape", raw: "a=%zz", wantErr: "query form"},
		{name: "prompt", raw: "prompt=consent", wantErr: `"prompt" is set by authgate itself (use AUTHGATE_PROMPT)`},
		{name: "scope", raw: "scope=openid", wantErr: `"scope" is set by authgate itself (use AUTHGATE_SCOPES)`},
		{name: "redirect_uri", raw: "redirect_uri=https://evil.example", wantErr: `"redirect_uri" is set by authgate itself`},
		{name: "upper case reserved", raw: "Response_Type=token", wantErr: `"Response_Type" is set by authgate itself`},
		{name: "request object", raw: "request=eyJ", wantErr: `"request"`},
		{name: "every reserved name listed", raw: "state=x&nonce=y", wantErr: `"nonce" is set by authgate itself` + "\n" + `parameter "state"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := idp.ParseAuthParams(tt.raw)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseAuthParams(%q) error = %v, want it to contain %q", tt.raw, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAuthParams(%q) error = %v", tt.raw, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("ParseAuthParams(%q) = %v, want %v", tt.raw, got, tt.want)
			}
			for k, v := range tt.want {
				if !slices.Equal(got[k], v) {
					t.Errorf("ParseAuthParams(%q)[%q] = %q, want %q", tt.raw, k, got[k], v)
				}
			}
		})
	}
}

func TestNewRefusesReservedAuthParams(t *testing.T) {
	_, err := idp.New(idp.Options{IssuerURL: "https://idp.example", ClientID: "c", RedirectURL: "https://app.example/cb",
		Prompt: "nonsense", AuthParams: url.Values{"client_id": {"other"}}})
	if err == nil || !strings.Contains(err.Error(), `"client_id" is set by authgate itself`) || !strings.Contains(err.Error(), `"nonsense"`) {
		t.Fatalf("New() error = %v, want both the prompt and client_id named", err)
	}
}

func TestAuthRequestPromptAndParams(t *testing.T) {
	s := idptest.New(t, idptest.Options{})
	p := startProvider(t, idp.Options{
		IssuerURL: s.URL, ClientID: s.ClientID, RedirectURL: testRedirectURL, Logger: (&logBuffer{}).logger(),
		Prompt:     "select_account consent",
		AuthParams: url.Values{"access_type": {"offline"}, "resource": {"https://a.example", "https://b.example"}},
	})
	ar, _ := login(t, s, p)
	u, err := url.Parse(ar.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for k, want := range map[string][]string{
		"prompt":      {"select_account consent"},
		"access_type": {"offline"},
		"resource":    {"https://a.example", "https://b.example"},
		"client_id":   {s.ClientID},
		"scope":       {"openid email profile"},
	} {
		if !slices.Equal(q[k], want) {
			t.Errorf("URL query %q = %q, want %q", k, q[k], want)
		}
	}
	if got := s.AuthRequests(); len(got) != 1 || got[0].Get("prompt") != "select_account consent" {
		t.Errorf("provider received %v, want one request with the prompt", got)
	}
}

// TestNoRefreshTokenWarning covers node-oidc-provider's default: it grants
// offline_access only with prompt=consent (OpenID Connect Core 11). Without
// the prompt there is no refresh token and one WARN, once per process, names
// the fix; with it there is a refresh token and no warning.
func TestNoRefreshTokenWarning(t *testing.T) {
	scopes := []string{"openid", "email", "offline_access"}
	tests := []struct {
		name        string
		prompt      string
		scopes      []string
		wantRefresh bool
		wantWarn    bool
	}{
		{name: "offline_access without prompt=consent", scopes: scopes, wantWarn: true},
		{name: "offline_access with prompt=consent", scopes: scopes, prompt: "consent", wantRefresh: true},
		{name: "no offline_access asked: no warning", scopes: []string{"openid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := idptest.New(t, idptest.Options{RefreshTokens: idptest.RefreshOfflineConsent})
			logs := &logBuffer{}
			p := startProvider(t, idp.Options{
				IssuerURL: s.URL, ClientID: s.ClientID, RedirectURL: testRedirectURL, Logger: logs.logger(),
				Scopes: tt.scopes, Prompt: tt.prompt,
			})
			for range 3 {
				ar, code := login(t, s, p)
				tok, _, err := p.Exchange(context.Background(), code, ar.CodeVerifier, ar.Nonce)
				if err != nil {
					t.Fatalf("Exchange() error = %v", err)
				}
				if got := tok.RefreshToken != ""; got != tt.wantRefresh {
					t.Fatalf("refresh token present = %t, want %t", got, tt.wantRefresh)
				}
			}
			warnings := strings.Count(logs.String(), "had none")
			want := 0
			if tt.wantWarn {
				want = 1
			}
			if warnings != want {
				t.Errorf("logged the no-refresh-token warning %d times over 3 logins, want %d:\n%s", warnings, want, logs)
			}
			if tt.wantWarn && !strings.Contains(logs.String(), "AUTHGATE_PROMPT=consent") {
				t.Errorf("warning does not name AUTHGATE_PROMPT=consent:\n%s", logs)
			}
		})
	}
}
