package idp_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/authgate/authgate/proxy/idp"
	"github.com/authgate/authgate/proxy/idp/idptest"
)

// TestClaimLocations covers where providers put the claims authgate reads:
// nested and namespaced group claims, groups only in the access token, the
// user and email from other claims, and Entra ID's group overage.
func TestClaimLocations(t *testing.T) {
	noGroups := idptest.User{Subject: "u-1", Email: "u@example.test", EmailVerified: true, Name: "U", PreferredUsername: "u"}
	overage := map[string]any{
		"_claim_names":   map[string]any{"groups": "src1"},
		"_claim_sources": map[string]any{"src1": map[string]any{"endpoint": "https://graph.microsoft.com/v1.0/users/u-1/getMemberObjects"}},
	}
	tests := []struct {
		name        string
		opts        idptest.Options
		groupsClaim string
		userClaim   string
		emailClaim  string
		needGroups  bool
		wantGroups  []string
		wantUser    string
		wantEmail   string
		wantErr     error
	}{
		{name: "keycloak realm roles in the id token", groupsClaim: "realm_access.roles",
			opts:       idptest.Options{User: noGroups, ExtraClaims: map[string]any{"realm_access": map[string]any{"roles": []string{"admin", "user"}}}},
			wantGroups: []string{"admin", "user"}},
		{name: "keycloak client roles, client id with a dot", groupsClaim: "resource_access.my.app.roles",
			opts:       idptest.Options{User: noGroups, ExtraClaims: map[string]any{"resource_access": map[string]any{"my.app": map[string]any{"roles": []string{"editor"}}}}},
			wantGroups: []string{"editor"}},
		{name: "cognito:groups", groupsClaim: "cognito:groups",
			opts:       idptest.Options{User: noGroups, ExtraClaims: map[string]any{"cognito:groups": []string{"eu-admins"}}},
			wantGroups: []string{"eu-admins"}},
		{name: "auth0 namespaced claim with dots is a top-level name", groupsClaim: "https://example.com/roles",
			opts:       idptest.Options{User: noGroups, ExtraClaims: map[string]any{"https://example.com/roles": []string{"ops"}}},
			wantGroups: []string{"ops"}},
		{name: "nested claim as one string", groupsClaim: "realm_access.roles",
			opts:       idptest.Options{User: noGroups, ExtraClaims: map[string]any{"realm_access": map[string]any{"roles": "solo"}}},
			wantGroups: []string{"solo"}},
		{name: "keycloak realm roles only in the access token", groupsClaim: "realm_access.roles", needGroups: true,
			opts: idptest.Options{User: noGroups, AccessTokens: idptest.AccessJWT,
				AccessTokenClaims: map[string]any{"realm_access": map[string]any{"roles": []string{"from-access-token"}}}},
			wantGroups: []string{"from-access-token"}},
		{name: "access token signed by another key is not read", groupsClaim: "realm_access.roles",
			opts: idptest.Options{User: noGroups, AccessTokens: idptest.AccessJWT, AccessTokenWrongKey: true,
				AccessTokenClaims: map[string]any{"realm_access": map[string]any{"roles": []string{"forged"}}}}},
		{name: "id token wins over the access token", groupsClaim: "realm_access.roles",
			opts: idptest.Options{User: noGroups, AccessTokens: idptest.AccessJWT,
				ExtraClaims:       map[string]any{"realm_access": map[string]any{"roles": []string{"from-id-token"}}},
				AccessTokenClaims: map[string]any{"realm_access": map[string]any{"roles": []string{"from-access-token"}}}},
			wantGroups: []string{"from-id-token"}},
		{name: "opaque access token: no groups", groupsClaim: "realm_access.roles", opts: idptest.Options{User: noGroups}},
		{name: "user from preferred_username", userClaim: "preferred_username",
			opts: idptest.Options{}, wantUser: "tuser", wantGroups: []string{"admins", "dev"}},
		{name: "user claim only in userinfo", userClaim: "oid",
			opts:     idptest.Options{ClaimsInUserinfoOnly: true, ExtraClaims: map[string]any{"oid": "00000000-aaaa"}},
			wantUser: "00000000-aaaa", wantGroups: []string{"admins", "dev"}},
		{name: "user claim nowhere fails the login", userClaim: "oid", opts: idptest.Options{}, wantErr: idp.ErrInvalidToken},
		{name: "entra: email in preferred_username", emailClaim: "preferred_username",
			opts:      idptest.Options{User: idptest.User{Subject: "s", PreferredUsername: "jane@contoso.example", Groups: []string{"g"}}},
			wantEmail: "jane@contoso.example", wantGroups: []string{"g"}},
		{name: "entra: email in upn", emailClaim: "upn",
			opts:      idptest.Options{User: idptest.User{Subject: "s", Groups: []string{"g"}}, ExtraClaims: map[string]any{"upn": "jane@contoso.example"}},
			wantEmail: "jane@contoso.example", wantGroups: []string{"g"}},
		{name: "entra group overage, groups needed", needGroups: true, opts: idptest.Options{User: noGroups, ExtraClaims: overage}, wantErr: idp.ErrGroupsOverage},
		{name: "entra group overage, groups not needed", opts: idptest.Options{User: noGroups, ExtraClaims: overage}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := idptest.New(t, tt.opts)
			p := startProvider(t, idp.Options{
				IssuerURL: s.URL, ClientID: s.ClientID, RedirectURL: testRedirectURL, Logger: (&logBuffer{}).logger(),
				GroupsClaim: tt.groupsClaim, UserClaim: tt.userClaim, EmailClaim: tt.emailClaim, NeedGroups: tt.needGroups,
			})
			ar, code := login(t, s, p)
			_, id, err := p.Exchange(context.Background(), code, ar.CodeVerifier, ar.Nonce)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Exchange() error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Exchange() error = %v", err)
			}
			if !slices.Equal(id.Groups, tt.wantGroups) {
				t.Errorf("Identity.Groups = %q, want %q", id.Groups, tt.wantGroups)
			}
			wantUser := tt.wantUser
			if wantUser == "" {
				wantUser = id.Subject
			}
			if id.User != wantUser {
				t.Errorf("Identity.User = %q, want %q", id.User, wantUser)
			}
			if tt.wantEmail != "" {
				if id.Email != tt.wantEmail || id.EmailVerified != nil {
					t.Errorf("Identity.Email = %q (verified %v), want %q with no email_verified", id.Email, id.EmailVerified, tt.wantEmail)
				}
			}
		})
	}
}

