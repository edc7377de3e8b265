// Package proxy is authgate's HTTP surface: the login flow (start, callback),
// sign-out and userinfo endpoints, the browser-versus-API decision, the
// path normalisation → public paths (or routes) → bearer token → session →
// policy (or the route's rule) → refresh → forward chain in front of the
// upstream, and forward-auth
// (<prefix>/auth) for nginx, Traefik and Envoy.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/authgate/authgate/proxy/access"
	"github.com/authgate/authgate/proxy/idp"
	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/upstream"
)

// Provider is what the proxy needs from the OpenID Provider; *idp.Provider
// implements it and tests may substitute a fake.
type Provider interface {
	Ready() bool
	NewAuthRequest() (*idp.AuthRequest, error)
	// CheckResponseIssuer checks the callback's "iss" (RFC 9207); an error
	// wrapping idp.ErrIssuerMismatch ends the login before the exchange.
	CheckResponseIssuer(iss string, present bool) error
	Exchange(ctx context.Context, code, codeVerifier, nonce string) (*idp.Tokens, *idp.Identity, error)
	Refresh(ctx context.Context, refreshToken, subject string) (*idp.Tokens, error)
	Revoke(ctx context.Context, refreshToken string) error
	EndSessionURL(idTokenHint, postLogoutRedirectURI, state string) (string, bool)
}

// BearerVerifier checks an API client's own access token (a JWT) and says
// who it names; *idp.Provider implements it. Errors wrapping
// idp.ErrNotReady or idp.ErrUnavailable are outages (503); any other error
// refuses the token (401), with the description of an *idp.TokenError
// sent to the client.
type BearerVerifier interface {
	VerifyBearer(ctx context.Context, token string, audiences []string) (*idp.Identity, error)
}

// SharedSessions is what a session store shared by several replicas (Redis)
// offers beyond session.Store: ending sessions by the IdP's identifiers
// (back-channel logout) and one refresh per session across replicas.
// *redisstore.Store implements it.
type SharedSessions interface {
	// Reload reads the request's session from the shared store, bypassing
	// any local cache.
	Reload(r *http.Request) (*session.Session, error)
	DeleteBySubject(ctx context.Context, sub string) (int, error)
	DeleteByIDPSession(ctx context.Context, sid string) (int, error)
	LockRefresh(ctx context.Context, sessionID string, ttl time.Duration) (unlock func(), ok bool, err error)
	WaitForRefresh(ctx context.Context, r *http.Request, old *session.Session, timeout time.Duration) (*session.Session, error)
}

// RevocationFeed shares revocations with the other replicas: Publish adds
// one to the local list at once and to every other replica's list soon
// after. *redisstore.Revocations implements it.
type RevocationFeed interface {
	Publish(ctx context.Context, rev session.Revocation) error
}

// ReplayGuard remembers back-channel logout token ids (jti) across
// replicas: ClaimJTI reports whether jti is new. *redisstore.Store
// implements it.
type ReplayGuard interface {
	ClaimJTI(ctx context.Context, jti string, ttl time.Duration) (fresh bool, err error)
}

// LogoutVerifier verifies back-channel logout tokens; *idp.Provider
// implements it.
type LogoutVerifier interface {
	VerifyLogoutToken(ctx context.Context, raw string) (*idp.Logout, error)
}

