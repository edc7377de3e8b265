package idp_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/authgate/authgate/proxy/idp"
	"github.com/authgate/authgate/proxy/idp/idptest"
)

// loggedIn returns a Provider with one finished login against s.
func loggedIn(t *testing.T, opts idptest.Options, logs *logBuffer) (*idptest.Server, *idp.Provider, *idp.Tokens, *idp.Identity) {
	t.Helper()
	s, p := startFaulty(t, opts, logs)
	ar, code := login(t, s, p)
	tokens, id, err := p.Exchange(context.Background(), code, ar.CodeVerifier, ar.Nonce)
	if err != nil {
		t.Fatalf("Exchange() error = %v", err)
	}
	return s, p, tokens, id
}

func TestRefresh(t *testing.T) {
	tests := []struct {
		name    string
		faults  idptest.Faults
		subject string // replaces the logged-in subject when set
		timeout time.Duration
		want    error
		// wantOldRefresh: the answer keeps the old refresh token.
		wantOldRefresh bool
		wantIDToken    bool
	}{
		{name: "rotates", wantIDToken: true},
		{name: "no new refresh token keeps the old", faults: idptest.Faults{OmitRefreshToken: true}, wantOldRefresh: true, wantIDToken: true},
		{name: "no id token", faults: idptest.Faults{OmitIDToken: true}},
		{name: "id token for another subject", faults: idptest.Faults{Subject: "mallory"}, want: idp.ErrInvalidToken},
		{name: "caller's subject differs", subject: "someone-else", want: idp.ErrInvalidToken},
		{name: "expired id token", faults: idptest.Faults{ExpiresIn: -time.Minute}, want: idp.ErrInvalidToken},
		{name: "id token dates as strings", faults: idptest.Faults{StringDates: true}, want: idp.ErrInvalidToken},
		{name: "id token signed by another key", faults: idptest.Faults{WrongKey: true}, want: idp.ErrInvalidToken},
		{name: "id token for another audience", faults: idptest.Faults{Audience: []string{"someone-else"}}, want: idp.ErrInvalidToken},
		{name: "invalid_grant", faults: idptest.Faults{Token: idptest.TokenInvalidGrant}, want: idp.ErrInvalidGrant},
		{name: "token endpoint 500", faults: idptest.Faults{Token: idptest.TokenServerError}, want: idp.ErrUnavailable},
		{name: "token endpoint hangs", faults: idptest.Faults{Token: idptest.TokenHang}, timeout: 50 * time.Millisecond, want: idp.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &logBuffer{}
			s, p, tokens, id := loggedIn(t, idptest.Options{}, logs)
			s.SetFaults(tt.faults)
			subject := id.Subject
			if tt.subject != "" {
				subject = tt.subject
			}
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			got, err := p.Refresh(ctx, tokens.RefreshToken, subject)
			if n := s.TokenCalls("refresh_token"); n != 1 {
				t.Errorf("TokenCalls(refresh_token) = %d, want exactly 1", n)
			}
			assertNoSecrets(t, "logs", logs.String(), s.Issued())
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("Refresh() error = %v, want %v", err, tt.want)
				}
				assertNoSecrets(t, "error", err.Error(), s.Issued())
				return
			}
			if err != nil {
				t.Fatalf("Refresh() error = %v", err)
			}
			if got.AccessToken == "" || got.AccessToken == tokens.AccessToken {
				t.Errorf("Refresh() access token new = %t, want a new one", got.AccessToken != tokens.AccessToken)
			}
			if keeps := got.RefreshToken == tokens.RefreshToken; keeps != tt.wantOldRefresh || got.RefreshToken == "" {
				t.Errorf("Refresh() kept the old refresh token = %t (empty %t), want %t", keeps, got.RefreshToken == "", tt.wantOldRefresh)
			}
			if (got.IDToken != "") != tt.wantIDToken {
				t.Errorf("Refresh() has an ID token = %t, want %t", got.IDToken != "", tt.wantIDToken)
			}
		})
	}
}

func TestRevoke(t *testing.T) {
	tests := []struct {
		name        string
		secret      string
		noEndpoint  bool
		wantRevoked bool
	}{
		{name: "public client", wantRevoked: true},
		{name: "confidential client", secret: "s3cret/+&=", wantRevoked: true},
		{name: "no revocation endpoint", noEndpoint: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := idptest.Options{ClientSecret: tt.secret}
			if tt.noEndpoint {
				opts.Discovery = func(doc map[string]any) { delete(doc, "revocation_endpoint") }
			}
			s, p, tokens, id := loggedIn(t, opts, &logBuffer{})
			if err := p.Revoke(context.Background(), tokens.RefreshToken); err != nil {
				t.Fatalf("Revoke() error = %v", err)
			}
			if got := slices.Contains(s.Revoked(), tokens.RefreshToken); got != tt.wantRevoked {
				t.Fatalf("provider revoked the refresh token = %t, want %t", got, tt.wantRevoked)
			}
			_, err := p.Refresh(context.Background(), tokens.RefreshToken, id.Subject)
			if tt.wantRevoked && !errors.Is(err, idp.ErrInvalidGrant) {
				t.Errorf("Refresh(revoked) error = %v, want ErrInvalidGrant", err)
			}
			if !tt.wantRevoked && err != nil {
				t.Errorf("Refresh(not revoked) error = %v, want nil", err)
			}
		})
	}
}

func TestEndSessionURL(t *testing.T) {
	tests := []struct {
		name                    string
		hint, postLogout, state string
		noEndpoint              bool
		want                    url.Values
		wantOK                  bool
	}{
		{
			name: "all parameters", hint: "eyJ.hint", postLogout: "https://app.example/bye", state: "s1",
			want:   url.Values{"id_token_hint": {"eyJ.hint"}, "post_logout_redirect_uri": {"https://app.example/bye"}, "client_id": {"authgate"}, "state": {"s1"}},
			wantOK: true,
		},
		{name: "client_id only", want: url.Values{"client_id": {"authgate"}}, wantOK: true},
		{name: "not offered", noEndpoint: true, hint: "eyJ.hint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := idptest.Options{}
			if tt.noEndpoint {
				opts.Discovery = func(doc map[string]any) { delete(doc, "end_session_endpoint") }
			}
			s, p := startFaulty(t, opts, &logBuffer{})
			got, ok := p.EndSessionURL(tt.hint, tt.postLogout, tt.state)
			if ok != tt.wantOK {
				t.Fatalf("EndSessionURL() ok = %t, want %t", ok, tt.wantOK)
			}
			if !ok {
				if got != "" {
					t.Errorf("EndSessionURL() = %q, want empty", got)
				}
				return
			}
			u, err := url.Parse(got)
			if err != nil {
				t.Fatalf("parse %q: %v", got, err)
			}
			if base := u.Scheme + "://" + u.Host + u.Path; base != s.URL+"/end_session" {
				t.Errorf("EndSessionURL() endpoint = %q, want %q", base, s.URL+"/end_session")
			}
			if q := u.Query(); q.Encode() != tt.want.Encode() {
				t.Errorf("EndSessionURL() query = %q, want %q", q.Encode(), tt.want.Encode())
			}
		})
	}
}
