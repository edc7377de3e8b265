package idp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

const (
	defaultHTTPTimeout       = 10 * time.Second
	defaultDiscoveryRetryMin = 1 * time.Second
	defaultDiscoveryRetryMax = 30 * time.Second
	// discoveryAttemptTimeout bounds one discovery attempt even when the
	// caller's HTTPClient has no timeout of its own.
	discoveryAttemptTimeout = 30 * time.Second
)

// Provider is authgate's view of one OpenID Provider. Create it with New and
// start Run once; every other method answers ErrNotReady (or false) until
// discovery has succeeded. The zero Provider is not usable. A Provider is
// safe for concurrent use.
type Provider struct {
	clientID      string
	clientSecret  string
	secretFunc    func() string // nil: clientSecret
	authMethod    string        // forced client_secret_basic or _post; empty: from discovery
	clientKey     *ClientKey
	clientKeyFunc func() *ClientKey // nil: clientKey
	redirectURL   string
	issuer        string
	scopes        []string
	prompt        string
	endSession    string
	authParams    url.Values
	groupsClaim   string
	userClaim     string
	emailClaim    string
	needGroups    bool
	keepClaims    bool
	retryMin      time.Duration
	retryMax      time.Duration
	log           *slog.Logger
	now           func() time.Time

	// client talks to discovery, the token and revocation endpoints: their
	// error statuses are read by our code or by x/oauth2.
	client *http.Client
	// apiClient talks to the JWKS and userinfo endpoints through go-oidc,
	// which flattens status errors into text; its transport turns 5xx and
	// 429 answers into a *statusError so that outages stay recognisable.
	apiClient *http.Client

	state atomic.Pointer[discovered]

	// noRefreshWarned makes the "no refresh token" warning appear once per
	// process, not at every login.
	noRefreshWarned sync.Once
}

// discovered is everything learnt from the discovery document; it is built
// once and never modified, except for the bearer verifier, built on first
// use under bearerOnce.
type discovered struct {
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	// logoutVerifier is verifier without the exp and nbf checks, which
	// VerifyLogoutToken makes itself: a logout token may lack exp.
	logoutVerifier *oidc.IDTokenVerifier
	oauth          *oauth2.Config
	meta           metadata
	revokeStyle    oauth2.AuthStyle
	// tokenClient makes the token endpoint calls: the provider's client,
	// plus the client assertion when assertion is set.
	tokenClient *http.Client
	// assertion signs private_key_jwt client assertions; nil with a secret
	// or a public client.
	assertion *assertionSigner

	bearerOnce sync.Once
	bearer     *bearerVerifier
}

