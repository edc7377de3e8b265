// Package demoidp is a small, in-memory OpenID Provider for `authgate demo`
// and for tests. The protocol work (authorization code with PKCE, token,
// refresh, userinfo, revocation, end_session, discovery, JWKS, signing) is
// done by github.com/zitadel/oidc/v3/pkg/op; this package supplies the
// storage, the users and clients, and a login page.
//
// Back-channel logout (OpenID Connect Back-Channel Logout 1.0) is this
// package's own: when a login session ends, every client registered with a
// BackchannelLogoutURI that was issued tokens in it receives a signed
// logout token.
//
// It is a demo: passwords are plain text, everything lives in memory and is
// gone when the process ends, and a plain-http issuer is accepted on loopback
// only.
package demoidp

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Options configures a Provider. Only Issuer is required.
type Options struct {
	// Issuer is the issuer identifier, e.g. "http://127.0.0.1:9000/". It is
	// used exactly as given (as iss in tokens and in discovery), so a relying
	// party must be configured with the same string. Its path must be empty
	// or "/", because the Handler is mounted at the root. Plain http is
	// accepted only for a loopback host.
	Issuer string
	// Clients are the registered relying parties. Nil registers none, so
	// every authorization request is refused.
	Clients []Client
	// Users can sign in on the login page. Nil means DefaultUsers().
	Users []User
	// AccessTokenLifetime is how long an access token (a JWT) is valid.
	// Zero means one minute.
	AccessTokenLifetime time.Duration
	// IDTokenLifetime is how long an ID token is valid. Zero means one minute.
	IDTokenLifetime time.Duration
	// RefreshTokenLifetime is how long a sign-in lasts: the login session
	// (the IdP's cookie) and every refresh token descended from it expire
	// this long after the user entered the password. Rotation does not
	// extend it. Zero means 24 hours.
	RefreshTokenLifetime time.Duration
	// Logger receives this package's own logs (sign-ins, failed sign-ins,
	// sign-outs, back-channel logouts); never a password, token or cookie
	// value. Nil means slog.Default(). The op package logs protocol errors
	// to slog.Default() whatever this is set to.
	Logger *slog.Logger
	// OnBackchannelLogout, when set, is called after each back-channel
	// logout delivery with the client ID, the logout token sent and the
	// HTTP status the client answered (0 when the request failed), so that
	// a test can see what was sent or send it again. It runs on the
	// delivering goroutine, possibly several at once. Nil calls nothing.
	OnBackchannelLogout func(clientID, token string, status int)
}

// Client is a registered relying party. The zero value is not usable: ID
// and at least one redirect URI are required.
type Client struct {
	// ID is the client_id. Required.
	ID string
	// Secret is the client_secret (client_secret_basic or _post). Empty makes
	// a public client, which must use PKCE (RFC 7636) and may use any port on
	// a loopback redirect URI (RFC 8252, section 7.3).
	Secret string
	// RedirectURIs are the allowed redirect_uri values, matched exactly.
	// At least one is required.
	RedirectURIs []string
	// PostLogoutRedirectURIs are the allowed post_logout_redirect_uri values
	// at end_session, matched exactly. Nil allows none: a sign-out then ends
	// on the provider's own "signed out" page.
	PostLogoutRedirectURIs []string
	// BackchannelLogoutURI, when set, is POSTed a logout token (OpenID
	// Connect Back-Channel Logout 1.0, section 2.5) whenever a login
	// session in which this client was issued tokens ends: at
	// end_session, when the same browser signs in again, and through
	// Provider.EndSessions. It must be an absolute http or https URL
	// without a fragment (section 2.2). Empty sends nothing.
	BackchannelLogoutURI string
}

// User is a person who can sign in. The zero value is not usable: ID and
// Username are required.
type User struct {
	// ID is the stable subject identifier, the sub claim.
	ID string
	// Username is typed on the login page and sent as preferred_username.
	Username string
	// Password is compared as plain text: this is a demo.
	Password string
	// Email and EmailVerified are the email and email_verified claims.
	Email         string
	EmailVerified bool
	// Name is the name claim.
	Name string
	// Groups is the groups claim, sent with the profile or groups scope.
	Groups []string
}

// DefaultUsers returns the demo users: alice (groups admins and staff),
// bob (staff) and carol (no groups, email not verified). Each password is
// the username followed by "-pw"; the login page shows them.
func DefaultUsers() []User {
	return []User{
		{ID: "user-alice", Username: "alice", Password: "alice-pw", Email: "alice@example.com", EmailVerified: true, Name: "Alice Adams", Groups: []string{"admins", "staff"}},
		{ID: "user-bob", Username: "bob", Password: "bob-pw", Email: "bob@example.com", EmailVerified: true, Name: "Bob Brown", Groups: []string{"staff"}},
		{ID: "user-carol", Username: "carol", Password: "carol-pw", Email: "carol@example.com", EmailVerified: false, Name: "Carol Clark"},
	}
}

