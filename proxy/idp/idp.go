// Package idp talks to the OpenID Provider: discovery, the authorization URL
// (state, nonce, PKCE), code exchange, ID token verification, userinfo,
// refresh, revocation and the end-session URL. It is the only package that
// imports go-oidc and x/oauth2.
package idp

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/trace"
)

var (
	// ErrNotReady reports that discovery has not succeeded yet.
	ErrNotReady = errors.New("idp: provider not discovered yet")
	// ErrInvalidGrant reports that the provider rejected a code or refresh
	// token (RFC 6749 section 5.2 "invalid_grant"): the session is over.
	ErrInvalidGrant = errors.New("idp: invalid grant")
	// ErrInvalidToken reports an ID token (or userinfo answer) that failed
	// verification: bad signature, issuer, audience, nonce, expiry, azp,
	// at_hash or subject mismatch. The login must not proceed.
	ErrInvalidToken = errors.New("idp: invalid token")
	// ErrIssuerMismatch reports an authorization response whose "iss"
	// parameter is missing where the provider promised it, or names another
	// issuer (RFC 9207): a possible mix-up attack. The code must not be
	// redeemed.
	ErrIssuerMismatch = errors.New("idp: authorization response issuer mismatch")
	// ErrUnavailable reports a transient fault talking to the provider:
	// network error, timeout or a 5xx answer. Sessions must be kept.
	ErrUnavailable = errors.New("idp: provider unavailable")
	// ErrGroupsOverage reports a login whose groups the provider left out of
	// every token because there were too many (Microsoft Entra ID's "group
	// overage": _claim_names names the groups claim). Returned only when
	// Options.NeedGroups is set: access depends on groups that cannot be
	// known.
	ErrGroupsOverage = errors.New("idp: groups overage: the provider left the groups out of the token")

	// errMisconfigured marks a discovery result that cannot work with the
	// options (no retry will fix it): it is logged as an error.
	errMisconfigured = errors.New("configuration does not fit the provider")
)

// Options configures a Provider.
type Options struct {
	// IssuerURL is the issuer; endpoints come from its discovery document.
	IssuerURL string
	// ClientID and ClientSecret identify authgate. An empty secret makes a
	// public client that relies on PKCE alone.
	ClientID     string
	ClientSecret string
	// ClientSecretFunc, when set, is asked for the client secret on every
	// call that authenticates (code exchange, refresh, revocation), so a
	// rotated secret applies without a restart; ClientSecret is then only
	// its value at start, which decides whether authgate is a public
	// client. Nil means ClientSecret always.
	ClientSecretFunc func() string
	// ClientAuthMethod forces the token endpoint authentication method of a
	// client with a secret: "client_secret_basic" or "client_secret_post",
	// for a client registered with one method at a provider that advertises
	// both (Ory Hydra refuses the other). Empty picks from discovery:
	// client_secret_basic when advertised (the default of OpenID Connect
	// Discovery 1.0 section 3), else client_secret_post.
	ClientAuthMethod string
	// ClientKey, when set, authenticates authgate with private_key_jwt
	// (RFC 7523) instead of a secret; ClientSecret must then be empty.
	ClientKey *ClientKey
	// ClientKeyFunc, when set with ClientKey, is asked for the key before
	// each client assertion, so a rotated key file applies without a
	// restart; nil means ClientKey always.
	ClientKeyFunc func() *ClientKey
	// RedirectURL is the absolute callback URL registered at the provider.
	RedirectURL string
	// Scopes requested at login; nil means openid, email, profile.
	Scopes []string
	// EndSessionURL, when set, replaces the discovery document's
	// end_session_endpoint, for providers whose logout endpoint is not in
	// discovery (Amazon Cognito's /logout). Query parameters it carries are
	// kept; the RP-Initiated Logout parameters are added unless it already
	// has them. Empty uses discovery.
	EndSessionURL string
	// Prompt is the OpenID Connect "prompt" parameter (Core 3.1.2.1) sent
	// with every login, checked by CheckPrompt; empty sends none.
	// node-oidc-provider grants offline_access only with "consent".
	Prompt string
	// AuthParams are extra authorization request parameters, such as
	// access_type=offline (Google), audience (Auth0) or resource (RFC 8707),
	// checked by CheckAuthParams; nil sends none.
	AuthParams url.Values
	// GroupsClaim names the claim holding the user's groups; empty means
	// "groups". It may be a path into nested objects ("realm_access.roles");
	// a top-level claim of exactly that name (which may contain dots, as
	// Auth0's namespaced claims do) wins. When neither the ID token nor
	// userinfo carries it, it is read from the access token when that is a
	// JWT signed by the issuer.
	GroupsClaim string
	// UserClaim names the claim Identity.User comes from; empty means "sub".
	UserClaim string
	// EmailClaim names the claim Identity.Email comes from; empty means
	// "email". With another claim (Entra ID's "preferred_username" or
	// "upn"), email_verified is not applied to it.
	EmailClaim string
	// NeedGroups asks userinfo for the groups when the ID token lacks the
	// GroupsClaim (set it when access depends on groups); false asks
	// userinfo only for a missing email.
	NeedGroups bool
	// KeepClaims puts every claim of the ID token, completed by userinfo
	// (then always asked), into Identity.Claims, and a bearer token's
	// claims into its Identity.Claims; for route rules that read claims.
	// False leaves Claims empty.
	KeepClaims bool
	// HTTPClient makes every call to the provider; nil means a client with a
	// 10 s timeout on http.DefaultTransport.
	HTTPClient *http.Client
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// DiscoveryRetryMin and DiscoveryRetryMax bound the exponential backoff
	// between failed discovery attempts; zero means 1 s and 30 s.
	DiscoveryRetryMin time.Duration
	DiscoveryRetryMax time.Duration
	// TracerProvider, when set, wraps every call to the provider in a
	// client span (idp.discovery, idp.token, idp.userinfo, idp.jwks,
	// idp.revocation) and sends the W3C trace context to the provider; nil
	// traces nothing.
	TracerProvider trace.TracerProvider
}