// Options configures a Handler. Provider, Store, Sealer and Upstream are
// required; every other zero value has the default its comment names.
type Options struct {
	Provider Provider
	// Store keeps sessions.
	Store session.Store
	// Sealer seals the short-lived login-flow cookies.
	Sealer *session.Sealer
	// Upstream receives every authenticated request, with the user's
	// identity in its context (upstream.WithIdentity), or as an argument
	// when it has ServeIdentity, as *upstream.Proxy does.
	Upstream http.Handler

	// PathPrefix of authgate's own endpoints; empty means "/oauth2".
	PathPrefix string
	// FlowCookie names the login-flow cookies (one per login in flight,
	// suffixed with part of its state); Name empty means "authgate_flow".
	FlowCookie session.CookieOptions
	// SessionTTL is the absolute session lifetime; zero means 168h.
	SessionTTL time.Duration
	// RefreshSkew: the access token is refreshed when it expires within this
	// long; zero means 60s.
	RefreshSkew time.Duration
	// RefreshGrace is how long requests still carrying the pre-refresh
	// cookie get the refreshed session instead of redeeming a spent refresh
	// token; zero means 10s.
	RefreshGrace time.Duration
	// FlowTTL bounds how long a login may take; zero means 10m.
	FlowTTL time.Duration
	// PostLogoutRedirectURL is sent to the IdP's end_session_endpoint as
	// post_logout_redirect_uri; without an end_session_endpoint, a sign-out
	// without rd lands on it directly. Empty sends none and lands on rd.
	PostLogoutRedirectURL string
	// RequestIDHeader carries the request id; empty means "X-Request-Id".
	RequestIDHeader string
	// Revocations lists sessions ended before their cookies expire; nil
	// means a new in-memory list.
	Revocations *session.RevocationList
	// PublicPaths are forwarded without a session and with every identity
	// header removed; nil makes every path need one.
	PublicPaths *access.PublicPaths
	// Policy decides which signed-in users (and bearer tokens) may pass;
	// nil admits every one.
	Policy *access.Policy
	// Routes, when set, decide every request instead of PublicPaths and
	// Policy (which must then be nil): the first route whose pattern
	// matches the normalised path is public or evaluates its allow
	// expression, and a path no route matches is refused with 403. Nil
	// keeps PublicPaths and Policy.
	Routes *access.Routes
	// Bearer, when set, accepts "Authorization: Bearer <JWT>" from API
	// clients: a token it verifies is forwarded as is, any other bearer
	// token gets 401. Nil turns bearer tokens off: the client's
	// Authorization header is then replaced (session) or removed.
	Bearer BearerVerifier
	// BearerAudiences are the audiences a bearer token must name one of;
	// required (non-empty) when Bearer is set.
	BearerAudiences []string
	// TrustedProxies are the direct peers whose X-Forwarded-* (and
	// X-Original-*) headers forward-auth believes; nil trusts none, so
	// every decision is made on the request authgate itself received.
	TrustedProxies *access.TrustedProxies
	// RedirectHosts lists the hosts an absolute post-login or post-logout
	// target (rd) may name; nil allows relative targets only.
	RedirectHosts *access.RedirectHosts
	// Shared, when the Store is shared by several replicas, ends sessions
	// for back-channel logout and coordinates refreshes; nil (the cookie
	// store) refreshes in-process only and ends sessions through the
	// revocation list.
	Shared SharedSessions
	// Feed shares revocations (sign-out, back-channel logout) with the other
	// replicas; nil keeps them in this process.
	Feed RevocationFeed
	// Replay remembers logout token ids across replicas; nil remembers them
	// in this process.
	Replay ReplayGuard
	// Logout, when set, serves back-channel logout at
	// <prefix>/backchannel_logout; nil answers that path with 404.
	Logout LogoutVerifier
	// StoreReady reports whether the session store answers, for readiness;
	// nil means it always does (the cookie store).
	StoreReady func(ctx context.Context) error
	// Metrics records counters; nil records nothing.
	Metrics *Metrics
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// TracerProvider traces requests: a server span per request with its
	// outcome, and spans for the session load and refresh. Nil traces
	// nothing and costs nothing.
	TracerProvider trace.TracerProvider
	// TraceTrust says whose trace context (traceparent) is continued; the
	// zero value trusts TrustedProxies only. It applies with tracing off
	// too: an untrusted client's trace context is then dropped.
	TraceTrust TraceTrust
	// AccessLog, when set, receives one line per request (method, path,
	// status, bytes, durations, outcome, sub, request and trace id) at
	// Info; nil writes none.
	AccessLog *slog.Logger
	// AccessLogQuery adds the query string to the access log's path
	// (never for authgate's own endpoints); false leaves it out.
	AccessLogQuery bool
}

