package idp_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/authgate/authgate/proxy/idp"
	"github.com/authgate/authgate/proxy/idp/idptest"
)

const testRedirectURL = "http://127.0.0.1:1/oauth2/callback"

// startFaulty starts an idptest server and a discovered Provider for it.
func startFaulty(t *testing.T, opts idptest.Options, logs *logBuffer) (*idptest.Server, *idp.Provider) {
	t.Helper()
	s := idptest.New(t, opts)
	p := startProvider(t, idp.Options{
		IssuerURL:    s.URL,
		ClientID:     s.ClientID,
		ClientSecret: s.ClientSecret,
		RedirectURL:  testRedirectURL,
		Logger:       logs.logger(),
	})
	return s, p
}

// login runs NewAuthRequest and the provider's authorization endpoint.
func login(t *testing.T, s *idptest.Server, p *idp.Provider) (*idp.AuthRequest, string) {
	t.Helper()
	ar, err := p.NewAuthRequest()
	if err != nil {
		t.Fatalf("NewAuthRequest() error = %v", err)
	}
	code, state, err := s.Login(ar.URL)
	if err != nil {
		t.Fatalf("Login() error = %v", err)
	}
	if state != ar.State {
		t.Fatalf("Login() state = %q, want %q", state, ar.State)
	}
	return ar, code
}