// TestVerifyBearerClaimNames: API bearer tokens are read with the same claim
// names as logins (nested groups, user and email claims), and a token
// without the configured user claim is refused rather than named by sub.
func TestVerifyBearerClaimNames(t *testing.T) {
	s := idptest.New(t, idptest.Options{})
	p := startProvider(t, idp.Options{IssuerURL: s.URL, ClientID: s.ClientID, RedirectURL: testRedirectURL, Logger: (&logBuffer{}).logger(),
		GroupsClaim: "realm_access.roles", UserClaim: "oid", EmailClaim: "upn"})
	now := time.Now()
	claims := map[string]any{"iss": s.URL, "sub": "s-1", "aud": "api", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
		"oid": "oid-1", "upn": "jane@contoso.example", "realm_access": map[string]any{"roles": []string{"admin"}}}
	tok, err := s.Sign(claims, "at+jwt", false)
	if err != nil {
		t.Fatal(err)
	}
	id, err := p.VerifyBearer(context.Background(), tok, []string{"api"})
	if err != nil {
		t.Fatalf("VerifyBearer() error = %v", err)
	}
	if id.User != "oid-1" || id.Email != "jane@contoso.example" || !slices.Equal(id.Groups, []string{"admin"}) {
		t.Errorf("VerifyBearer() = user %q email %q groups %q, want oid-1, jane@contoso.example, [admin]", id.User, id.Email, id.Groups)
	}
	delete(claims, "oid")
	tok, _ = s.Sign(claims, "at+jwt", false)
	var te *idp.TokenError
	if _, err := p.VerifyBearer(context.Background(), tok, []string{"api"}); !errors.As(err, &te) || te.Description != "token lacks the user claim" {
		t.Errorf("VerifyBearer(no oid) error = %v, want \"token lacks the user claim\"", err)
	}
}