// metadata holds the discovery fields go-oidc does not expose
// (OpenID Connect Discovery 1.0 section 3; RFC 8414 section 2).
type metadata struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	EndSessionEndpoint                string   `json:"end_session_endpoint"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	BackchannelLogoutSupported        bool     `json:"backchannel_logout_supported"`
	BackchannelLogoutSessionSupported bool     `json:"backchannel_logout_session_supported"`
	TokenEndpointAuthMethods          []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethods     []string `json:"revocation_endpoint_auth_methods_supported"`
	IDTokenSigningAlgs                []string `json:"id_token_signing_alg_values_supported"`
	CodeChallengeMethods              []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthSigningAlgs      []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	// AuthorizationResponseIss is RFC 9207 section 3: the provider sends
	// "iss" with every authorization response.
	AuthorizationResponseIss bool `json:"authorization_response_iss_parameter_supported"`
}

// New checks opts and returns a Provider that is not ready until Run has
// discovered the issuer. It makes no network call.
func New(opts Options) (*Provider, error) {
	var errs []error
	if err := checkURL(opts.IssuerURL); err != nil {
		errs = append(errs, fmt.Errorf("issuer URL: %w", err))
	}
	if opts.ClientID == "" {
		errs = append(errs, errors.New("client ID is empty"))
	}
	if err := checkURL(opts.RedirectURL); err != nil {
		errs = append(errs, fmt.Errorf("redirect URL: %w", err))
	}
	if opts.ClientSecret != "" && opts.ClientKey != nil {
		errs = append(errs, errors.New("client secret and client key are both set: choose one way to authenticate"))
	}
	if opts.Scopes != nil && !slices.Contains(opts.Scopes, oidc.ScopeOpenID) {
		errs = append(errs, fmt.Errorf("scopes %q lack %q", opts.Scopes, oidc.ScopeOpenID))
	}
	if opts.EndSessionURL != "" {
		if err := checkURL(opts.EndSessionURL); err != nil {
			errs = append(errs, fmt.Errorf("end session URL: %w", err))
		}
	}
	switch opts.ClientAuthMethod {
	case "", "client_secret_basic", "client_secret_post":
	default:
		errs = append(errs, fmt.Errorf("client auth method %q is not client_secret_basic or client_secret_post", opts.ClientAuthMethod))
	}
	if err := CheckPrompt(opts.Prompt); err != nil {
		errs = append(errs, fmt.Errorf("prompt: %w", err))
	}
	if err := CheckAuthParams(opts.AuthParams); err != nil {
		errs = append(errs, fmt.Errorf("auth params: %w", err))
	}
	if opts.DiscoveryRetryMin < 0 || opts.DiscoveryRetryMax < 0 {
		errs = append(errs, errors.New("discovery retry bounds are negative"))
	}
	p := &Provider{
		clientID:      opts.ClientID,
		clientSecret:  opts.ClientSecret,
		secretFunc:    opts.ClientSecretFunc,
		authMethod:    opts.ClientAuthMethod,
		clientKey:     opts.ClientKey,
		clientKeyFunc: opts.ClientKeyFunc,
		redirectURL:   opts.RedirectURL,
		issuer:        opts.IssuerURL,
		scopes:        slices.Clone(opts.Scopes),
		prompt:        strings.Join(strings.Fields(opts.Prompt), " "),
		endSession:    opts.EndSessionURL,
		authParams:    cloneValues(opts.AuthParams),
		groupsClaim:   opts.GroupsClaim,
		userClaim:     opts.UserClaim,
		emailClaim:    opts.EmailClaim,
		needGroups:    opts.NeedGroups,
		keepClaims:    opts.KeepClaims,
		retryMin:      opts.DiscoveryRetryMin,
		retryMax:      opts.DiscoveryRetryMax,
		log:           opts.Logger,
		now:           opts.Now,
		client:        opts.HTTPClient,
	}
	if p.scopes == nil {
		p.scopes = []string{oidc.ScopeOpenID, "email", "profile"}
	}
	if p.groupsClaim == "" {
		p.groupsClaim = "groups"
	}
	if p.userClaim == "" {
		p.userClaim = "sub"
	}
	if p.emailClaim == "" {
		p.emailClaim = "email"
	}
	if p.retryMin == 0 {
		p.retryMin = defaultDiscoveryRetryMin
	}
	if p.retryMax == 0 {
		p.retryMax = max(defaultDiscoveryRetryMax, p.retryMin)
	}
	if p.retryMin > p.retryMax {
		errs = append(errs, fmt.Errorf("discovery retry min %s exceeds max %s", p.retryMin, p.retryMax))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("idp: invalid options: %w", err)
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.client == nil {
		p.client = &http.Client{Timeout: defaultHTTPTimeout, Transport: http.DefaultTransport}
	}
	if opts.TracerProvider != nil {
		// A copy: the caller's client is left as it was.
		traced := *p.client
		base := traced.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		traced.Transport = &tracingTransport{base: base, tracer: opts.TracerProvider.Tracer(tracerName), p: p}
		p.client = &traced
	}
	api := *p.client
	base := api.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	api.Transport = statusErrorTransport{base: base}
	p.apiClient = &api
	return p, nil
}

func checkURL(raw string) error {
	if raw == "" {
		return errors.New("empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	return nil
}

// Ready reports whether discovery has succeeded.
func (p *Provider) Ready() bool { return p.state.Load() != nil }

// ready returns the discovered state or ErrNotReady.
func (p *Provider) ready() (*discovered, error) {
	d := p.state.Load()
	if d == nil {
		return nil, ErrNotReady
	}
	return d, nil
}

// Run discovers the issuer, retrying with exponential backoff and jitter
// between DiscoveryRetryMin and DiscoveryRetryMax, and returns once discovery
// has succeeded or ctx is done. Call it once, typically in its own goroutine;
// a call after success returns at once.
func (p *Provider) Run(ctx context.Context) {
	for attempt := 1; p.state.Load() == nil; attempt++ {
		d, err := p.discover(ctx)
		if err == nil {
			p.state.Store(d)
			p.log.Info("discovered openid provider",
				keyIssuer, p.issuer,
				keyAttempt, attempt,
				keyEndSession, d.meta.EndSessionEndpoint != "",
				keyRevocation, d.meta.RevocationEndpoint != "",
				keyBackchannelLogout, d.meta.BackchannelLogoutSupported,
				keyBackchannelLogoutSession, d.meta.BackchannelLogoutSessionSupported,
			)
			if u, _ := url.Parse(p.issuer); u.Scheme != "https" && !isLoopback(u.Hostname()) {
				// OpenID Connect Discovery 1.0 section 3: the issuer uses https.
				p.log.Warn("issuer is not https: tokens travel in clear text", keyIssuer, p.issuer)
			}
			if len(d.meta.CodeChallengeMethods) > 0 && !slices.Contains(d.meta.CodeChallengeMethods, "S256") {
				p.log.Warn("provider does not advertise PKCE S256; sending it anyway", keyIssuer, p.issuer)
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		wait := p.backoff(attempt)
		level := slog.LevelWarn
		if errors.Is(err, errMisconfigured) {
			level = slog.LevelError
		}
		p.log.Log(ctx, level, "openid provider discovery failed",
			keyIssuer, p.issuer,
			keyError, err,
			keyAttempt, attempt,
			keyRetryIn, wait,
		)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// backoff returns the wait after the given failed attempt (1-based): the
// exponential step min·2^(attempt-1), capped at max, with "equal jitter"
// (half fixed, half random) so restarted replicas do not retry in lockstep,
// and never below min.
func (p *Provider) backoff(attempt int) time.Duration {
	step := p.retryMin
	for i := 1; i < attempt && step < p.retryMax; i++ {
		step *= 2
	}
	step = min(step, p.retryMax)
	wait := step/2 + rand.N(step/2+1)
	return max(wait, p.retryMin)
}

func (p *Provider) discover(ctx context.Context) (*discovered, error) {
	ctx, cancel := context.WithTimeout(ctx, discoveryAttemptTimeout)
	defer cancel()
	// The provider keeps this client for verifying signed userinfo answers.
	prov, err := oidc.NewProvider(oidc.ClientContext(ctx, p.apiClient), p.issuer)
	if err != nil {
		return nil, fmt.Errorf("fetch discovery document: %w", err)
	}
	var meta metadata
	if err := prov.Claims(&meta); err != nil {
		return nil, fmt.Errorf("decode discovery document: %w", err)
	}
	if p.endSession != "" {
		meta.EndSessionEndpoint = p.endSession
	}
	var missing []string
	for name, v := range map[string]string{
		"authorization_endpoint": meta.AuthorizationEndpoint,
		"token_endpoint":         meta.TokenEndpoint,
		"jwks_uri":               meta.JWKSURI,
	} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("discovery document lacks %v", missing)
	}
	// The JWKS fetches run on a context of their own (go-oidc caches the
	// keys across requests), carrying the client that marks outages.
	keys := &keySet{remote: oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), p.apiClient), meta.JWKSURI)}
	// go-oidc has checked that the document's issuer equals p.issuer.
	verifier := oidc.NewVerifier(p.issuer, keys, &oidc.Config{
		ClientID:             p.clientID,
		SupportedSigningAlgs: signingAlgs(meta.IDTokenSigningAlgs),
		Now:                  p.now,
	})
	logoutVerifier := oidc.NewVerifier(p.issuer, keys, &oidc.Config{
		ClientID:             p.clientID,
		SupportedSigningAlgs: signingAlgs(meta.IDTokenSigningAlgs),
		Now:                  p.now,
		SkipExpiryCheck:      true,
	})
	tokenStyle := authStyle(meta.TokenEndpointAuthMethods, p.clientSecret, p.authMethod)
	revokeMethods := meta.RevocationEndpointAuthMethods
	if len(revokeMethods) == 0 {
		// RFC 8414 section 2: absent, the token endpoint's methods apply.
		revokeMethods = meta.TokenEndpointAuthMethods
	}
	endpoint := prov.Endpoint()
	endpoint.AuthStyle = tokenStyle
	tokenClient := p.client
	var assertion *assertionSigner
	if p.clientKey != nil {
		// The provider checks the assertion's iat and exp against its own
		// clock, so they come from the wall clock even when p.now is shifted
		// (tests do, to force a refresh; Ory Hydra then refuses a token
		// "used before issued").
		assertion, err = newAssertionSigner(p.clientKey, meta.TokenEndpointAuthSigningAlgs, p.clientID, meta.TokenEndpoint, time.Now)
		if err != nil {
			return nil, err
		}
		assertion.keyFunc = p.clientKeyFunc
		if len(meta.TokenEndpointAuthMethods) > 0 && !slices.Contains(meta.TokenEndpointAuthMethods, "private_key_jwt") {
			p.log.Warn("provider does not advertise private_key_jwt; sending client assertions anyway", keyIssuer, p.issuer)
		}
		// x/oauth2 then sends client_id in the form and no secret; the
		// transport adds the assertion.
		endpoint.AuthStyle = oauth2.AuthStyleInParams
		c := *p.client
		base := c.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		c.Transport = assertionTransport{base: base, tokenURL: meta.TokenEndpoint, signer: assertion}
		tokenClient = &c
	}
	return &discovered{
		provider:       prov,
		verifier:       verifier,
		logoutVerifier: logoutVerifier,
		oauth: &oauth2.Config{
			ClientID:     p.clientID,
			ClientSecret: p.clientSecret,
			Endpoint:     endpoint,
			RedirectURL:  p.redirectURL,
			Scopes:       p.scopes,
		},
		meta:        meta,
		revokeStyle: authStyle(revokeMethods, p.clientSecret, p.authMethod),
		tokenClient: tokenClient,
		assertion:   assertion,
	}, nil
}

// secret returns the client secret to send now.
func (p *Provider) secret() string {
	if p.secretFunc != nil {
		return p.secretFunc()
	}
	return p.clientSecret
}

// oauthConfig returns d's OAuth configuration with the current client
// secret.
func (p *Provider) oauthConfig(d *discovered) *oauth2.Config {
	if p.secretFunc == nil {
		return d.oauth
	}
	c := *d.oauth
	c.ClientSecret = p.secretFunc()
	return &c
}

// signingAlgs keeps the advertised ID token algorithms that go-oidc can
// verify, as go-oidc's Provider.Verifier does (we build the verifier
// ourselves to wrap its key set). Nil makes go-oidc require RS256, the one
// algorithm OpenID Connect Core 15.1 makes mandatory. "none" and HMAC
// algorithms are never accepted.
func signingAlgs(advertised []string) []string {
	supported := []string{
		oidc.RS256, oidc.RS384, oidc.RS512,
		oidc.ES256, oidc.ES384, oidc.ES512,
		oidc.PS256, oidc.PS384, oidc.PS512,
		oidc.EdDSA,
	}
	var algs []string
	for _, a := range advertised {
		if slices.Contains(supported, a) {
			algs = append(algs, a)
		}
	}
	return algs
}

// authStyle picks how the client authenticates: the forced method when
// set, else from the advertised methods rather than x/oauth2's
// auto-detection, which on failure replays the request (and so the one-time
// authorization code) with the other style.
func authStyle(methods []string, secret, forced string) oauth2.AuthStyle {
	switch {
	case secret == "":
		// A public client sends only client_id (RFC 6749 section 2.3, 3.2.1).
		return oauth2.AuthStyleInParams
	case forced == "client_secret_basic":
		return oauth2.AuthStyleInHeader
	case forced == "client_secret_post":
		return oauth2.AuthStyleInParams
	case len(methods) == 0 || slices.Contains(methods, "client_secret_basic"):
		// OpenID Connect Discovery 1.0 section 3: the default is
		// client_secret_basic.
		return oauth2.AuthStyleInHeader
	case slices.Contains(methods, "client_secret_post"):
		return oauth2.AuthStyleInParams
	default:
		return oauth2.AuthStyleAutoDetect
	}
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// truncate shortens s to at most n bytes, for logging values a client chose.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = slices.Clone(vs)
	}
	return c
}
