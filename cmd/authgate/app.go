package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/authgate/authgate/internal/codetrim"
	"github.com/authgate/authgate/internal/secretfile"
	"github.com/authgate/authgate/proxy"
	"github.com/authgate/authgate/proxy/idp"
	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/session/redisstore"
	"github.com/authgate/authgate/upstream"
)

// MainOptions are the parts of the process a test may replace.
type MainOptions struct {
	// LogOutput receives the logs; nil means os.Stderr.
	LogOutput io.Writer
	// Now is the clock of sessions and tokens; nil means time.Now.
	Now func() time.Time
	// DiscoveryRetryMin and DiscoveryRetryMax override the discovery backoff.
	DiscoveryRetryMin, DiscoveryRetryMax time.Duration
	// ProxyListener, when set, is used instead of listening on
	// AUTHGATE_LISTEN_ADDR (tests need the address before the config).
	ProxyListener net.Listener
	// SecretPollInterval is how often the …_FILE files are read; zero
	// means secretfile.DefaultInterval.
	SecretPollInterval time.Duration
}

// Main is one running authgate: the proxy listener, the internal listener
// and the discovery loop. Tests start it in-process with addresses ":0".
type Main struct {
	cfg      *Config
	log      *slog.Logger
	provider *idp.Provider
	handler  *proxy.Handler
	registry *prometheus.Registry
	secrets  *secretMetrics
	// tracer exports spans; nil when tracing is off.
	tracer *sdktrace.TracerProvider

	proxyLn, internalLn net.Listener
	proxySrv, internal  *http.Server
	certs               *certReloader
	// background runs alongside the servers until shutdown.
	background []func(context.Context)

	ready     chan struct{} // closed when listening
	closeOnce sync.Once
}