// Handler is authgate's front handler.
type Handler struct {
	provider Provider
	store    session.Store
	sealer   *session.Sealer
	upstream http.Handler
	// identityUpstream is upstream when it takes the identity as an
	// argument; nil sends it through upstream.WithIdentity.
	identityUpstream identityServer
	revocations      *session.RevocationList
	metrics          *Metrics
	log              *slog.Logger
	now              func() time.Time

	public          *access.PublicPaths
	policy          *access.Policy
	routes          *access.Routes
	routeCounters   []routeCounters
	bearer          BearerVerifier
	bearerAudiences []string
	trusted         *access.TrustedProxies
	redirectHosts   *access.RedirectHosts

	prefix                string
	startPath             string
	callbackPath          string
	signOutPath           string
	userinfoPath          string
	authPath              string
	flowCookie            session.CookieOptions
	sessionTTL            time.Duration
	refreshSkew           time.Duration
	flowTTL               time.Duration
	postLogoutRedirectURL string
	requestIDHeader       string

	shared     SharedSessions
	feed       RevocationFeed
	replay     ReplayGuard
	logout     LogoutVerifier
	storeReady func(ctx context.Context) error

	backchannelPath string
	refresher       *refresher
	states          *usedStates
	jtis            *usedStates
	streams         *streamTracker

	tracer         trace.Tracer // nil: tracing off
	traceTrust     TraceTrust
	accessLog      *slog.Logger
	accessLogQuery bool
	tooLargeOnce   sync.Once // the first session too large for cookies is logged at Error
}

// New returns a Handler or an error naming the first missing requirement.
func New(o Options) (*Handler, error) {
	switch {
	case o.Provider == nil:
		return nil, errors.New("proxy: Options.Provider is required")
	case o.Store == nil:
		return nil, errors.New("proxy: Options.Store is required")
	case o.Sealer == nil:
		return nil, errors.New("proxy: Options.Sealer is required")
	case o.Upstream == nil:
		return nil, errors.New("proxy: Options.Upstream is required")
	case o.Bearer != nil && len(o.BearerAudiences) == 0:
		return nil, errors.New("proxy: Options.BearerAudiences is required with Options.Bearer")
	case o.Routes != nil && (o.PublicPaths != nil || o.Policy != nil):
		return nil, errors.New("proxy: Options.Routes replaces Options.PublicPaths and Options.Policy; set only one kind")
	}
	h := &Handler{
		provider:              o.Provider,
		store:                 o.Store,
		sealer:                o.Sealer,
		upstream:              o.Upstream,
		revocations:           o.Revocations,
		metrics:               o.Metrics,
		log:                   o.Logger,
		now:                   o.Now,
		prefix:                strings.TrimSuffix(o.PathPrefix, "/"),
		flowCookie:            o.FlowCookie,
		sessionTTL:            o.SessionTTL,
		refreshSkew:           o.RefreshSkew,
		flowTTL:               o.FlowTTL,
		postLogoutRedirectURL: o.PostLogoutRedirectURL,
		requestIDHeader:       o.RequestIDHeader,
		public:                o.PublicPaths,
		policy:                o.Policy,
		routes:                o.Routes,
		bearer:                o.Bearer,
		bearerAudiences:       o.BearerAudiences,
		trusted:               o.TrustedProxies,
		redirectHosts:         o.RedirectHosts,
		shared:                o.Shared,
		feed:                  o.Feed,
		replay:                o.Replay,
		logout:                o.Logout,
		storeReady:            o.StoreReady,
		traceTrust:            o.TraceTrust,
		accessLog:             o.AccessLog,
		accessLogQuery:        o.AccessLogQuery,
	}
	if o.TracerProvider != nil {
		h.tracer = o.TracerProvider.Tracer(tracerName)
	}
	h.identityUpstream, _ = o.Upstream.(identityServer)
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.prefix == "" {
		h.prefix = "/oauth2"
	}
	if canon, err := access.NormalizePath(h.prefix); err != nil || canon != h.prefix || h.prefix == "/" {
		// Requests are routed on their normalised path, so a prefix that
		// normalisation changes would never match.
		return nil, fmt.Errorf("proxy: PathPrefix %q must be a canonical absolute path such as /oauth2", o.PathPrefix)
	}
	if h.flowCookie.Name == "" {
		h.flowCookie.Name = "authgate_flow"
	}
	if h.sessionTTL <= 0 {
		h.sessionTTL = 168 * time.Hour
	}
	if h.refreshSkew <= 0 {
		h.refreshSkew = 60 * time.Second
	}
	if h.flowTTL <= 0 {
		h.flowTTL = 10 * time.Minute
	}
	if h.requestIDHeader == "" {
		h.requestIDHeader = "X-Request-Id"
	}
	if h.revocations == nil {
		h.revocations = session.NewRevocationList(h.now)
	}
	grace := o.RefreshGrace
	if grace <= 0 {
		grace = 10 * time.Second
	}
	h.startPath = h.prefix + "/start"
	h.callbackPath = h.prefix + "/callback"
	h.signOutPath = h.prefix + "/sign_out"
	h.userinfoPath = h.prefix + "/userinfo"
	h.authPath = h.prefix + "/auth"
	h.backchannelPath = h.prefix + "/backchannel_logout"
	h.refresher = newRefresher(grace, h.now)
	h.states = newUsedStates(h.now)
	h.jtis = newUsedStates(h.now)
	h.streams = newStreamTracker(h.revocations, h.now)
	h.routeCounters = h.metrics.routeCounters(h.routes.Labels())
	return h, nil
}

