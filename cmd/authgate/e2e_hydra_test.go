package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/providertest/hydra"
)

// hydraOP is Ory Hydra v2 as the shared flows see it.
func hydraOP(t *testing.T, o hydra.Options) (*realOP, *hydra.Hydra) {
	t.Helper()
	h := hydra.Start(t, o) // shows the end of its output when the test fails
	op := &realOP{
		name:          "Ory Hydra",
		issuer:        h.Issuer,
		authorizePath: "/oauth2/auth",
		register: func(t *testing.T, c clientSpec) (string, string) {
			secret := ""
			if c.authMethod == "" || strings.HasPrefix(c.authMethod, "client_secret") {
				secret = "hydra-client-secret-0123456789"
			}
			hc := hydra.Client{
				Secret: secret, AuthMethod: c.authMethod,
				RedirectURIs:           []string{c.redirectURI()},
				PostLogoutRedirectURIs: []string{c.postLogoutURI()},
				BackchannelLogoutURI:   c.backchannelURI(),
				Pairwise:               c.pairwise,
				JWTAccessTokens:        c.jwtAccessTokens,
				JWKS:                   c.jwks,
			}
			if c.shortTokens {
				hc.AccessTokenLifespan = 5 * time.Second
			}
			id := h.Register(hc)
			return id, secret
		},
		introspect: func(t *testing.T, token string) bool { return h.Introspect(token).Active },
		rotateKey:  func(t *testing.T, alg string) string { return h.RotateKey() },
		// Hydra's own logout: its logout app accepts, Hydra sends the
		// back-channel logouts and lands on its default post-logout page.
		endSession: func(t *testing.T, b *browser) {
			resp := b.navigate(h.Issuer + "/oauth2/sessions/logout")
			if body := readBody(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, "logged out at hydra") {
				t.Fatalf("Hydra logout: %d at %s: %.300q", resp.StatusCode, resp.Request.URL, body)
			}
		},
	}
	return op, h
}

// TestHydra runs the shared flows against Ory Hydra: login, Bearer
// forwarding, userinfo, refresh with rotating refresh tokens (a replayed
// one would revoke the chain), sign-out with revocation and RP-initiated
// logout, back-channel logout in both store modes, and a key rotation.
func TestHydra(t *testing.T) {
	op, _ := hydraOP(t, hydra.Options{})
	testProviderFlows(t, op)
}

// TestHydraVariants: PKCE enforced by the provider, a public client,
// private_key_jwt, JWT access tokens and pairwise subjects.
func TestHydraVariants(t *testing.T) {
	op, _ := hydraOP(t, hydra.Options{EnforcePKCE: true, Pairwise: true})
	t.Run("PKCE enforced", func(t *testing.T) {
		g := startRPGate(t, op, clientSpec{}, nil)
		checkVariant(t, g)
		requireRefused(t, op, g.clientID, g.spec.redirectURI())
	})
	t.Run("public client with PKCE", func(t *testing.T) {
		g := startRPGate(t, op, clientSpec{authMethod: "none"}, nil)
		b, _ := checkVariant(t, g)
		g.signOutRevokes(t, b)
	})
	// A client registered with client_secret_post: Hydra advertises both
	// secret methods and refuses the other, so authgate must be told.
	t.Run("client_secret_post", func(t *testing.T) {
		g := startRPGate(t, op, clientSpec{authMethod: "client_secret_post"}, map[string]string{"AUTHGATE_CLIENT_AUTH_METHOD": "client_secret_post"})
		b, _ := checkVariant(t, g)
		g.signOutRevokes(t, b)
	})
	t.Run("private_key_jwt", func(t *testing.T) {
		k := newClientKey(t)
		g := startRPGate(t, op, clientSpec{authMethod: "private_key_jwt", jwks: k.jwks, shortTokens: true}, k.env())
		b, _ := checkVariant(t, g)
		g.signOutRevokes(t, b)
	})
	t.Run("JWT access tokens", func(t *testing.T) {
		g := startRPGate(t, op, clientSpec{jwtAccessTokens: true}, nil)
		_, access := checkVariant(t, g)
		c := jwtClaims(t, access)
		if c["iss"] != op.issuer || c["client_id"] != g.clientID {
			t.Errorf("JWT access token iss, client_id = %v, %v; want %q, %q", c["iss"], c["client_id"], op.issuer, g.clientID)
		}
	})
	// Roles only in the JWT access token (under Hydra's "ext"), as Keycloak
	// puts realm roles: authgate reads them there after verifying the token.
	t.Run("groups from the JWT access token", func(t *testing.T) {
		env := map[string]string{"AUTHGATE_GROUPS_CLAIM": "ext.roles", "AUTHGATE_ALLOWED_GROUPS": "ops"}
		g := startRPGate(t, op, clientSpec{jwtAccessTokens: true}, env)
		g.login(t)
		if got := g.upstream.last().Header.Get("X-Forwarded-Groups"); got != "ops" {
			t.Errorf("upstream Header(%q) = %q, want %q from the access token", "X-Forwarded-Groups", got, "ops")
		}
		// With opaque access tokens there is nowhere to read them from.
		denied := startRPGate(t, op, clientSpec{}, env)
		resp := newBrowser(t).navigate(denied.URL + "/landing")
		readBody(t, resp)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("login with roles only in an opaque access token = %d, want 403", resp.StatusCode)
		}
	})
	t.Run("opaque access tokens", func(t *testing.T) {
		g := startRPGate(t, op, clientSpec{}, nil)
		_, access := checkVariant(t, g)
		if strings.Count(access, ".") == 2 {
			t.Errorf("access token looks like a JWT, want Hydra's opaque one")
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