// NewMain wires every package from cfg. It opens the listeners, so their
// addresses are known before Run.
func NewMain(cfg *Config, o MainOptions) (_ *Main, retErr error) {
	out := o.LogOutput
	if out == nil {
		out = os.Stderr
	}
	tp, err := newTracerProvider(cfg.tracing)
	if err != nil {
		return nil, err
	}
	tracer := tracerProvider(tp)
	defer func() {
		if retErr != nil && tp != nil {
			tp.Shutdown(context.Background()) // stops its batch goroutine
		}
	}()
	var accessLog *slog.Logger
	if cfg.AccessLog {
		// Two handlers share the output: one write at a time.
		out = &lockedWriter{w: out}
		accessLog = newAccessLogger(out, cfg)
	}
	logger := newLogger(out, cfg)
	if tp != nil {
		logger = slog.New(traceLogHandler{logger.Handler()})
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}

	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := proxy.NewMetrics(registry)
	secretMetrics := newSecretMetrics(registry, cfg.watchedFileVariables())
	// Every …_FILE file is read again when it changes (a rotated
	// Kubernetes Secret); its users get the new value through an atomic
	// swap. TLS server certificates reload on their own (certReloader).
	watcher := secretfile.New(secretfile.Options{Interval: o.SecretPollInterval, Logger: logger, OnReload: secretMetrics.observe})

	clientSecret, err := watchSecret(watcher, "AUTHGATE_CLIENT_SECRET_FILE", cfg.ClientSecretFile)
	if err != nil {
		return nil, err
	}
	clientKey, err := watchClientKey(watcher, cfg.ClientKeyFile, cfg.ClientKeyID)
	if err != nil {
		return nil, err
	}
	oidcTLS, err := watchCA(watcher, "AUTHGATE_OIDC_CA_FILE", cfg.OIDCCAFile, hostOf(cfg.IssuerURL))
	if err != nil {
		return nil, err
	}
	idpClient := newHTTPClient(oidcTLS, cfg.OIDCTimeout)
	// provider is set below, before any call to the IdP is made.
	var provider *idp.Provider
	idpClient.Transport = timedTransport{
		base:    idpClient.Transport,
		name:    func(u *url.URL) string { return provider.EndpointName(u) },
		observe: metrics.ObserveIdP,
	}
	provider, err = idp.New(idp.Options{
		IssuerURL:         cfg.IssuerURL,
		ClientID:          cfg.ClientID,
		ClientSecret:      cfg.ClientSecret,
		ClientSecretFunc:  clientSecret,
		ClientAuthMethod:  cfg.ClientAuthMethod,
		ClientKey:         cfg.clientKey,
		ClientKeyFunc:     clientKey,
		RedirectURL:       cfg.RedirectURL,
		Scopes:            cfg.Scopes,
		Prompt:            cfg.Prompt,
		EndSessionURL:     cfg.EndSessionURL,
		AuthParams:        cfg.authParams,
		GroupsClaim:       cfg.GroupsClaim,
		UserClaim:         cfg.UserClaim,
		EmailClaim:        cfg.EmailClaim,
		NeedGroups:        len(cfg.AllowedGroups) > 0 || cfg.routes.UsesGroups(),
		KeepClaims:        cfg.routes.UsesClaims(),
		HTTPClient:        idpClient,
		Logger:            logger,
		Now:               now,
		DiscoveryRetryMin: o.DiscoveryRetryMin,
		DiscoveryRetryMax: o.DiscoveryRetryMax,
		TracerProvider:    tracer,
	})
	if err != nil {
		return nil, fmt.Errorf("configure identity provider: %w", err)
	}

	// One sealer for every cookie, so that a rotated key list reaches them
	// all at once.
	sealer, err := session.NewSealer(cfg.cookieKeys)
	if err != nil {
		return nil, fmt.Errorf("configure cookie keys: %w", err)
	}
	if err := watchCookieKeys(watcher, cfg.CookieSecretFile, sealer); err != nil {
		return nil, err
	}
	cookieOpts := session.CookieOptions{Name: cfg.CookieName, Domain: cfg.CookieDomain, Secure: cfg.CookieSecure}
	store, err := session.NewCookieStore(session.CookieStoreOptions{Cookie: cookieOpts, Sealer: sealer, Now: now,
		ObserveSize: metrics.ObserveSessionCookie})
	if err != nil {
		return nil, fmt.Errorf("configure session cookie: %w", err)
	}
	flowCookie := cookieOpts
	flowCookie.Name = cfg.CookieName + "_flow"
	sessionCookies := store.Cookies()

	// Redis: the session store when AUTHGATE_SESSION_STORE=redis, and the
	// channel that shares revocations (sign-out, back-channel logout) and
	// logout token ids between replicas whenever it is configured.
	var (
		sessions    session.Store = store
		revocations               = session.NewRevocationList(now)
		shared      proxy.SharedSessions
		feed        proxy.RevocationFeed
		replay      proxy.ReplayGuard
		storeReady  func(context.Context) error
		background  []func(context.Context)
	)
	if cfg.RedisURL != "" || len(cfg.RedisAddrs) > 0 {
		rs, revFeed, err := newRedis(cfg, cookieOpts, sealer, watcher, revocations, now, logger, tracer)
		if err != nil {
			return nil, err
		}
		feed, replay = revFeed, rs
		background = append(background, revFeed.Run)
		if cfg.SessionStore == "redis" {
			sessions, shared, storeReady = rs, rs, rs.Ping
			sessionCookies = rs.Cookies()
		}
	}
	flowPrefix := session.NewCookies(flowCookie).Name() + "_"

	upstreamTLS, err := watchCA(watcher, "AUTHGATE_UPSTREAM_CA_FILE", cfg.UpstreamCAFile, hostOf(cfg.Upstream))
	if err != nil {
		return nil, err
	}
	// Behind trusted proxies (an ingress, a load balancer) the application
	// is told the client's address, host and scheme they reported, not the
	// proxy's.
	var forwarded func(*http.Request) (string, string, string, bool)
	if len(cfg.TrustedProxies) > 0 {
		forwarded = func(r *http.Request) (string, string, string, bool) {
			f, ok := cfg.trusted.Forwarded(r)
			return f.For, f.Host, f.Proto, ok
		}
	}
	up, err := upstream.New(upstream.Options{
		Forwarded:             forwarded,
		PassRoutingHeaders:    cfg.PassRoutingHeaders,
		Target:                cfg.Upstream,
		DialTimeout:           cfg.UpstreamDialTimeout,
		ResponseHeaderTimeout: cfg.UpstreamResponseTimeout,
		MaxIdleConnsPerHost:   cfg.UpstreamIdleConns,
		IdleConnTimeout:       cfg.UpstreamIdleConnTimeout,
		TLSClientConfig:       upstreamTLS,
		IsOwnCookie: func(name string) bool {
			return sessionCookies.Owns(name) || strings.HasPrefix(name, flowPrefix)
		},
		RequestIDHeader: cfg.RequestIDHeader,
		WriteError:      proxy.UpstreamErrorWriter(cfg.RequestIDHeader),
		Logger:          logger,
		Observe: func(_ *http.Request, status int, d time.Duration) {
			metrics.ObserveUpstream(status, d.Seconds())
		},
		TracerProvider: tracer,
	})
	if err != nil {
		return nil, fmt.Errorf("configure upstream: %w", err)
	}

	postLogout := cfg.PostLogoutRedirectURL
	if postLogout == "" {
		postLogout = originOf(cfg.RedirectURL) + "/"
	}
	var bearer proxy.BearerVerifier
	if len(cfg.BearerAudiences) > 0 {
		bearer = provider
	}
	handler, err := proxy.New(proxy.Options{
		Provider:              provider,
		Store:                 sessions,
		Revocations:           revocations,
		Shared:                shared,
		Feed:                  feed,
		Replay:                replay,
		Logout:                provider,
		StoreReady:            storeReady,
		Sealer:                sealer,
		Upstream:              up,
		PathPrefix:            cfg.PathPrefix,
		FlowCookie:            flowCookie,
		SessionTTL:            cfg.SessionTTL,
		RefreshSkew:           cfg.RefreshSkew,
		PostLogoutRedirectURL: postLogout,
		RequestIDHeader:       cfg.RequestIDHeader,
		PublicPaths:           cfg.publicPaths,
		Policy:                cfg.policy,
		Routes:                cfg.routes,
		Bearer:                bearer,
		BearerAudiences:       cfg.BearerAudiences,
		TrustedProxies:        cfg.trusted,
		RedirectHosts:         cfg.redirectHosts,
		Metrics:               metrics,
		Logger:                logger,
		Now:                   now,
		TracerProvider:        tracer,
		TraceTrust:            cfg.traceTrust,
		AccessLog:             accessLog,
		AccessLogQuery:        cfg.AccessLogQuery,
	})
	if err != nil {
		return nil, fmt.Errorf("configure proxy: %w", err)
	}

	m := &Main{cfg: cfg, log: logger, provider: provider, handler: handler, registry: registry, secrets: secretMetrics, tracer: tp, ready: make(chan struct{})}
	m.background = append(background, handler.Run, watcher.Run)
	if cfg.TLSCertFile != "" {
		m.certs, err = newCertReloader(cfg.TLSCertFile, cfg.TLSKeyFile, logger)
		if err != nil {
			return nil, err
		}
	}
	m.proxyLn = o.ProxyListener
	if m.proxyLn == nil {
		if m.proxyLn, err = net.Listen("tcp", cfg.ListenAddr); err != nil {
			return nil, fmt.Errorf("AUTHGATE_LISTEN_ADDR: %w", err)
		}
	}
	if m.internalLn, err = net.Listen("tcp", cfg.InternalAddr); err != nil {
		m.proxyLn.Close()
		return nil, fmt.Errorf("AUTHGATE_INTERNAL_ADDR: %w", err)
	}
	m.proxySrv = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	if m.certs != nil {
		m.proxySrv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: m.certs.GetCertificate}
	}
	m.internal = &http.Server{
		Handler:           m.internalHandler(),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
	}
	return m, nil
}