// Ready reports whether requests can be served: discovery has succeeded and
// the session store answers. It returns the reason when not.
func (h *Handler) Ready(ctx context.Context) error {
	if !h.provider.Ready() {
		return errors.New("identity provider not discovered yet")
	}
	if h.storeReady != nil {
		if err := h.storeReady(ctx); err != nil {
			return fmt.Errorf("session store: %w", err)
		}
	}
	return nil
}

// Run closes the long-lived connections (WebSockets, event streams) of
// sessions that end, until ctx ends.
func (h *Handler) Run(ctx context.Context) {
	h.streams.run(ctx, streamCheckInterval)
}

// route normalises the request path, routes authgate's own endpoints
// and guards everything else.
//
// The path is normalised once, before anything else (access.NormalizePath):
// an ambiguous path is refused with 400 and nothing is forwarded; otherwise
// the request continues with the normalised path, which is both what every
// decision is made on and what the upstream receives.
func (h *Handler) route(w http.ResponseWriter, r *http.Request) {
	upstream.EnsureRequestID(r, h.requestIDHeader)
	path, err := access.NormalizePath(requestPath(r))
	if err != nil {
		h.rejectPath(w, r, err)
		return
	}
	setPath(r.URL, path)
	if strings.HasPrefix(path, h.prefix+"/") {
		switch path {
		case h.startPath:
			h.serveStart(w, r)
			return
		case h.callbackPath:
			h.serveCallback(w, r)
			return
		case h.signOutPath:
			h.serveSignOut(w, r)
			return
		case h.userinfoPath:
			h.serveUserinfo(w, r)
			return
		case h.authPath:
			h.serveAuth(w, r, path)
			return
		case h.backchannelPath:
			if h.logout != nil {
				h.serveBackchannelLogout(w, r)
				return
			}
		}
		if strings.HasPrefix(path, h.authPath+"/") {
			h.serveAuth(w, r, path)
			return
		}
	}
	h.serveProtected(w, r, path)
}

// serveProtected is the public paths (or routes) → bearer → session →
// policy (or route rule) → refresh → forward chain. path is the
// normalised path.
func (h *Handler) serveProtected(w http.ResponseWriter, r *http.Request, path string) {
	d, ok := h.decide(w, r, r.Method, path, false)
	if !ok {
		return
	}
	if d.public {
		h.forwardPublic(w, r)
		return
	}
	d.host = r.Host
	if h.bearer != nil {
		if token, present := bearerToken(r.Header); present {
			id, ok := h.verifyBearer(w, r, token, d)
			if ok {
				h.outcome(w, outcomeForwarded, 0)
				noteSubject(w, id.User)
				h.serveUpstream(w, r, id)
			}
			return
		}
	}
	s, ok := h.loadSession(w, r)
	if !ok {
		return
	}
	if s == nil {
		h.unauthenticated(w, r)
		return
	}
	if !h.allowSession(w, r, s, d) {
		return
	}
	s, ok = h.fresh(w, r, s, func() { h.unauthenticated(w, r) })
	if !ok {
		return
	}
	h.forward(w, r, s)
}

