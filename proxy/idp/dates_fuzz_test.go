package idp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/authgate/authgate/proxy/idp"
	"github.com/authgate/authgate/proxy/idp/idptest"
)

// FuzzTokenDates puts an arbitrary JSON value in a date claim of correctly
// signed logout and bearer tokens: whatever the value, a token is accepted
// only when every date is a JSON number (RFC 7519 section 2, NumericDate).
// go-oidc alone accepts "9999999999" through json.Number.
func FuzzTokenDates(f *testing.F) {
	for _, seed := range []string{`0`, `1`, `"9999999999"`, `"1700000000"`, `9999999999`, `1e10`, `-1`, `null`, `true`, `[]`, `{}`, `"abc"`, `1.5`, `" 1"`} {
		f.Add("exp", seed)
		f.Add("iat", seed)
		f.Add("nbf", seed)
	}
	s := idptest.New(f, idptest.Options{})
	p, err := idp.New(idp.Options{IssuerURL: s.URL, ClientID: s.ClientID, RedirectURL: testRedirectURL, Logger: (&logBuffer{}).logger(),
		DiscoveryRetryMin: time.Millisecond, DiscoveryRetryMax: time.Millisecond})
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	p.Run(ctx)
	cancel()
	if !p.Ready() {
		f.Fatal("provider not ready")
	}
	f.Fuzz(func(t *testing.T, claim, value string) {
		if claim != "exp" && claim != "iat" && claim != "nbf" {
			return
		}
		raw := json.RawMessage(value)
		if !json.Valid(raw) {
			return
		}
		now := time.Now()
		isNumber := func() bool {
			v := bytes.TrimSpace(raw)
			return len(v) > 0 && (v[0] == '-' || v[0] >= '0' && v[0] <= '9')
		}
		logout := logoutClaims(s, now)
		logout[claim] = raw
		tok, err := s.Sign(logout, "logout+jwt", false)
		if err != nil {
			return
		}
		if _, err := p.VerifyLogoutToken(context.Background(), tok); err == nil && !isNumber() {
			t.Errorf("logout token with %s = %s accepted", claim, value)
		}
		bearer := map[string]any{"iss": s.URL, "sub": "u", "aud": "api", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
		bearer[claim] = raw
		tok, err = s.Sign(bearer, "at+jwt", false)
		if err != nil {
			return
		}
		if _, err := p.VerifyBearer(context.Background(), tok, []string{"api"}); err == nil && !isNumber() {
			t.Errorf("bearer token with %s = %s accepted", claim, value)
		}
	})
}
