package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"reflect"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/authgate/authgate/proxy"
	"github.com/authgate/authgate/proxy/access"
	"github.com/authgate/authgate/proxy/idp"
	"github.com/authgate/authgate/upstream"
)

// Config is every setting authgate reads. It is filled from environment
// variables only; the tag names are a public contract.
type Config struct {
	Upstream         string `envconfig:"AUTHGATE_UPSTREAM" desc:"upstream URL: http://, https://, h2c:// or unix:///path/to.sock (required)"`
	IssuerURL        string `envconfig:"AUTHGATE_OIDC_ISSUER_URL" desc:"OpenID Provider issuer; endpoints come from discovery (required)"`
	ClientID         string `envconfig:"AUTHGATE_CLIENT_ID" desc:"OAuth client id (required)"`
	ClientSecret     string `envconfig:"AUTHGATE_CLIENT_SECRET" secret:"true" desc:"OAuth client secret; empty makes a public client (PKCE only)"`
	ClientSecretFile string `envconfig:"AUTHGATE_CLIENT_SECRET_FILE" desc:"file holding AUTHGATE_CLIENT_SECRET; re-read when it changes"`
	ClientKeyFile    string `envconfig:"AUTHGATE_CLIENT_PRIVATE_KEY_FILE" desc:"PEM private key (RSA, EC P-256/P-384/P-521 or Ed25519) for private_key_jwt client authentication instead of a client secret; re-read when it changes"`
	ClientAuthMethod string `envconfig:"AUTHGATE_CLIENT_AUTH_METHOD" desc:"token endpoint authentication with a client secret: client_secret_basic or client_secret_post, as registered at the IdP; empty picks from discovery (basic when advertised)"`
	ClientKeyID      string `envconfig:"AUTHGATE_CLIENT_KEY_ID" desc:"kid sent with private_key_jwt assertions; empty means the key's RFC 7638 JWK thumbprint"`
	CookieSecret     string `envconfig:"AUTHGATE_COOKIE_SECRET" secret:"true" desc:"32-byte key, base64; a comma-separated list rotates keys (first seals, all open) (required)"`
	CookieSecretFile string `envconfig:"AUTHGATE_COOKIE_SECRET_FILE" desc:"file holding AUTHGATE_COOKIE_SECRET; re-read when it changes"`
	RedirectURL      string `envconfig:"AUTHGATE_REDIRECT_URL" desc:"absolute callback URL registered at the IdP, e.g. https://app.example.com/oauth2/callback (required)"`

	ListenAddr   string `envconfig:"AUTHGATE_LISTEN_ADDR" default:":4180" desc:"proxy listener"`
	InternalAddr string `envconfig:"AUTHGATE_INTERNAL_ADDR" default:":4181" desc:"listener for /healthz, /readyz and /metrics"`

	Scopes                []string      `envconfig:"AUTHGATE_SCOPES" default:"openid,email,profile" desc:"scopes requested at login (comma-separated)"`
	Prompt                string        `envconfig:"AUTHGATE_PROMPT" desc:"OpenID Connect prompt sent at login: space-separated none, login, consent, select_account (consent makes node-oidc-provider grant offline_access)"`
	AuthParams            string        `envconfig:"AUTHGATE_AUTH_PARAMS" desc:"extra authorization request parameters in URL query form, e.g. access_type=offline or audience=https://api.example.com&resource=https://api.example.com (percent-encode & = + # % inside values)"`
	GroupsClaim           string        `envconfig:"AUTHGATE_GROUPS_CLAIM" default:"groups" desc:"claim holding the user's groups (ID token, userinfo, else a JWT access token from the issuer); a.b.c reaches into nested objects, e.g. realm_access.roles"`
	UserClaim             string        `envconfig:"AUTHGATE_USER_CLAIM" default:"sub" desc:"claim X-Forwarded-User comes from (ID token or userinfo), e.g. preferred_username, oid"`
	EmailClaim            string        `envconfig:"AUTHGATE_EMAIL_CLAIM" default:"email" desc:"claim the email comes from, e.g. preferred_username or upn (Entra ID); email_verified applies only to email"`
	PathPrefix            string        `envconfig:"AUTHGATE_PATH_PREFIX" default:"/oauth2" desc:"prefix of authgate's own paths (start, callback, sign_out, userinfo)"`
	PostLogoutRedirectURL string        `envconfig:"AUTHGATE_POST_LOGOUT_REDIRECT_URL" desc:"absolute URL the IdP sends the browser to after sign-out; empty means the origin of AUTHGATE_REDIRECT_URL"`
	EndSessionURL         string        `envconfig:"AUTHGATE_END_SESSION_URL" desc:"IdP logout URL to use instead of discovery's end_session_endpoint (Amazon Cognito's https://<domain>/logout?logout_uri=…); its query parameters are kept"`
	OIDCCAFile            string        `envconfig:"AUTHGATE_OIDC_CA_FILE" desc:"PEM bundle trusted for the IdP's TLS in addition to the system roots; re-read when it changes"`
	OIDCTimeout           time.Duration `envconfig:"AUTHGATE_OIDC_TIMEOUT" default:"10s" desc:"timeout of each call to the IdP"`

	CookieName   string        `envconfig:"AUTHGATE_COOKIE_NAME" default:"authgate" desc:"session cookie name (gets the __Host- prefix when secure and no domain is set)"`
	CookieDomain string        `envconfig:"AUTHGATE_COOKIE_DOMAIN" desc:"session cookie domain; empty means host-only"`
	CookieSecure bool          `envconfig:"AUTHGATE_COOKIE_SECURE" default:"true" desc:"mark cookies Secure; false only for plain-http development"`
	SessionTTL   time.Duration `envconfig:"AUTHGATE_SESSION_TTL" default:"168h" desc:"absolute session lifetime"`
	RefreshSkew  time.Duration `envconfig:"AUTHGATE_REFRESH_SKEW" default:"60s" desc:"refresh the access token when it expires within this long"`

	UpstreamDialTimeout     time.Duration `envconfig:"AUTHGATE_UPSTREAM_DIAL_TIMEOUT" default:"5s" desc:"timeout to connect to the upstream"`
	UpstreamResponseTimeout time.Duration `envconfig:"AUTHGATE_UPSTREAM_RESPONSE_TIMEOUT" default:"60s" desc:"timeout for the upstream's response headers (504 after it)"`
	UpstreamIdleConns       int           `envconfig:"AUTHGATE_UPSTREAM_MAX_IDLE_CONNS" default:"128" desc:"idle keep-alive connections kept to the upstream"`
	UpstreamIdleConnTimeout time.Duration `envconfig:"AUTHGATE_UPSTREAM_IDLE_CONN_TIMEOUT" default:"90s" desc:"how long an idle upstream connection is kept"`
	UpstreamCAFile          string        `envconfig:"AUTHGATE_UPSTREAM_CA_FILE" desc:"PEM bundle trusted for an https:// upstream in addition to the system roots; re-read when it changes"`

	ReadHeaderTimeout time.Duration `envconfig:"AUTHGATE_READ_HEADER_TIMEOUT" default:"10s" desc:"time a client has to send request headers"`
	IdleTimeout       time.Duration `envconfig:"AUTHGATE_IDLE_TIMEOUT" default:"120s" desc:"keep-alive timeout for idle client connections"`
	ShutdownTimeout   time.Duration `envconfig:"AUTHGATE_SHUTDOWN_TIMEOUT" default:"25s" desc:"time in-flight requests get to finish after SIGTERM"`
	RequestIDHeader   string        `envconfig:"AUTHGATE_REQUEST_ID_HEADER" default:"X-Request-Id" desc:"header carrying the request id (accepted from the client, generated otherwise, forwarded)"`

	TLSCertFile string `envconfig:"AUTHGATE_TLS_CERT_FILE" desc:"serve HTTPS (HTTP/2) with this certificate; reloaded when the file changes"`
	TLSKeyFile  string `envconfig:"AUTHGATE_TLS_KEY_FILE" desc:"private key of AUTHGATE_TLS_CERT_FILE"`

	LogLevel  string `envconfig:"AUTHGATE_LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat string `envconfig:"AUTHGATE_LOG_FORMAT" default:"json" desc:"json or text"`
	Pprof     bool   `envconfig:"AUTHGATE_PPROF" default:"false" desc:"serve net/http/pprof under /debug/pprof/ on the internal listener (never on the proxy listener)"`

	PublicPaths          []string `envconfig:"AUTHGATE_PUBLIC_PATHS" desc:"paths served without a session, identity headers removed: comma-separated http.ServeMux patterns, [METHOD ]/path, trailing / = subtree, e.g. GET /static/,/healthz"`
	AllowedEmails        []string `envconfig:"AUTHGATE_ALLOWED_EMAILS" desc:"comma-separated email addresses allowed in; empty with the other two lists empty admits every signed-in user"`
	AllowedEmailDomains  []string `envconfig:"AUTHGATE_ALLOWED_EMAIL_DOMAINS" desc:"comma-separated email domains allowed in, matched exactly at the @ (no subdomains)"`
	AllowedGroups        []string `envconfig:"AUTHGATE_ALLOWED_GROUPS" desc:"comma-separated groups (AUTHGATE_GROUPS_CLAIM) allowed in; a user passes when any list admits them"`
	RoutesFile           string   `envconfig:"AUTHGATE_ROUTES_FILE" desc:"YAML file of ordered routes ({match, public: true | allow: CEL, name}), the first match deciding; replaces AUTHGATE_PUBLIC_PATHS and AUTHGATE_ALLOWED_*; a path no route matches is refused (403)"`
	Routes               string   `envconfig:"AUTHGATE_ROUTES" desc:"the routes of AUTHGATE_ROUTES_FILE inline, e.g. YAML flow syntax on one line for Compose: [{match: /admin/, allow: '\"admins\" in groups'}, {match: /, allow: 'true'}]"`
	BearerAudiences      []string `envconfig:"AUTHGATE_BEARER_AUDIENCES" desc:"accept API clients' own JWT access tokens from the issuer naming one of these audiences (comma-separated); empty turns bearer tokens off"`
	TrustedProxies       []string `envconfig:"AUTHGATE_TRUSTED_PROXIES" desc:"comma-separated CIDRs of proxies in front of authgate whose X-Forwarded-For, -Host, -Proto (passed to the upstream) and, for forward-auth, -Uri, -Method and X-Original-URI, -Method are believed; empty trusts none"`
	PassRoutingHeaders   []string `envconfig:"AUTHGATE_PASS_ROUTING_HEADERS" desc:"routing headers (X-Original-URL, X-Rewrite-URL, X-HTTP-Method-Override, X-HTTP-Method, X-Method-Override) the upstream may still receive from clients; empty removes them all"`
	AllowedRedirectHosts []string `envconfig:"AUTHGATE_ALLOWED_REDIRECT_HOSTS" desc:"hosts (exact, or .example.com for subdomains) a login may return to besides AUTHGATE_REDIRECT_URL's; requires AUTHGATE_COOKIE_DOMAIN covering them"`

	SessionStore        string        `envconfig:"AUTHGATE_SESSION_STORE" default:"cookie" desc:"cookie (the session sealed in the cookie) or redis (sessions shared by replicas; the cookie holds a ticket)"`
	RedisURL            string        `envconfig:"AUTHGATE_REDIS_URL" desc:"redis:// or rediss:// URL (user, password, db) of a standalone Redis; with the cookie store it shares sign-outs and back-channel logouts between replicas"`
	RedisAddrs          []string      `envconfig:"AUTHGATE_REDIS_ADDRS" desc:"comma-separated host:port of Sentinels (with AUTHGATE_REDIS_SENTINEL_MASTER) or Cluster nodes (with AUTHGATE_REDIS_CLUSTER=true)"`
	RedisSentinelMaster string        `envconfig:"AUTHGATE_REDIS_SENTINEL_MASTER" desc:"name of the Sentinel master"`
	RedisCluster        bool          `envconfig:"AUTHGATE_REDIS_CLUSTER" default:"false" desc:"AUTHGATE_REDIS_ADDRS are Redis Cluster nodes"`
	RedisUsername       string        `envconfig:"AUTHGATE_REDIS_USERNAME" desc:"Redis ACL user for AUTHGATE_REDIS_ADDRS (a URL carries its own)"`
	RedisPassword       string        `envconfig:"AUTHGATE_REDIS_PASSWORD" secret:"true" desc:"Redis password for AUTHGATE_REDIS_ADDRS (a URL carries its own)"`
	RedisPasswordFile   string        `envconfig:"AUTHGATE_REDIS_PASSWORD_FILE" desc:"file holding AUTHGATE_REDIS_PASSWORD; re-read when it changes"`
	RedisDB             int           `envconfig:"AUTHGATE_REDIS_DB" default:"0" desc:"database number with Sentinel (a URL carries its own)"`
	RedisTLS            bool          `envconfig:"AUTHGATE_REDIS_TLS" default:"false" desc:"use TLS to AUTHGATE_REDIS_ADDRS (rediss:// implies it)"`
	RedisCacheTTL       time.Duration `envconfig:"AUTHGATE_REDIS_CACHE_TTL" default:"1s" desc:"how long a replica may reuse a session it read from Redis, at most 1m, only while its revocation feed is up (0: every request reads Redis); see the README for the guarantee"`
	RedisCAFile         string        `envconfig:"AUTHGATE_REDIS_CA_FILE" desc:"PEM bundle trusted for Redis TLS in addition to the system roots; re-read when it changes"`

	TraceTrustClient string `envconfig:"AUTHGATE_TRACE_TRUST_CLIENT" default:"trusted-proxies" desc:"whose W3C traceparent is continued: never, trusted-proxies (peers in AUTHGATE_TRUSTED_PROXIES) or always; an untrusted one is dropped (tracing is configured by the standard OTEL_* variables)"`
	AccessLog        bool   `envconfig:"AUTHGATE_ACCESS_LOG" default:"false" desc:"write one structured line per request (method, path, status, bytes, durations, outcome, sub, request and trace id)"`
	AccessLogQuery   bool   `envconfig:"AUTHGATE_ACCESS_LOG_QUERY" default:"false" desc:"include the query string in the access log path (never for authgate's own endpoints)"`

	// Derived by Load; not read from the environment.
	authParams    url.Values
	clientKey     *idp.ClientKey
	cookieKeys    [][]byte
	logLevel      slog.Level
	publicPaths   *access.PublicPaths
	policy        *access.Policy
	routes        *access.Routes
	trusted       *access.TrustedProxies
	redirectHosts *access.RedirectHosts
	traceTrust    proxy.TraceTrust
	tracing       tracingConfig
}

// loadConfig reads the environment and returns the config or an error listing
// every problem, each naming its variable. Secret values never appear in the
// error.
func loadConfig() (*Config, error) {
	var cfg Config
	var problems []error

	// envconfig stops at the first field it cannot parse; process each field
	// on its own so that every unparsable variable is reported at once.
	v := reflect.ValueOf(&cfg).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key := f.Tag.Get("envconfig")
		if key == "" {
			continue
		}
		one := reflect.New(reflect.StructOf([]reflect.StructField{{
			Name: "V", Type: f.Type, Tag: f.Tag,
		}}))
		if err := envconfig.Process("", one.Interface()); err != nil {
			problems = append(problems, parseProblem(key, f, err))
			continue
		}
		v.Field(i).Set(one.Elem().Field(0))
	}

	problems = append(problems, cfg.resolveFiles()...)
	problems = append(problems, cfg.validate()...)
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return &cfg, nil
}

func parseProblem(key string, f reflect.StructField, err error) error {
	var pe *envconfig.ParseError
	if errors.As(err, &pe) {
		kind := pe.TypeName
		if f.Type == reflect.TypeOf(time.Duration(0)) {
			kind = "duration (for example 30s, 5m, 168h)"
		}
		if f.Tag.Get("secret") == "true" {
			return fmt.Errorf("%s: not a valid %s", key, kind)
		}
		return fmt.Errorf("%s: %q is not a valid %s", key, pe.Value, kind)
	}
	return fmt.Errorf("%s: %w", key, err)
}

// resolveFiles fills secrets from their _FILE variants.
func (c *Config) resolveFiles() []error {
	var problems []error
	read := func(valueKey, fileKey string, value *string, file string) {
		if file == "" {
			return
		}
		if *value != "" {
			problems = append(problems, fmt.Errorf("%s and %s: set one, not both", valueKey, fileKey))
			return
		}
		b, err := os.ReadFile(file)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: read secret file: %w", fileKey, err))
			return
		}
		*value = strings.TrimSpace(string(b))
		if *value == "" {
			problems = append(problems, fmt.Errorf("%s: file %s is empty", fileKey, file))
		}
	}
	read("AUTHGATE_CLIENT_SECRET", "AUTHGATE_CLIENT_SECRET_FILE", &c.ClientSecret, c.ClientSecretFile)
	read("AUTHGATE_COOKIE_SECRET", "AUTHGATE_COOKIE_SECRET_FILE", &c.CookieSecret, c.CookieSecretFile)
	read("AUTHGATE_REDIS_PASSWORD", "AUTHGATE_REDIS_PASSWORD_FILE", &c.RedisPassword, c.RedisPasswordFile)
	return problems
}

// watchedFileVariables names the set …_FILE variables whose files are
// watched for changes.
func (c *Config) watchedFileVariables() []string {
	var vars []string
	for _, f := range []struct{ key, file string }{
		{"AUTHGATE_CLIENT_SECRET_FILE", c.ClientSecretFile},
		{"AUTHGATE_CLIENT_PRIVATE_KEY_FILE", c.ClientKeyFile},
		{"AUTHGATE_COOKIE_SECRET_FILE", c.CookieSecretFile},
		{"AUTHGATE_REDIS_PASSWORD_FILE", c.RedisPasswordFile},
		{"AUTHGATE_OIDC_CA_FILE", c.OIDCCAFile},
		{"AUTHGATE_UPSTREAM_CA_FILE", c.UpstreamCAFile},
		{"AUTHGATE_REDIS_CA_FILE", c.RedisCAFile},
	} {
		if f.file != "" {
			vars = append(vars, f.key)
		}
	}
	return vars
}

// validate checks every setting and returns one error per problem.
func (c *Config) validate() []error {
	var problems []error
	add := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }

	if c.Upstream == "" {
		add("AUTHGATE_UPSTREAM: required")
	} else if u, err := url.Parse(c.Upstream); err != nil {
		add("AUTHGATE_UPSTREAM: not a URL: %v", errors.Unwrap(err))
	} else {
		switch u.Scheme {
		case "http", "https", "h2c":
			if u.Host == "" {
				add("AUTHGATE_UPSTREAM: %q has no host", c.Upstream)
			}
		case "unix":
			if u.Path == "" {
				add("AUTHGATE_UPSTREAM: %q has no socket path (want unix:///path/to.sock)", c.Upstream)
			}
		default:
			add("AUTHGATE_UPSTREAM: scheme %q not supported (want http, https, h2c or unix)", u.Scheme)
		}
		if u.User != nil {
			add("AUTHGATE_UPSTREAM: must not carry credentials")
		}
	}

	if c.IssuerURL == "" {
		add("AUTHGATE_OIDC_ISSUER_URL: required")
	} else if err := checkAbsoluteURL(c.IssuerURL); err != nil {
		add("AUTHGATE_OIDC_ISSUER_URL: %v", err)
	}
	if c.ClientID == "" {
		add("AUTHGATE_CLIENT_ID: required")
	}
	if c.RedirectURL == "" {
		add("AUTHGATE_REDIRECT_URL: required")
	} else if err := checkAbsoluteURL(c.RedirectURL); err != nil {
		add("AUTHGATE_REDIRECT_URL: %v", err)
	} else if u, _ := url.Parse(c.RedirectURL); u.Path != strings.TrimSuffix(c.PathPrefix, "/")+"/callback" {
		add("AUTHGATE_REDIRECT_URL: path %q must be %s/callback (AUTHGATE_PATH_PREFIX)", u.Path, strings.TrimSuffix(c.PathPrefix, "/"))
	}
	if c.EndSessionURL != "" {
		if err := checkAbsoluteURL(c.EndSessionURL); err != nil {
			add("AUTHGATE_END_SESSION_URL: %v", err)
		}
	}
	if c.PostLogoutRedirectURL != "" {
		if err := checkAbsoluteURL(c.PostLogoutRedirectURL); err != nil {
			add("AUTHGATE_POST_LOGOUT_REDIRECT_URL: %v", err)
		}
	}

	if c.CookieSecret == "" {
		add("AUTHGATE_COOKIE_SECRET: required (generate one with: head -c32 /dev/urandom | base64)")
	} else {
		c.cookieKeys = nil
		for i, part := range strings.Split(c.CookieSecret, ",") {
			key, err := decodeKey(strings.TrimSpace(part))
			if err != nil {
				add("AUTHGATE_COOKIE_SECRET: key %d: %v", i+1, err)
				continue
			}
			c.cookieKeys = append(c.cookieKeys, key)
		}
	}

	if !strings.HasPrefix(c.PathPrefix, "/") || strings.ContainsAny(c.PathPrefix, "?#\\ ") || strings.Contains(c.PathPrefix, "..") {
		add("AUTHGATE_PATH_PREFIX: %q must be an absolute path such as /oauth2", c.PathPrefix)
	}
	if c.PathPrefix == "/" {
		add("AUTHGATE_PATH_PREFIX: \"/\" would hide the whole upstream")
	}
	if len(c.Scopes) == 0 || !contains(c.Scopes, "openid") {
		add("AUTHGATE_SCOPES: must include openid")
	}
	if err := idp.CheckPrompt(c.Prompt); err != nil {
		for _, e := range unjoin(err) {
			add("AUTHGATE_PROMPT: %v", e)
		}
	}
	if params, err := idp.ParseAuthParams(c.AuthParams); err != nil {
		for _, e := range unjoin(err) {
			add("AUTHGATE_AUTH_PARAMS: %v", e)
		}
	} else {
		c.authParams = params
	}
	for key, claim := range map[string]string{"AUTHGATE_GROUPS_CLAIM": c.GroupsClaim, "AUTHGATE_USER_CLAIM": c.UserClaim, "AUTHGATE_EMAIL_CLAIM": c.EmailClaim} {
		if strings.TrimSpace(claim) == "" {
			add("%s: must not be empty", key)
		} else if strings.HasPrefix(claim, ".") || strings.HasSuffix(claim, ".") || strings.Contains(claim, "..") {
			add("%s: %q has an empty path step", key, claim)
		}
	}
	if c.CookieName == "" || strings.ContainsAny(c.CookieName, "=;, \t\"\\") || strings.HasPrefix(c.CookieName, "__") {
		add("AUTHGATE_COOKIE_NAME: %q is not a valid cookie name (letters, digits, - and _; no __ prefix)", c.CookieName)
	}
	if c.CookieDomain != "" && strings.ContainsAny(c.CookieDomain, "/:; ") {
		add("AUTHGATE_COOKIE_DOMAIN: %q is not a domain", c.CookieDomain)
	}
	if c.SessionTTL < time.Minute {
		add("AUTHGATE_SESSION_TTL: %s is too short (at least 1m)", c.SessionTTL)
	}
	if c.RefreshSkew < 0 {
		add("AUTHGATE_REFRESH_SKEW: must not be negative")
	}
	for key, d := range map[string]time.Duration{
		"AUTHGATE_OIDC_TIMEOUT":               c.OIDCTimeout,
		"AUTHGATE_UPSTREAM_DIAL_TIMEOUT":      c.UpstreamDialTimeout,
		"AUTHGATE_UPSTREAM_RESPONSE_TIMEOUT":  c.UpstreamResponseTimeout,
		"AUTHGATE_UPSTREAM_IDLE_CONN_TIMEOUT": c.UpstreamIdleConnTimeout,
		"AUTHGATE_READ_HEADER_TIMEOUT":        c.ReadHeaderTimeout,
		"AUTHGATE_IDLE_TIMEOUT":               c.IdleTimeout,
		"AUTHGATE_SHUTDOWN_TIMEOUT":           c.ShutdownTimeout,
	} {
		if d <= 0 {
			add("%s: must be positive", key)
		}
	}
	if c.UpstreamIdleConns < 0 {
		add("AUTHGATE_UPSTREAM_MAX_IDLE_CONNS: must not be negative")
	}
	if c.RequestIDHeader == "" {
		add("AUTHGATE_REQUEST_ID_HEADER: must not be empty")
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		add("AUTHGATE_TLS_CERT_FILE and AUTHGATE_TLS_KEY_FILE: set both or neither")
	}
	for key, addr := range map[string]string{"AUTHGATE_LISTEN_ADDR": c.ListenAddr, "AUTHGATE_INTERNAL_ADDR": c.InternalAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			add("%s: %q is not host:port", key, addr)
		}
	}
	if err := c.logLevel.UnmarshalText([]byte(c.LogLevel)); err != nil {
		add("AUTHGATE_LOG_LEVEL: %q is not one of debug, info, warn, error", c.LogLevel)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		add("AUTHGATE_LOG_FORMAT: %q is not json or text", c.LogFormat)
	}
	problems = append(problems, c.validateClientKey()...)
	problems = append(problems, c.validateAccess()...)
	problems = append(problems, c.validateRedis()...)
	problems = append(problems, c.validateTelemetry()...)
	// Sort for a stable message; map iteration above is random.
	sortErrors(problems)
	return problems
}

// validateRoutes reads and compiles AUTHGATE_ROUTES_FILE or
// AUTHGATE_ROUTES, one problem per route error. Routes replace the public
// paths and allow-lists, so setting both kinds is an error naming both.
func (c *Config) validateRoutes() []error {
	var problems []error
	add := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	var key string
	var src []byte
	switch {
	case c.RoutesFile != "" && c.Routes != "":
		add("AUTHGATE_ROUTES and AUTHGATE_ROUTES_FILE: set one, not both")
		return problems
	case c.RoutesFile != "":
		key = "AUTHGATE_ROUTES_FILE"
		b, err := os.ReadFile(c.RoutesFile)
		if err != nil {
			add("%s: read routes: %w", key, err)
			return problems
		}
		src = b
	case c.Routes != "":
		key, src = "AUTHGATE_ROUTES", []byte(c.Routes)
	default:
		return nil
	}
	var legacy []string
	for _, v := range []struct {
		key  string
		list []string
	}{
		{"AUTHGATE_PUBLIC_PATHS", c.PublicPaths},
		{"AUTHGATE_ALLOWED_EMAILS", c.AllowedEmails},
		{"AUTHGATE_ALLOWED_EMAIL_DOMAINS", c.AllowedEmailDomains},
		{"AUTHGATE_ALLOWED_GROUPS", c.AllowedGroups},
	} {
		if len(v.list) > 0 {
			legacy = append(legacy, v.key)
		}
	}
	if len(legacy) > 0 {
		add("%s and %s: routes replace the public paths and allow-lists; write them as routes (README: Routes) and set only one kind",
			key, strings.Join(legacy, ", "))
	}
	specs, err := access.ParseRouteSpecs(src)
	if err != nil {
		add("%s: %w", key, err)
		return problems
	}
	routes, err := access.CompileRoutes(specs)
	if err != nil {
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range joined.Unwrap() {
				add("%s: %w", key, e)
			}
		} else {
			add("%s: %w", key, err)
		}
		return problems
	}
	if len(legacy) == 0 {
		c.routes, c.publicPaths, c.policy = routes, nil, nil
	}
	return problems
}

// validateAccess checks the access-control variables and builds their
// decision values.
func (c *Config) validateAccess() []error {
	var problems []error
	add := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	for _, list := range []*[]string{&c.PublicPaths, &c.AllowedEmails, &c.AllowedEmailDomains, &c.AllowedGroups,
		&c.BearerAudiences, &c.TrustedProxies, &c.AllowedRedirectHosts, &c.PassRoutingHeaders} {
		*list = trimList(*list)
	}

	var err error
	if c.publicPaths, err = access.ParsePublicPaths(c.PublicPaths); err != nil {
		add("AUTHGATE_PUBLIC_PATHS: %v", err)
	}
	// One policy from three variables: each entry is checked on its own so
	// that the message names the right variable.
	for _, v := range []struct {
		key                    string
		emails, domains, group []string
	}{
		{"AUTHGATE_ALLOWED_EMAILS", c.AllowedEmails, nil, nil},
		{"AUTHGATE_ALLOWED_EMAIL_DOMAINS", nil, c.AllowedEmailDomains, nil},
		{"AUTHGATE_ALLOWED_GROUPS", nil, nil, c.AllowedGroups},
	} {
		if _, err := access.NewPolicy(v.emails, v.domains, v.group); err != nil {
			add("%s: %v", v.key, err)
		}
	}
	if c.policy, err = access.NewPolicy(c.AllowedEmails, c.AllowedEmailDomains, c.AllowedGroups); err != nil {
		c.policy = nil
	}
	problems = append(problems, c.validateRoutes()...)
	for _, aud := range c.BearerAudiences {
		switch {
		case aud == "":
			add("AUTHGATE_BEARER_AUDIENCES: empty entry")
		case aud == c.ClientID:
			// The ID tokens authgate receives carry this audience, and they
			// travel in the browser (id_token_hint at sign-out).
			add("AUTHGATE_BEARER_AUDIENCES: %q is AUTHGATE_CLIENT_ID, the audience of authgate's own ID tokens; give the API an audience of its own", aud)
		}
	}
	if c.trusted, err = access.ParseTrustedProxies(c.TrustedProxies); err != nil {
		add("AUTHGATE_TRUSTED_PROXIES: %v", err)
	}
	if err := upstream.CheckRoutingHeaders(c.PassRoutingHeaders); err != nil {
		add("AUTHGATE_PASS_ROUTING_HEADERS: %v", err)
	}

	// The post-login redirect may name AUTHGATE_REDIRECT_URL's own origin
	// and the listed hosts.
	hosts := c.AllowedRedirectHosts
	if u, err := url.Parse(c.RedirectURL); err == nil && u.Host != "" {
		hosts = append(hosts[:len(hosts):len(hosts)], u.Host)
	}
	if c.redirectHosts, err = access.NewRedirectHosts(hosts); err != nil {
		add("AUTHGATE_ALLOWED_REDIRECT_HOSTS: %v", err)
	} else {
		c.redirectHosts.InsecureAllowHTTP = !c.CookieSecure
	}
	if len(c.AllowedRedirectHosts) > 0 {
		// A login returning to a host the session cookie is not sent to
		// would start the next login at once: a loop.
		domain := strings.TrimPrefix(strings.ToLower(c.CookieDomain), ".")
		if domain == "" {
			add("AUTHGATE_ALLOWED_REDIRECT_HOSTS: needs AUTHGATE_COOKIE_DOMAIN, so that the session cookie reaches the hosts a login returns to")
		} else {
			for _, h := range c.AllowedRedirectHosts {
				if !withinDomain(h, domain) {
					add("AUTHGATE_ALLOWED_REDIRECT_HOSTS: %q is outside AUTHGATE_COOKIE_DOMAIN %q: the session cookie would not reach it", h, domain)
				}
			}
			if u, err := url.Parse(c.RedirectURL); err == nil && u.Host != "" && !withinDomain(u.Host, domain) {
				add("AUTHGATE_COOKIE_DOMAIN: %q does not cover AUTHGATE_REDIRECT_URL's host %q, which must receive the login-flow cookie", domain, u.Hostname())
			}
		}
	}
	return problems
}

// trimList drops the spaces around each entry of a comma-separated list
// ("a, b"); an entry left empty stays, for the parser to report.
func trimList(list []string) []string {
	if len(list) == 1 && strings.TrimSpace(list[0]) == "" {
		return nil
	}
	for i := range list {
		list[i] = strings.TrimSpace(list[i])
	}
	return list
}

// withinDomain reports whether a redirect-host entry (host[:port] or
// .suffix[:port]) lies within the cookie domain.
func withinDomain(entry, domain string) bool {
	host := strings.ToLower(entry)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimPrefix(host, ".")
	return host == domain || strings.HasSuffix(host, "."+domain)
}

func checkAbsoluteURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("%q must be an absolute http(s) URL", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q must not have a fragment or credentials", s)
	}
	return nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != 32 {
				return nil, fmt.Errorf("decodes to %d bytes, want 32", len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("not valid base64")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func sortErrors(errs []error) {
	for i := 1; i < len(errs); i++ {
		for j := i; j > 0 && errs[j].Error() < errs[j-1].Error(); j-- {
			errs[j], errs[j-1] = errs[j-1], errs[j]
		}
	}
}

// printHelp writes every variable with its default and meaning.
func printHelp(w io.Writer) {
	fmt.Fprint(w, `authgate: an authenticating reverse proxy (OpenID Connect).

Usage:
  authgate              run the proxy, configured by the environment variables below
  authgate check        check the configuration, the provider, Redis and the upstream, then exit
  authgate healthcheck  probe http://AUTHGATE_INTERNAL_ADDR/healthz (for container healthchecks)
  authgate demo         run a self-contained demo (built-in identity provider and upstream)
  authgate --help       print this help

Environment variables (a secret may also be given as a file with the _FILE variant):
`)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  VARIABLE\tDEFAULT\tMEANING")
	for _, v := range configVariables() {
		def := v.Default
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.Name, def, v.Description)
	}
	tw.Flush()
	fmt.Fprintf(w, `
Tracing (OpenTelemetry, off unless an OTLP endpoint is set) reads the standard variables:
  %s
and the batch processor's OTEL_BSP_* variables. Spans are sent over OTLP/HTTP with
protobuf only (PROTOCOL http/protobuf); grpc and http/json are refused, to keep the
binary small.
`, strings.Join(otelVariables, "\n  "))
}

// configVariable describes one environment variable.
type configVariable struct {
	Name, Default, Description string
}

// configVariables lists every variable Config reads, in declaration order.
func configVariables() []configVariable {
	var vars []configVariable
	t := reflect.TypeOf(Config{})
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := f.Tag.Get("envconfig")
		if name == "" {
			continue
		}
		vars = append(vars, configVariable{Name: name, Default: f.Tag.Get("default"), Description: f.Tag.Get("desc")})
	}
	return vars
}

// validateRedis checks the session store and Redis settings. The Redis
// client itself is built by redisstore.NewClient, which checks the rest.
func (c *Config) validateRedis() []error {
	var problems []error
	add := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	switch c.SessionStore {
	case "cookie":
	case "redis":
		if c.RedisURL == "" && len(c.RedisAddrs) == 0 {
			add("AUTHGATE_SESSION_STORE: redis needs AUTHGATE_REDIS_URL or AUTHGATE_REDIS_ADDRS")
		}
	default:
		add("AUTHGATE_SESSION_STORE: %q is not cookie or redis", c.SessionStore)
	}
	if c.RedisURL != "" {
		// Never echo the URL: it may carry a password.
		if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			add("AUTHGATE_REDIS_URL: not a redis:// or rediss:// URL with a host")
		}
		if len(c.RedisAddrs) > 0 {
			add("AUTHGATE_REDIS_URL and AUTHGATE_REDIS_ADDRS: set one, not both")
		}
	}
	if len(c.RedisAddrs) > 0 {
		if (c.RedisSentinelMaster == "") == !c.RedisCluster {
			add("AUTHGATE_REDIS_ADDRS: set AUTHGATE_REDIS_SENTINEL_MASTER (Sentinel) or AUTHGATE_REDIS_CLUSTER=true (Cluster), not both or neither")
		}
		for _, a := range c.RedisAddrs {
			if _, _, err := net.SplitHostPort(strings.TrimSpace(a)); err != nil {
				add("AUTHGATE_REDIS_ADDRS: %q is not host:port", a)
			}
		}
	}
	if c.RedisDB < 0 {
		add("AUTHGATE_REDIS_DB: must not be negative")
	}
	if c.RedisCacheTTL < 0 || c.RedisCacheTTL > time.Minute {
		add("AUTHGATE_REDIS_CACHE_TTL: %s is outside 0 to 1m", c.RedisCacheTTL)
	}
	return problems
}

// validateClientKey checks private_key_jwt client authentication and reads
// the key. The key is never part of a message.
func (c *Config) validateClientKey() []error {
	var problems []error
	add := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	c.clientKey = nil
	switch c.ClientAuthMethod {
	case "":
	case "client_secret_basic", "client_secret_post":
		if c.ClientSecret == "" {
			add("AUTHGATE_CLIENT_AUTH_METHOD: %s needs AUTHGATE_CLIENT_SECRET (or AUTHGATE_CLIENT_SECRET_FILE)", c.ClientAuthMethod)
		}
	default:
		add("AUTHGATE_CLIENT_AUTH_METHOD: %q is not client_secret_basic or client_secret_post (private_key_jwt follows from AUTHGATE_CLIENT_PRIVATE_KEY_FILE, none from an empty secret)", c.ClientAuthMethod)
	}
	if c.ClientKeyFile == "" {
		if c.ClientKeyID != "" {
			add("AUTHGATE_CLIENT_KEY_ID: set without AUTHGATE_CLIENT_PRIVATE_KEY_FILE")
		}
		return problems
	}
	if c.ClientSecret != "" {
		add("AUTHGATE_CLIENT_PRIVATE_KEY_FILE and AUTHGATE_CLIENT_SECRET (or AUTHGATE_CLIENT_SECRET_FILE): set one, not both")
	}
	b, err := os.ReadFile(c.ClientKeyFile)
	if err != nil {
		add("AUTHGATE_CLIENT_PRIVATE_KEY_FILE: read key file: %v", err)
		return problems
	}
	if c.clientKey, err = idp.ParseClientKey(b, c.ClientKeyID); err != nil {
		add("AUTHGATE_CLIENT_PRIVATE_KEY_FILE: %s: %v", c.ClientKeyFile, err)
	}
	return problems
}

// validateTelemetry checks AUTHGATE_TRACE_TRUST_CLIENT and the OTEL_*
// variables of tracing.
func (c *Config) validateTelemetry() []error {
	var problems []error
	switch c.TraceTrustClient {
	case "trusted-proxies":
		c.traceTrust = proxy.TraceTrustProxies
	case "never":
		c.traceTrust = proxy.TraceTrustNever
	case "always":
		c.traceTrust = proxy.TraceTrustAlways
	default:
		problems = append(problems, fmt.Errorf("AUTHGATE_TRACE_TRUST_CLIENT: %q is not never, trusted-proxies or always", c.TraceTrustClient))
	}
	var errs []error
	c.tracing, errs = validateTracing(os.Getenv)
	return append(problems, errs...)
}
