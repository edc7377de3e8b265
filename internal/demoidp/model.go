package demoidp

import (
	"crypto/rsa"
	"log/slog"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Log attribute keys.
const (
	attrClientID = "client_id"
	attrUser     = "user"
	attrSessions = "sessions"
	attrStatus   = "status"
	attrError    = "error"
)

// authRequest implements op.AuthRequest: one authorization request, from
// /authorize through the login page to the code exchange.
type authRequest struct {
	id           string
	created      time.Time
	clientID     string
	redirectURI  string
	state        string
	nonce        string
	loginHint    string
	scopes       []string
	responseType oidc.ResponseType
	responseMode oidc.ResponseMode
	challenge    *oidc.CodeChallenge
	prompt       []string
	maxAge       *uint

	// Set when the user has signed in.
	done      bool
	exchanged bool // the code has been exchanged for tokens
	userID    string
	sid       string
	authTime  time.Time
}

func (a *authRequest) GetID() string         { return a.id }
func (a *authRequest) GetACR() string        { return "" }
func (a *authRequest) GetAudience() []string { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time {
	return a.authTime
}
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.userID }
func (a *authRequest) Done() bool                            { return a.done }

// GetAMR reports a password sign-in (RFC 8176, section 2).
func (a *authRequest) GetAMR() []string {
	if a.done {
		return []string{"pwd"}
	}
	return nil
}

// LogValue keeps state, nonce and the code challenge out of the op
// package's logs.
func (a *authRequest) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", a.id), slog.String(attrClientID, a.clientID), slog.Any("scopes", a.scopes))
}

// promptNone reports prompt=none: the user must not be shown any page
// (OpenID Connect Core 1.0, section 3.1.2.1).
func (a *authRequest) promptNone() bool {
	return len(a.prompt) == 1 && a.prompt[0] == oidc.PromptNone
}

// needsLogin reports whether a login session that started at authTime is
// too old for this request: max_age, which the op package sets to 0 for
// prompt=login (OpenID Connect Core 1.0, section 3.1.2.1).
func (a *authRequest) needsLogin(authTime, now time.Time) bool {
	if a.maxAge == nil {
		return false
	}
	maxAge := time.Duration(*a.maxAge) * time.Second
	return maxAge == 0 || now.Sub(authTime) > maxAge
}

// refreshRequest implements op.RefreshTokenRequest: a copy of a stored
// refresh token's grant, which the op package may narrow with
// SetCurrentScopes without touching the stored token.
type refreshRequest struct {
	clientID string
	subject  string
	sid      string
	scopes   []string
	audience []string
	amr      []string
	authTime time.Time
}

func (r *refreshRequest) GetAMR() []string            { return r.amr }
func (r *refreshRequest) GetAudience() []string       { return r.audience }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.authTime }
func (r *refreshRequest) GetClientID() string         { return r.clientID }
func (r *refreshRequest) GetScopes() []string         { return r.scopes }
func (r *refreshRequest) GetSubject() string          { return r.subject }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.scopes = s }

// client implements op.Client for a registered Client: a confidential web
// client when it has a secret, else a public native one (PKCE, loopback
// redirects on any port, RFC 8252). Both get JWT access tokens and the code
// and refresh_token grants only.
type client struct {
	Client
	idTokenLifetime time.Duration
}

func (c *client) GetID() string                    { return c.ID }
func (c *client) RedirectURIs() []string           { return c.Client.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string { return c.Client.PostLogoutRedirectURIs }
func (c *client) ApplicationType() op.ApplicationType {
	if c.Secret == "" {
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}
func (c *client) AuthMethod() oidc.AuthMethod {
	if c.Secret == "" {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}
func (c *client) LoginURL(id string) string           { return loginURL(id) }
func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }
func (c *client) IDTokenLifetime() time.Duration      { return c.idTokenLifetime }
func (c *client) DevMode() bool                       { return false }
func (c *client) IsScopeAllowed(scope string) bool    { return scope == scopeGroups }
func (c *client) ClockSkew() time.Duration            { return 0 }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IDTokenUserinfoClaimsAssertion puts email and profile claims in the ID
// token even though an access token is issued too, so a relying party needs
// no userinfo call.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }

// signingKey implements op.SigningKey.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k signingKey) Key() any                                    { return k.key }
func (k signingKey) ID() string                                  { return k.id }

// publicKey implements op.Key for the JWKS endpoint.
type publicKey struct {
	id  string
	key *rsa.PublicKey
}

func (k publicKey) ID() string                         { return k.id }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return k.key }