func TestExchangeFaults(t *testing.T) {
	tests := []struct {
		name string
		opts idptest.Options
		// verifier and nonce, when set, replace the AuthRequest's.
		verifier string
		nonce    string
		timeout  time.Duration
		want     error
	}{
		{name: "wrong signing key", opts: idptest.Options{Faults: idptest.Faults{WrongKey: true}}, want: idp.ErrInvalidToken},
		{name: "alg none", opts: idptest.Options{Faults: idptest.Faults{AlgNone: true}}, want: idp.ErrInvalidToken},
		{name: "wrong issuer", opts: idptest.Options{Faults: idptest.Faults{Issuer: "http://127.0.0.1:2"}}, want: idp.ErrInvalidToken},
		{name: "wrong audience", opts: idptest.Options{Faults: idptest.Faults{Audience: []string{"someone-else"}}}, want: idp.ErrInvalidToken},
		{name: "extra audience with our azp", opts: idptest.Options{Faults: idptest.Faults{Audience: []string{"authgate", "someone-else"}, AZP: "authgate"}}, want: idp.ErrInvalidToken},
		{name: "extra audience without azp", opts: idptest.Options{Faults: idptest.Faults{Audience: []string{"authgate", "someone-else"}}}, want: idp.ErrInvalidToken},
		{name: "azp of another client", opts: idptest.Options{Faults: idptest.Faults{AZP: "someone-else"}}, want: idp.ErrInvalidToken},
		{name: "wrong nonce in token", opts: idptest.Options{Faults: idptest.Faults{Nonce: "replayed"}}, want: idp.ErrInvalidToken},
		{name: "caller's nonce differs", nonce: "another-login", want: idp.ErrInvalidToken},
		{name: "expired", opts: idptest.Options{Faults: idptest.Faults{ExpiresIn: -time.Minute}}, want: idp.ErrInvalidToken},
		{name: "iat in the future", opts: idptest.Options{Faults: idptest.Faults{IssuedAtOffset: 10 * time.Minute, ExpiresIn: time.Hour}}, want: idp.ErrInvalidToken},
		{name: "iat too old", opts: idptest.Options{Faults: idptest.Faults{IssuedAtOffset: -time.Hour, ExpiresIn: time.Hour}}, want: idp.ErrInvalidToken},
		{name: "no iat", opts: idptest.Options{Faults: idptest.Faults{OmitIssuedAt: true}}, want: idp.ErrInvalidToken},
		{name: "exp and iat as strings", opts: idptest.Options{Faults: idptest.Faults{StringDates: true}}, want: idp.ErrInvalidToken},
		{name: "bad at_hash", opts: idptest.Options{Faults: idptest.Faults{BadAtHash: true}}, want: idp.ErrInvalidToken},
		{name: "no id_token", opts: idptest.Options{Faults: idptest.Faults{OmitIDToken: true}}, want: idp.ErrInvalidToken},
		{name: "userinfo about another subject", opts: idptest.Options{ClaimsInUserinfoOnly: true, Faults: idptest.Faults{UserinfoSubject: "mallory"}}, want: idp.ErrInvalidToken},
		{name: "userinfo down", opts: idptest.Options{ClaimsInUserinfoOnly: true, Faults: idptest.Faults{UserinfoUnavailable: true}}, want: idp.ErrUnavailable},
		{name: "keys down", opts: idptest.Options{Faults: idptest.Faults{KeysUnavailable: true}}, want: idp.ErrUnavailable},
		{name: "token endpoint 500", opts: idptest.Options{Faults: idptest.Faults{Token: idptest.TokenServerError}}, want: idp.ErrUnavailable},
		{name: "token endpoint invalid_grant", opts: idptest.Options{Faults: idptest.Faults{Token: idptest.TokenInvalidGrant}}, want: idp.ErrInvalidGrant},
		{name: "token endpoint hangs", opts: idptest.Options{Faults: idptest.Faults{Token: idptest.TokenHang}}, timeout: 50 * time.Millisecond, want: idp.ErrUnavailable},
		{name: "wrong code verifier", verifier: "wrong-verifier-wrong-verifier-wrong-verifier-123", want: idp.ErrInvalidGrant},
		{name: "confidential client", opts: idptest.Options{ClientSecret: "s3cret/+&="}},
		{name: "claims from userinfo", opts: idptest.Options{ClaimsInUserinfoOnly: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &logBuffer{}
			s, p := startFaulty(t, tt.opts, logs)
			ar, code := login(t, s, p)
			verifier, nonce := ar.CodeVerifier, ar.Nonce
			if tt.verifier != "" {
				verifier = tt.verifier
			}
			if tt.nonce != "" {
				nonce = tt.nonce
			}
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			tokens, id, err := p.Exchange(ctx, code, verifier, nonce)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("Exchange() error = %v, want %v", err, tt.want)
				}
				for _, other := range []error{idp.ErrInvalidToken, idp.ErrInvalidGrant, idp.ErrUnavailable, idp.ErrNotReady} {
					if other != tt.want && errors.Is(err, other) {
						t.Errorf("Exchange() error = %v, also wraps %v", err, other)
					}
				}
				if tokens != nil || id != nil {
					t.Errorf("Exchange() = %v, %v with an error, want nil, nil", tokens, id)
				}
				assertNoSecrets(t, "error", err.Error(), s.Issued())
			} else {
				if err != nil {
					t.Fatalf("Exchange() error = %v", err)
				}
				if id.Subject != "user-1" || id.Email != "user@example.test" || id.Name != "Test User" ||
					id.PreferredUsername != "tuser" || !slices.Equal(id.Groups, []string{"admins", "dev"}) ||
					id.EmailVerified == nil || !*id.EmailVerified || id.SessionID == "" {
					t.Errorf("Exchange() identity = %+v, want the idptest default user", *id)
				}
				if got := s.TokenCalls("authorization_code"); got != 1 {
					t.Errorf("TokenCalls(authorization_code) = %d, want 1", got)
				}
			}
			assertNoSecrets(t, "logs", logs.String(), s.Issued())
		})
	}
}

