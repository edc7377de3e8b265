package main

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/proxy/idp/idptest"
)

// startFakeGate starts authgate in front of the fault-injecting provider
// idptest (for behaviour a real provider will not produce here: faults and
// emulated quirks of providers that cannot run in CI) and an upstream. The
// provider approves every login without a form, so a browser navigation
// through it ends signed in.
func startFakeGate(t *testing.T, opts idptest.Options, gopts ...gateOption) (*gate, *idptest.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	if opts.ClientSecret == "" {
		opts.ClientSecret = "fake-idp-secret"
	}
	// The provider shares authgate's clock, so that advancing it ages the
	// provider's tokens too.
	var clock atomic.Pointer[fakeClock]
	if opts.Now == nil {
		opts.Now = func() time.Time {
			if c := clock.Load(); c != nil {
				return c.Now()
			}
			return time.Now()
		}
	}
	s := idptest.New(t, opts)
	up := startUpstream(t)
	env := map[string]string{
		"AUTHGATE_UPSTREAM":        up.srv.URL,
		"AUTHGATE_OIDC_ISSUER_URL": s.URL,
		"AUTHGATE_CLIENT_ID":       s.ClientID,
		"AUTHGATE_CLIENT_SECRET":   s.ClientSecret,
		"AUTHGATE_COOKIE_SECRET":   testCookieSecret,
		"AUTHGATE_REDIRECT_URL":    base + "/oauth2/callback",
		"AUTHGATE_COOKIE_SECURE":   "false",
		"AUTHGATE_INTERNAL_ADDR":   "127.0.0.1:0",
		"AUTHGATE_SCOPES":          "openid,email,profile,offline_access",
		"AUTHGATE_LOG_LEVEL":       "debug",
	}
	for _, o := range gopts {
		o(env)
	}
	g := startGateWith(t, ln, env, nil, up)
	clock.Store(g.clock)
	return g, s
}

func withoutEnv(k string) gateOption { return func(env map[string]string) { delete(env, k) } }