// loadSession returns the request's live session, nil when there is none
// (missing, invalid, expired or revoked), or ok=false when it has already
// answered (store outage).
func (h *Handler) loadSession(w http.ResponseWriter, r *http.Request) (s *session.Session, ok bool) {
	s, err := h.loadTraced(r)
	switch {
	case errors.Is(err, session.ErrNotFound):
		return nil, true
	case err != nil:
		h.log.LogAttrs(r.Context(), slog.LevelError, "session store unavailable",
			slog.String(attrRequestID, r.Header.Get(h.requestIDHeader)), slog.String(attrError, err.Error()))
		h.writeError(w, r, problemStoreUnavailable)
		h.outcome(w, outcomeError, problemStoreUnavailable.Status)
		return nil, false
	}
	if !h.now().Before(s.ExpiresAt) {
		return nil, true
	}
	if h.revocations.Revoked(s) {
		h.log.LogAttrs(r.Context(), slog.LevelDebug, "revoked session presented",
			slog.String(attrRequestID, r.Header.Get(h.requestIDHeader)), slog.Any(attrSession, s))
		return nil, true
	}
	return s, true
}

// unauthenticated sends a navigation to login and answers anything else with
// 401, so that API clients never receive a login page. A navigation that
// says so through Fetch Metadata gets the deep-link page, whose script
// keeps the URL's fragment; others get the 302 to the IdP.
func (h *Handler) unauthenticated(w http.ResponseWriter, r *http.Request) {
	if isNavigation(r) {
		if wantsDeepLinkPage(r) {
			h.serveDeepLinkPage(w, r)
			return
		}
		h.startLogin(w, r, r.URL.RequestURI())
		return
	}
	h.writeError(w, r, problemUnauthenticated)
	h.outcome(w, outcomeUnauthenticated, http.StatusUnauthorized)
}

// forward sends r to the upstream with the session's identity.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, s *session.Session) {
	h.outcome(w, outcomeForwarded, 0)
	noteSubject(w, s.Subject)
	if isLongLived(r) {
		// Closed by authgate when the session ends (sign-out, back-channel
		// logout, expiry), not only when the client or upstream hangs up.
		ctx, done := h.streams.track(r.Context(), s)
		defer done()
		r = r.WithContext(ctx)
	}
	id := sessionIdentity(s)
	h.serveUpstream(w, r, &id)
}

// sessionIdentity is what the upstream is told about a session's user.
func sessionIdentity(s *session.Session) upstream.Identity {
	id := upstream.Identity{
		AccessToken:       s.AccessToken,
		User:              s.Subject,
		PreferredUsername: s.PreferredUsername,
		Groups:            s.Groups,
	}
	if s.User != "" {
		id.User = s.User // AUTHGATE_USER_CLAIM
	}
	// An address the IdP explicitly marked unverified is not an identity.
	if s.EmailVerified == nil || *s.EmailVerified {
		id.Email = s.Email
	}
	return id
}

// safeRedirect is the one place a user-supplied redirect target is checked:
// an absolute URL on an allowed host (RedirectHosts) is kept, and anything
// else must be a safe same-origin path (access.SafeRedirect), or it becomes
// "/".
func (h *Handler) safeRedirect(rd string) string {
	if abs, ok := h.redirectHosts.SafeAbsolute(rd); ok {
		return abs
	}
	return access.SafeRedirect(rd)
}

// redirect answers with a 302 to an already validated location. It sets the
// header itself: http.Redirect would "clean" the path, and cleaning turns
// "/a/../\evil.com" into "/\evil.com".
func redirect(w http.ResponseWriter, location string) {
	w.Header().Set("Location", location)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
}