// Identity is who the user is, from the verified ID token and, when the ID
// token lacks the email, from userinfo.
type Identity struct {
	// Subject is the "sub" claim: the provider's identifier for the user.
	Subject string
	// User is the UserClaim's value (Subject by default), for
	// X-Forwarded-User.
	User              string
	Email             string
	EmailVerified     *bool
	PreferredUsername string
	Name              string
	Groups            []string
	// SessionID is the "sid" claim, when the provider sends one.
	SessionID string
	// IssuedAt is the ID token's "iat".
	IssuedAt time.Time
	// Claims, with Options.KeepClaims, are the user's claims as a JSON
	// object: the ID token's, completed by userinfo's for names the ID
	// token lacks (or a bearer token's own), without the ones that only
	// validate a token (exp, iat, nbf, nonce, jti, at_hash, c_hash,
	// s_hash). Empty otherwise.
	Claims string
}

// Tokens are what the token endpoint returned.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	IDToken      string
	// Expiry of the access token; zero when the provider did not say.
	Expiry time.Time
}

// LogValue redacts every token: it logs only which tokens are present.
// It has a value receiver so that logging a Tokens value, not only a
// pointer, is redacted too.
func (t Tokens) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Bool("access_token", t.AccessToken != ""),
		slog.Bool("refresh_token", t.RefreshToken != ""),
		slog.Bool("id_token", t.IDToken != ""),
		slog.Time("expiry", t.Expiry),
	)
}

// String redacts every token, so that fmt's %v and %+v never print one.
func (t Tokens) String() string {
	return fmt.Sprintf("{access_token:%t refresh_token:%t id_token:%t expiry:%s}",
		t.AccessToken != "", t.RefreshToken != "", t.IDToken != "", t.Expiry.Format(time.RFC3339))
}

// GoString redacts every token, so that fmt's %#v never prints one.
func (t Tokens) GoString() string { return "idp.Tokens" + t.String() }

// AuthRequest is one login in flight: what the callback needs to finish it.
type AuthRequest struct {
	State        string
	Nonce        string
	CodeVerifier string
	// URL is the provider's authorization endpoint with every parameter.
	URL string
}
