package idp_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/authgate/authgate/proxy/idp"
	"github.com/authgate/authgate/proxy/idp/idptest"
)

const logoutEvent = "http://schemas.openid.net/event/backchannel-logout"

func logoutClaims(s *idptest.Server, now time.Time) map[string]any {
	return map[string]any{
		"iss":    s.URL,
		"aud":    s.ClientID,
		"iat":    now.Unix(),
		"exp":    now.Add(2 * time.Minute).Unix(),
		"jti":    "jti-1",
		"sub":    "user-1",
		"sid":    "sid-1",
		"events": map[string]any{logoutEvent: map[string]any{}},
	}
}

func TestVerifyLogoutToken(t *testing.T) {
	s := idptest.New(t, idptest.Options{})
	p := startProvider(t, idp.Options{IssuerURL: s.URL, ClientID: s.ClientID, RedirectURL: testRedirectURL, Logger: (&logBuffer{}).logger()})
	now := time.Now()

	tests := []struct {
		name     string
		edit     func(c map[string]any)
		typ      string
		wrongKey bool
		wantErr  bool
	}{
		{name: "valid", typ: "logout+jwt"},
		{name: "valid without typ"},
		{name: "valid with sid only", edit: func(c map[string]any) { delete(c, "sub") }},
		{name: "valid with sub only", edit: func(c map[string]any) { delete(c, "sid") }},
		{name: "typ JWT (Ory Hydra's)", typ: "JWT"},
		{name: "typ jwt in lower case", typ: "jwt"},
		{name: "typ application/logout+jwt", typ: "application/logout+jwt"},
		{name: "typ at+jwt (an access token's)", typ: "at+jwt", wantErr: true},
		{name: "typ dpop+jwt", typ: "dpop+jwt", wantErr: true},
		{name: "typ secevent+jwt", typ: "secevent+jwt", wantErr: true},
		{name: "no exp, fresh iat (pre-errata providers)", edit: func(c map[string]any) { delete(c, "exp") }},
		{name: "no exp, iat too old", edit: func(c map[string]any) { delete(c, "exp"); c["iat"] = now.Add(-10 * time.Minute).Unix() }, wantErr: true},
		{name: "no exp, no iat", edit: func(c map[string]any) { delete(c, "exp"); delete(c, "iat") }, wantErr: true},
		{name: "no exp, iat in the future", edit: func(c map[string]any) { delete(c, "exp"); c["iat"] = now.Add(time.Hour).Unix() }, wantErr: true},
		{name: "nbf in the future", edit: func(c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() }, wantErr: true},
		{name: "exp as a string", edit: func(c map[string]any) { c["exp"] = "9999999999" }, wantErr: true},
		{name: "iat as a string", edit: func(c map[string]any) { c["iat"] = fmt.Sprint(now.Unix()) }, wantErr: true},
		{name: "nbf as a string", edit: func(c map[string]any) { c["nbf"] = "0" }, wantErr: true},
		{name: "exp null", edit: func(c map[string]any) { c["exp"] = nil }, wantErr: true},
		{name: "nbf past", edit: func(c map[string]any) { c["nbf"] = now.Add(-time.Minute).Unix() }},
		{name: "no exp, ID token shape (nonce, no events)", edit: func(c map[string]any) { delete(c, "exp"); delete(c, "events"); c["nonce"] = "n" }, wantErr: true},
		{name: "signed by another key", wrongKey: true, wantErr: true},
		{name: "other issuer", edit: func(c map[string]any) { c["iss"] = "https://evil.example" }, wantErr: true},
		{name: "other audience", edit: func(c map[string]any) { c["aud"] = "someone-else" }, wantErr: true},
		{name: "expired", edit: func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() }, wantErr: true},
		{name: "no iat", edit: func(c map[string]any) { delete(c, "iat") }, wantErr: true},
		{name: "iat in the future", edit: func(c map[string]any) { c["iat"] = now.Add(time.Hour).Unix() }, wantErr: true},
		{name: "iat too old", edit: func(c map[string]any) { c["iat"] = now.Add(-time.Hour).Unix() }, wantErr: true},
		{name: "no jti", edit: func(c map[string]any) { delete(c, "jti") }, wantErr: true},
		{name: "neither sub nor sid", edit: func(c map[string]any) { delete(c, "sub"); delete(c, "sid") }, wantErr: true},
		{name: "nonce present", edit: func(c map[string]any) { c["nonce"] = "n" }, wantErr: true},
		{name: "no events", edit: func(c map[string]any) { delete(c, "events") }, wantErr: true},
		{name: "other event", edit: func(c map[string]any) { c["events"] = map[string]any{"urn:other": map[string]any{}} }, wantErr: true},
		{name: "event not an object", edit: func(c map[string]any) { c["events"] = map[string]any{logoutEvent: "yes"} }, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := logoutClaims(s, now)
			if tt.edit != nil {
				tt.edit(c)
			}
			raw, err := s.Sign(c, tt.typ, tt.wrongKey)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.VerifyLogoutToken(context.Background(), raw)
			if tt.wantErr {
				if !errors.Is(err, idp.ErrInvalidToken) {
					t.Fatalf("VerifyLogoutToken error = %v, want ErrInvalidToken", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("VerifyLogoutToken error = %v", err)
			}
			if got.JTI != "jti-1" || got.Subject != stringClaim(c, "sub") || got.SessionID != stringClaim(c, "sid") {
				t.Errorf("VerifyLogoutToken = %+v", got)
			}
		})
	}
}

func TestVerifyLogoutTokenRejectsGarbageAndAlgNone(t *testing.T) {
	s := idptest.New(t, idptest.Options{})
	p := startProvider(t, idp.Options{IssuerURL: s.URL, ClientID: s.ClientID, RedirectURL: testRedirectURL, Logger: (&logBuffer{}).logger()})
	for _, raw := range []string{"", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."} {
		if _, err := p.VerifyLogoutToken(context.Background(), raw); !errors.Is(err, idp.ErrInvalidToken) {
			t.Errorf("VerifyLogoutToken(%q) error = %v, want ErrInvalidToken", raw, err)
		}
	}
}

func TestVerifyLogoutTokenBeforeDiscovery(t *testing.T) {
	p, err := idp.New(idp.Options{IssuerURL: "http://127.0.0.1:1/", ClientID: "c", RedirectURL: testRedirectURL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.VerifyLogoutToken(context.Background(), "x"); !errors.Is(err, idp.ErrNotReady) {
		t.Errorf("error = %v, want ErrNotReady", err)
	}
}

func stringClaim(c map[string]any, k string) string {
	v, _ := c[k].(string)
	return v
}