// Provider is a running OpenID Provider. Make one with New; the zero value
// is not usable.
type Provider struct {
	op      *op.Provider
	store   *storage
	log     *slog.Logger
	issuer  string
	secure  bool // cookies get the Secure attribute on an https issuer
	handler http.Handler

	// Back-channel logout: the signer of logout tokens, the client that
	// delivers them and the test hook.
	logoutSigner jose.Signer
	backchannel  *http.Client
	onLogout     func(clientID, token string, status int)

	mu            sync.Mutex
	tokenRequests map[string]int
}

// New validates o, generates a fresh RS256 signing key (2048-bit) and a
// token encryption key, and returns a Provider ready to serve.
func New(o Options) (*Provider, error) {
	u, err := checkIssuer(o.Issuer)
	if err != nil {
		return nil, err
	}
	users := o.Users
	if users == nil {
		users = DefaultUsers()
	}
	lifetimes := lifetimes{
		access:  orDefault(o.AccessTokenLifetime, time.Minute),
		id:      orDefault(o.IDTokenLifetime, time.Minute),
		refresh: orDefault(o.RefreshTokenLifetime, 24*time.Hour),
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	store, err := newStorage(o.Clients, users, lifetimes, log)
	if err != nil {
		return nil, err
	}
	p := &Provider{
		store:         store,
		log:           log,
		issuer:        o.Issuer,
		secure:        u.Scheme == "https",
		tokenRequests: make(map[string]int),
		backchannel:   newBackchannelClient(),
		onLogout:      o.OnBackchannelLogout,
	}
	p.logoutSigner, err = newLogoutSigner(store.key, store.keyID)
	if err != nil {
		return nil, err
	}
	store.onEnd = p.backchannelLogout

	config := &op.Config{
		DefaultLogoutRedirectURI: pathLoggedOut,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedScopes:          []string{"openid", "profile", "email", "offline_access", scopeGroups},
		SupportedClaims:          slices.Concat(op.DefaultSupportedClaims, []string{claimGroups, claimSID}),
		// Logout tokens carry sid (Back-Channel Logout 1.0, section 2.1).
		BackChannelLogoutSupported:        true,
		BackChannelLogoutSessionSupported: true,
	}
	// The key that seals opaque tokens; our access tokens are JWTs, but the
	// op package still needs one.
	if _, err := rand.Read(config.CryptoKey[:]); err != nil {
		return nil, fmt.Errorf("generate crypto key: %w", err)
	}
	p.op, err = op.NewProvider(config, store, op.StaticIssuer(o.Issuer), op.WithAllowInsecure())
	if err != nil {
		return nil, fmt.Errorf("create provider: %w", err)
	}

	withIssuer := op.NewIssuerInterceptor(p.op.IssuerFromRequest).Handler
	mux := http.NewServeMux()
	mux.Handle("GET "+pathLogin, withIssuer(http.HandlerFunc(p.serveLogin)))
	mux.Handle("POST "+pathLogin, withIssuer(http.HandlerFunc(p.serveLoginSubmit)))
	mux.HandleFunc("GET "+pathLoggedOut, p.serveLoggedOut)
	mux.Handle(p.op.TokenEndpoint().Relative(), p.countTokenRequests(p.op))
	mux.Handle(p.op.EndSessionEndpoint().Relative(), p.endSession(p.op))
	mux.Handle("/", p.op)
	p.handler = mux
	return p, nil
}

// Handler serves every endpoint of the provider. Mount it at "/" of the
// server whose URL is the issuer.
func (p *Provider) Handler() http.Handler { return p.handler }

// Issuer returns the issuer identifier, exactly as given in Options.
func (p *Provider) Issuer() string { return p.issuer }

// TokenRequests returns how many requests reached the token endpoint with
// the given grant_type ("authorization_code", "refresh_token"), whether or
// not they succeeded. Safe for concurrent use.
func (p *Provider) TokenRequests(grantType string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tokenRequests[grantType]
}

func (p *Provider) countTokenRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			// The op handler parses the form again; ParseForm keeps the
			// result, so reading it here costs nothing later.
			if err := r.ParseForm(); err == nil {
				p.mu.Lock()
				p.tokenRequests[r.PostForm.Get("grant_type")]++
				p.mu.Unlock()
			}
		}
		next.ServeHTTP(w, r)
	})
}

func checkIssuer(issuer string) (*url.URL, error) {
	if issuer == "" {
		return nil, errors.New("demoidp: issuer is required")
	}
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, fmt.Errorf("parse issuer: %w", err)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("demoidp: issuer %q has a path; the handler serves at the root", issuer)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("demoidp: issuer %q is plain http on a host that is not loopback", issuer)
		}
	default:
		return nil, fmt.Errorf("demoidp: issuer %q is not http or https", issuer)
	}
	return u, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
