package main

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/providertest/nodeop"
)

// nodeOP is node-oidc-provider (oidc-provider 9.13.3 on Node.js) as the
// shared flows see it. Its defaults grant offline_access only when the
// authorization request carries prompt=consent, so authgate runs with
// AUTHGATE_PROMPT=consent in front of it, as docs/providers.md says.
func nodeOP(t *testing.T, o nodeop.Options) (*realOP, *nodeop.Provider) {
	t.Helper()
	p := nodeop.Start(t, o)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node-oidc-provider output:\n%s", p.Logs())
		}
	})
	seq := 0
	op := &realOP{
		name:               "node-oidc-provider",
		issuer:             p.Issuer,
		authorizePath:      "/auth",
		noJWTIntrospection: true,
		env:                map[string]string{"AUTHGATE_PROMPT": "consent"},
		register: func(t *testing.T, c clientSpec) (string, string) {
			seq++
			id := "authgate-" + strings.ToLower(t.Name())
			id = regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(id, "-") + "-" + string(rune('a'+seq%26))
			secret := ""
			if c.authMethod == "" || strings.HasPrefix(c.authMethod, "client_secret") {
				secret = "secret-of-" + id
			}
			p.Register(nodeop.Client{
				ID: id, Secret: secret, AuthMethod: c.authMethod,
				RedirectURIs:           []string{c.redirectURI()},
				PostLogoutRedirectURIs: []string{c.postLogoutURI()},
				BackchannelLogoutURI:   c.backchannelURI(),
				IDTokenAlg:             c.alg,
				Pairwise:               c.pairwise,
				RequirePKCE:            c.requirePKCE,
				JWTAccessTokens:        c.jwtAccessTokens,
				JWKS:                   c.jwks,
			})
			return id, secret
		},
		introspect: func(t *testing.T, token string) bool { return p.Introspect(token).Active },
		rotateKey:  func(t *testing.T, alg string) string { return p.RotateKey(alg) },
		endSession: func(t *testing.T, b *browser) {
			confirmNodeLogout(t, b, b.navigate(p.Issuer+"/session/end"))
		},
		confirmLogout: confirmNodeLogout,
	}
	return op, p
}

var (
	nodeLogoutActionRe = regexp.MustCompile(`<form[^>]*id="op.logoutForm"[^>]*action="([^"]+)"|<form[^>]*action="([^"]+)"[^>]*id="op.logoutForm"`)
	nodeXSRFRe         = regexp.MustCompile(`name="xsrf" value="([^"]+)"`)
)

// confirmNodeLogout answers node-oidc-provider's "Do you want to sign-out"
// page as the user's "Yes" does: a POST of its form with logout=yes.
func confirmNodeLogout(t *testing.T, b *browser, resp *http.Response) *http.Response {
	t.Helper()
	page := readBody(t, resp)
	action, xsrf := nodeLogoutActionRe.FindStringSubmatch(page), nodeXSRFRe.FindStringSubmatch(page)
	if action == nil || xsrf == nil {
		t.Fatalf("node-oidc-provider logout page expected at %s, got %d: %.400q", resp.Request.URL, resp.StatusCode, page)
	}
	target := action[1] + action[2]
	u := resp.Request.URL.ResolveReference(&url.URL{Path: target})
	if strings.Contains(target, "://") {
		u, _ = url.Parse(target)
	}
	resp, err := b.PostForm(u.String(), url.Values{"xsrf": {xsrf[1]}, "logout": {"yes"}})
	if err != nil {
		t.Fatalf("POST the logout confirmation: %v", err)
	}
	return resp
}

// TestNodeOIDCProvider runs the shared flows against node-oidc-provider:
// login, Bearer forwarding, userinfo, refresh with rotating refresh tokens,
// sign-out with revocation and RP-initiated logout, back-channel logout in
// both store modes, and a signing-key rotation.
func TestNodeOIDCProvider(t *testing.T) {
	op, _ := nodeOP(t, nodeop.Options{})
	testProviderFlows(t, op)
}