// releaseStartupPages waits until the provider is discovered (the last
// start-up work), then unmaps the executable's pages that start-up touched
// (internal/codetrim): about 4 MiB of RSS that the request path would
// never use again.
func (m *Main) releaseStartupPages(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !m.provider.Ready() {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
	st, err := codetrim.Release()
	if err != nil {
		m.log.Debug("start-up pages not released", "err", err)
		return
	}
	m.log.Debug("released start-up pages", "mappings", st.Mappings,
		"file_rss_kib_before", st.FileBefore>>10, "file_rss_kib_after", st.FileAfter>>10)
}

// ProxyAddr is the address the proxy listens on.
func (m *Main) ProxyAddr() string { return m.proxyLn.Addr().String() }

// InternalAddr is the address of /healthz, /readyz and /metrics.
func (m *Main) InternalAddr() string { return m.internalLn.Addr().String() }

// Handler is the proxy's handler, for tests that drive it directly.
func (m *Main) Handler() http.Handler { return m.handler }

// Run serves until ctx ends, then drains in-flight requests for at most
// AUTHGATE_SHUTDOWN_TIMEOUT.
func (m *Main) Run(ctx context.Context) error {
	discoveryCtx, stopDiscovery := context.WithCancel(ctx)
	defer stopDiscovery()
	go m.provider.Run(discoveryCtx)
	for _, run := range m.background {
		go run(discoveryCtx)
	}

	errc := make(chan error, 2)
	go func() {
		var err error
		if m.certs != nil {
			err = m.proxySrv.ServeTLS(m.proxyLn, "", "")
		} else {
			err = m.proxySrv.Serve(m.proxyLn)
		}
		errc <- err
	}()
	go func() { errc <- m.internal.Serve(m.internalLn) }()
	m.log.Info("authgate listening", "version", version, "addr", m.ProxyAddr(), "internal_addr", m.InternalAddr(),
		"upstream", redactURL(m.cfg.Upstream), "issuer", m.cfg.IssuerURL, "tls", m.certs != nil,
		"public_paths", m.cfg.publicPaths.Patterns(), "bearer_audiences", m.cfg.BearerAudiences,
		"trusted_proxies", m.cfg.TrustedProxies, "routes", m.cfg.routes.Labels(), "tracing", m.tracer != nil, "access_log", m.cfg.AccessLog,
		"policy", len(m.cfg.AllowedEmails)+len(m.cfg.AllowedEmailDomains)+len(m.cfg.AllowedGroups) > 0)
	close(m.ready)
	go m.releaseStartupPages(discoveryCtx)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	m.log.Info("shutting down", "timeout", m.cfg.ShutdownTimeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.ShutdownTimeout)
	defer cancel()
	err := errors.Join(m.proxySrv.Shutdown(shutdownCtx), m.internal.Shutdown(shutdownCtx))
	// After the servers: the last requests' spans are exported too.
	err = errors.Join(err, shutdownTracing(shutdownCtx, m.tracer))
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serveErr)
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	m.log.Info("stopped")
	return nil
}

