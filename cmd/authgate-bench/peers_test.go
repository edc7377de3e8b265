package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func testPeerSpec() peerSpec {
	return peerSpec{
		addr: "127.0.0.1:18080", issuer: "http://127.0.0.1:18081/", clientID: "bench-client", clientSecret: "client-secret-value",
		upstream: "http://127.0.0.1:18082", cookieName: "authgate", cookieSecret: "cookie-secret-value", dir: "/tmp/peer dir",
	}
}

// TestOAuth2ProxyArgs checks the flags that make oauth2-proxy comparable
// with authgate: the same IdP, client and upstream, a cookie session, the
// access token forwarded, PKCE, and no refresh unless the refresh case asks.
func TestOAuth2ProxyArgs(t *testing.T) {
	s := testPeerSpec()
	args := oauth2ProxyArgs(s)
	for _, want := range []string{
		"--http-address=127.0.0.1:18080",
		"--provider=oidc",
		"--oidc-issuer-url=http://127.0.0.1:18081/",
		"--client-id=bench-client",
		"--client-secret=client-secret-value",
		"--redirect-url=http://127.0.0.1:18080/oauth2/callback",
		"--upstream=http://127.0.0.1:18082/",
		"--cookie-secret=cookie-secret-value",
		"--cookie-name=authgate",
		"--cookie-secure=false",
		"--session-store-type=cookie",
		"--pass-access-token=true",
		"--code-challenge-method=S256",
		"--skip-provider-button=true",
	} {
		if !slices.Contains(args, want) {
			t.Errorf("oauth2ProxyArgs lacks %q: %q", want, args)
		}
	}
	for _, a := range args {
		if strings.HasPrefix(a, "--cookie-refresh") {
			t.Errorf("oauth2ProxyArgs without refreshAfter has %q", a)
		}
		if !strings.HasPrefix(a, "--") || !strings.Contains(a, "=") {
			t.Errorf("argument %q is not --name=value", a)
		}
	}
	s.refreshAfter = time.Second
	if args := oauth2ProxyArgs(s); !slices.Contains(args, "--cookie-refresh=1s") {
		t.Errorf("oauth2ProxyArgs with refreshAfter 1s lacks --cookie-refresh=1s: %q", args)
	}
	if got := redactArgs(oauth2ProxyArgs(s)); strings.Contains(got, "secret-value") {
		t.Errorf("redactArgs left a secret in %q", got)
	}
}

// TestApacheConfig checks the directives the issue names and the ones the
// benchmark relies on.
func TestApacheConfig(t *testing.T) {
	s := testPeerSpec()
	conf := apacheConfig(s, "www-data")
	for _, want := range []string{
		"Listen 127.0.0.1:18080\n",
		`ServerRoot "/tmp/peer dir"` + "\n",
		"LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so\n",
		"LoadModule auth_openidc_module /usr/lib/apache2/modules/mod_auth_openidc.so\n",
		"User www-data\n",
		"OIDCProviderMetadataURL http://127.0.0.1:18081/.well-known/openid-configuration\n",
		"OIDCClientID bench-client\n",
		"OIDCClientSecret client-secret-value\n",
		"OIDCRedirectURI http://127.0.0.1:18080/redirect_uri\n",
		"OIDCSessionType client-cookie\n",
		"OIDCCookie authgate\n",
		"OIDCPassClaimsAs environment\n",
		"OIDCPKCEMethod S256\n",
		`RequestHeader set Authorization "Bearer %{OIDC_access_token}e" env=OIDC_access_token` + "\n",
		"AuthType openid-connect\n",
		"Require valid-user\n",
		"ProxyPass / http://127.0.0.1:18082/\n",
		"ProxyPass /redirect_uri !\n",
		"MaxKeepAliveRequests 0\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("apacheConfig lacks %q:\n%s", want, conf)
		}
	}
	// The redirect URI must be excluded from the proxy before / is proxied.
	if strings.Index(conf, "ProxyPass /redirect_uri !") > strings.Index(conf, "ProxyPass / ") {
		t.Error("ProxyPass /redirect_uri ! comes after ProxyPass /")
	}
	if strings.Contains(conf, "OIDCRefreshAccessTokenBeforeExpiry") {
		t.Error("apacheConfig without refreshAfter refreshes early")
	}
	if conf := apacheConfig(s, ""); strings.Contains(conf, "User ") {
		t.Error("apacheConfig with no user sets User")
	}
	s.refreshAfter = time.Second
	if conf := apacheConfig(s, ""); !strings.Contains(conf, "OIDCRefreshAccessTokenBeforeExpiry 1\n") {
		t.Errorf("apacheConfig with refreshAfter 1s lacks OIDCRefreshAccessTokenBeforeExpiry 1:\n%s", conf)
	}
}

func TestLoginStart(t *testing.T) {
	for _, tt := range []struct{ target, want string }{
		{targetAuthgate, "http://h/oauth2/start?rd=/bench-landed"},
		{targetOAuth2, "http://h/oauth2/start?rd=/bench-landed"},
		{targetApache, "http://h/bench-landed"},
	} {
		if got := loginStart(tt.target, "http://h"); got != tt.want {
			t.Errorf("loginStart(%s) = %q, want %q", tt.target, got, tt.want)
		}
	}
}

func TestFindPeersMissing(t *testing.T) {
	if _, why := findOAuth2Proxy("/nonexistent/oauth2-proxy"); !strings.Contains(why, "/nonexistent/oauth2-proxy") {
		t.Errorf("findOAuth2Proxy(missing) says %q, want the path named", why)
	}
	if _, why := findApache("/nonexistent/apache2"); !strings.Contains(why, "/nonexistent/apache2") {
		t.Errorf("findApache(missing) says %q, want the path named", why)
	}
}

func TestParseStatPPID(t *testing.T) {
	stat := []byte("4242 (apache2 (x)) S 4200 4242 4242 0 -1 4194560 1 0 0 0 7 3 0 0 20 0 1 0 1 1 1")
	if got, err := parseStatPPID(stat); err != nil || got != 4200 {
		t.Errorf("parseStatPPID = %d, %v; want 4200", got, err)
	}
}