// TestNodeOIDCProviderOfflineAccessNeedsConsent: without
// AUTHGATE_PROMPT=consent node-oidc-provider drops offline_access, and
// authgate says so in one warning that names the fix.
func TestNodeOIDCProviderOfflineAccessNeedsConsent(t *testing.T) {
	op, _ := nodeOP(t, nodeop.Options{})
	op.env = nil
	g := startRPGate(t, op, clientSpec{}, nil)
	b := g.login(t)
	if s := g.session(t, b); s.RefreshToken != "" {
		t.Fatalf("node-oidc-provider issued a refresh token without prompt=consent; the default this test relies on changed")
	}
	// A second login must not repeat it.
	g.login(t)
	warnings := 0
	for _, line := range strings.Split(g.logs.String(), "\n") {
		if strings.Contains(line, `"level":"WARN"`) && strings.Contains(line, "AUTHGATE_PROMPT=consent") {
			warnings++
		}
	}
	if warnings != 1 {
		t.Errorf("warnings naming AUTHGATE_PROMPT=consent = %d, want 1", warnings)
	}
}

// TestNodeOIDCProviderVariants: ID token algorithms, client authentication
// methods, PKCE required, JWT access tokens and pairwise subjects.
func TestNodeOIDCProviderVariants(t *testing.T) {
	op, p := nodeOP(t, nodeop.Options{})
	for _, alg := range []string{"ES256", "PS256", "EdDSA"} {
		t.Run("ID token "+alg, func(t *testing.T) {
			g := startRPGate(t, op, clientSpec{alg: alg}, nil)
			b, _ := checkVariant(t, g)
			if got, _ := jwtHeader(t, g.session(t, b).IDToken); got != alg {
				t.Errorf("ID token alg = %q, want %q", got, alg)
			}
			// A rotation to a new key of the same algorithm.
			kid := op.rotateKey(t, alg)
			s := g.forceRefresh(t, b, 1)
			if _, got := jwtHeader(t, s.IDToken); got != kid {
				t.Errorf("ID token after rotation signed by %q, want %q", got, kid)
			}
		})
	}
	t.Run("public client with PKCE", func(t *testing.T) {
		g := startRPGate(t, op, clientSpec{authMethod: "none"}, nil)
		checkVariant(t, g)
		requireRefused(t, op, g.clientID, g.spec.redirectURI())
	})
	t.Run("PKCE required for a confidential client", func(t *testing.T) {
		g := startRPGate(t, op, clientSpec{requirePKCE: true}, nil)
		checkVariant(t, g)
		requireRefused(t, op, g.clientID, g.spec.redirectURI())
	})
	t.Run("private_key_jwt", func(t *testing.T) {
		k := newClientKey(t)
		g := startRPGate(t, op, clientSpec{authMethod: "private_key_jwt", jwks: k.jwks}, k.env())
		b, _ := checkVariant(t, g)
		// Sign-out revokes with a client assertion too.
		g.signOutRevokes(t, b)
	})
	t.Run("JWT access tokens", func(t *testing.T) {
		g := startRPGate(t, op, clientSpec{jwtAccessTokens: true, alg: "ES256"}, nil)
		_, access := checkVariant(t, g)
		alg, _ := jwtHeader(t, access)
		if alg != "ES256" {
			t.Errorf("access token alg = %q, want ES256", alg)
		}
		claims := jwtClaims(t, access)
		if claims["aud"] != p.Resource || claims["sub"] != "alice" {
			t.Errorf("access token aud, sub = %v, %v; want %q, alice", claims["aud"], claims["sub"], p.Resource)
		}
	})
	t.Run("opaque access tokens", func(t *testing.T) {
		g := startRPGate(t, op, clientSpec{}, nil)
		_, access := checkVariant(t, g)
		if strings.Count(access, ".") == 2 {
			t.Errorf("access token looks like a JWT, want an opaque one")
		}
	})
	t.Run("pairwise subjects", func(t *testing.T) {
		g := startRPGate(t, op, clientSpec{pairwise: true}, nil)
		checkVariant(t, g)
		public := startRPGate(t, op, clientSpec{}, nil)
		public.login(t)
		if sub, id := g.forwardedUser(), public.forwardedUser(); sub == "" || id != "alice" || sub == id {
			t.Errorf("X-Forwarded-User = %q for the pairwise client, %q for a public one; want a pseudonym and alice", sub, id)
		}
	})
}

// TestNodeOIDCProviderClientSecretPost: a provider that offers only
// client_secret_post (as some do) among the secret methods.
func TestNodeOIDCProviderClientSecretPost(t *testing.T) {
	op, _ := nodeOP(t, nodeop.Options{ClientAuthMethods: []string{"client_secret_post", "private_key_jwt", "none"}, AccessTokenTTL: 5 * time.Minute})
	g := startRPGate(t, op, clientSpec{authMethod: "client_secret_post"}, nil)
	b, _ := checkVariant(t, g)
	// Sign-out revokes the refresh token with the same method.
	g.signOutRevokes(t, b)
}