// Close stops listening at once; Run's shutdown does the graceful part.
func (m *Main) Close() error {
	var err error
	m.closeOnce.Do(func() {
		err = errors.Join(m.proxySrv.Close(), m.internal.Close())
	})
	return err
}

// internalHandler serves the health, readiness and metrics endpoints.
func (m *Main) internalHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := m.handler.Ready(ctx); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	if m.cfg.Pprof {
		// The internal listener only: profiles reveal memory contents and
		// cost CPU, so they must never be reachable through the proxy.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// newAccessLogger writes the access log (AUTHGATE_ACCESS_LOG) in the log
// format, at Info whatever AUTHGATE_LOG_LEVEL says.
func newAccessLogger(w io.Writer, cfg *Config) *slog.Logger {
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

func newLogger(w io.Writer, cfg *Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.logLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// newHTTPClient returns the client for calls to the IdP; nil tlsConfig
// means the system roots.
func newHTTPClient(tlsConfig *tls.Config, timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tlsConfig
	return &http.Client{Transport: t, Timeout: timeout}
}

// tlsClientConfig trusts the system roots plus caFile, if given.
func tlsClientConfig(caFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA bundle: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

func originOf(raw string) string {
	i := strings.Index(raw, "://")
	if i < 0 {
		return raw
	}
	rest := raw[i+3:]
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		rest = rest[:j]
	}
	return raw[:i+3] + rest
}

// redactURL drops anything that could be a credential from a URL for logs.
func redactURL(raw string) string {
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	return raw
}

// newRedis connects to Redis and returns the Redis session store (used as
// the store itself, or only for logout token ids) and the revocation feed.
func newRedis(cfg *Config, cookie session.CookieOptions, sealer *session.Sealer, watcher *secretfile.Watcher, revocations *session.RevocationList, now func() time.Time, logger *slog.Logger, tracer trace.TracerProvider) (*redisstore.Store, *redisstore.Revocations, error) {
	redisstore.SetClientLogger(logger)
	opts, err := redisClientOptions(cfg)
	if err != nil {
		return nil, nil, err
	}
	// A rotated password is used by each new connection; a rotated CA
	// bundle by each new handshake.
	password, err := watchSecret(watcher, "AUTHGATE_REDIS_PASSWORD_FILE", cfg.RedisPasswordFile)
	if err != nil {
		return nil, nil, err
	}
	if password != nil {
		opts.Password, opts.PasswordFunc = "", password
	}
	caTLS, err := watchCA(watcher, "AUTHGATE_REDIS_CA_FILE", cfg.RedisCAFile, redisHost(cfg))
	if err != nil {
		return nil, nil, err
	}
	if caTLS != nil {
		opts.TLS = caTLS
	}
	opts.TracerProvider = tracer
	client, err := redisstore.NewClient(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("configure Redis: %w", err)
	}
	// The feed gates the store's cache: cached sessions are served only
	// while revocations from the other replicas are arriving.
	feed := redisstore.NewRevocations(client, revocations, redisstore.DefaultPrefix, logger)
	store, err := redisstore.New(redisstore.Options{Client: client, Cookie: cookie, Sealer: sealer, Now: now, Logger: logger,
		CacheTTL: cfg.RedisCacheTTL, Feed: feed})
	if err != nil {
		return nil, nil, fmt.Errorf("configure Redis session store: %w", err)
	}
	return store, feed, nil
}

// redisClientOptions are the Redis connection settings of cfg.
func redisClientOptions(cfg *Config) (redisstore.ClientOptions, error) {
	opts := redisstore.ClientOptions{
		URL:            cfg.RedisURL,
		Addrs:          cfg.RedisAddrs,
		SentinelMaster: cfg.RedisSentinelMaster,
		Cluster:        cfg.RedisCluster,
		Username:       cfg.RedisUsername,
		Password:       cfg.RedisPassword,
		DB:             cfg.RedisDB,
	}
	if cfg.RedisTLS || cfg.RedisCAFile != "" {
		tlsConfig, err := tlsClientConfig(cfg.RedisCAFile)
		if err != nil {
			return opts, fmt.Errorf("AUTHGATE_REDIS_CA_FILE: %w", err)
		}
		if tlsConfig == nil {
			tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		opts.TLS = tlsConfig
	}
	return opts, nil
}

// redisHost is the host of AUTHGATE_REDIS_URL, or of the first of
// AUTHGATE_REDIS_ADDRS.
func redisHost(cfg *Config) string {
	if cfg.RedisURL != "" {
		return hostOf(cfg.RedisURL)
	}
	if len(cfg.RedisAddrs) > 0 {
		if h, _, err := net.SplitHostPort(cfg.RedisAddrs[0]); err == nil {
			return h
		}
	}
	return ""
}