func TestAuthRequest(t *testing.T) {
	s, p := startFaulty(t, idptest.Options{}, &logBuffer{})
	a, err := p.NewAuthRequest()
	if err != nil {
		t.Fatalf("NewAuthRequest() error = %v", err)
	}
	b, err := p.NewAuthRequest()
	if err != nil {
		t.Fatalf("NewAuthRequest() error = %v", err)
	}
	if a.State == b.State || a.Nonce == b.Nonce || a.CodeVerifier == b.CodeVerifier {
		t.Errorf("two AuthRequests share a state, nonce or verifier")
	}
	for name, v := range map[string]string{"state": a.State, "nonce": a.Nonce} {
		raw, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || len(raw) < 16 {
			t.Errorf("%s = %q: %d bytes of base64url (err %v), want >= 16", name, v, len(raw), err)
		}
	}
	u, err := url.Parse(a.URL)
	if err != nil {
		t.Fatalf("parse URL: %v", err)
	}
	sum := sha256.Sum256([]byte(a.CodeVerifier))
	want := map[string]string{
		"client_id":             s.ClientID,
		"redirect_uri":          testRedirectURL,
		"response_type":         "code",
		"scope":                 "openid email profile",
		"state":                 a.State,
		"nonce":                 a.Nonce,
		"code_challenge_method": "S256",
		"code_challenge":        base64.RawURLEncoding.EncodeToString(sum[:]),
	}
	for k, v := range want {
		if got := u.Query().Get(k); got != v {
			t.Errorf("URL query %q = %q, want %q", k, got, v)
		}
	}
	if got, want := u.Scheme+"://"+u.Host+u.Path, s.URL+"/authorize"; got != want {
		t.Errorf("URL endpoint = %q, want %q", got, want)
	}
}

// TestClaims covers the claim shapes providers send: groups as one string
// under a configured name, email_verified as a string (AWS Cognito).
func TestClaims(t *testing.T) {
	tests := []struct {
		name         string
		groupsClaim  string
		extra        map[string]any
		userinfoOnly bool
		groupsLater  bool // groups only in userinfo
		needGroups   bool
		wantGroups   []string
		wantVerified bool
	}{
		{name: "groups only in userinfo, needed", groupsLater: true, needGroups: true, wantGroups: []string{"admins", "dev"}, wantVerified: true},
		{name: "groups only in userinfo, not needed: no userinfo call", groupsLater: true, wantVerified: true},
		{name: "groups array", wantGroups: []string{"admins", "dev"}, wantVerified: true},
		{name: "roles as one string", groupsClaim: "roles", extra: map[string]any{"roles": "ops"}, wantGroups: []string{"ops"}, wantVerified: true},
		{name: "roles array from userinfo", groupsClaim: "roles", userinfoOnly: true, extra: map[string]any{"roles": []string{"a", "b"}}, wantGroups: []string{"a", "b"}, wantVerified: true},
		{name: "groups of another shape", extra: map[string]any{"groups": map[string]int{"x": 1}}, wantVerified: true},
		{name: "email_verified as string", extra: map[string]any{"email_verified": "false"}, wantGroups: []string{"admins", "dev"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := idptest.New(t, idptest.Options{ExtraClaims: tt.extra, ClaimsInUserinfoOnly: tt.userinfoOnly, GroupsInUserinfoOnly: tt.groupsLater})
			p := startProvider(t, idp.Options{
				IssuerURL: s.URL, ClientID: s.ClientID, RedirectURL: testRedirectURL,
				GroupsClaim: tt.groupsClaim, NeedGroups: tt.needGroups, Logger: (&logBuffer{}).logger(),
			})
			ar, code := login(t, s, p)
			_, id, err := p.Exchange(context.Background(), code, ar.CodeVerifier, ar.Nonce)
			if err != nil {
				t.Fatalf("Exchange() error = %v", err)
			}
			if !slices.Equal(id.Groups, tt.wantGroups) {
				t.Errorf("Identity.Groups = %q, want %q", id.Groups, tt.wantGroups)
			}
			if id.EmailVerified == nil || *id.EmailVerified != tt.wantVerified {
				t.Errorf("Identity.EmailVerified = %v, want %t", id.EmailVerified, tt.wantVerified)
			}
		})
	}
}
