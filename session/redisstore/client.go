package redisstore

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
)

// Connection defaults. They are short on purpose: when Redis is gone a
// request should get a 503 within a couple of seconds, not hang for the
// client library's defaults (5 s per read, five dial attempts per
// connection, three retries per command).
const (
	// DefaultDialTimeout bounds one connection attempt when
	// ClientOptions.DialTimeout is zero.
	DefaultDialTimeout = 2 * time.Second
	// DefaultReadTimeout bounds reading one reply when
	// ClientOptions.ReadTimeout is zero.
	DefaultReadTimeout = time.Second
	// DefaultWriteTimeout bounds writing one command when
	// ClientOptions.WriteTimeout is zero.
	DefaultWriteTimeout = time.Second
	// dialAttempts and commandRetries bound the worst case against an
	// address that drops packets to (1+commandRetries) × DialTimeout.
	// Against a refused connection every attempt fails at once; after
	// PoolSize failed dials go-redis fails fast and probes in the
	// background, so the client recovers on its own when Redis is back.
	dialAttempts   = 1
	commandRetries = 1
)

// ClientOptions says how to reach Redis. Exactly one mode must be chosen:
//
//   - URL (AUTHGATE_REDIS_URL): one server, redis:// or rediss:// (TLS),
//     with user, password and database number in the URL;
//   - Addrs with SentinelMaster (AUTHGATE_REDIS_ADDRS and
//     AUTHGATE_REDIS_SENTINEL_MASTER): Sentinel, Addrs are the sentinels;
//   - Cluster (AUTHGATE_REDIS_CLUSTER=true) with Addrs, or with a URL
//     whose host is one seed node (its user, password and TLS apply to
//     every node).
//
// The zero value configures nothing: NewClient returns an error for it.
type ClientOptions struct {
	// URL is redis://[user[:password]@]host[:port][/db] or rediss://….
	// go-redis query parameters (dial_timeout=…, pool_size=…) are
	// honoured; the fields below override them when set.
	URL string
	// Addrs are host:port pairs: the sentinels with SentinelMaster, seed
	// nodes with Cluster.
	Addrs []string
	// SentinelMaster is the name the sentinels monitor the master under.
	SentinelMaster string
	// Cluster selects Redis Cluster.
	Cluster bool

	// Username and Password authenticate to the Redis servers (ACL user,
	// or requirepass with an empty Username). With a URL they fill in what
	// the URL leaves out; setting one in both places is an error, so a
	// password read from a file cannot silently lose to the URL's.
	Username string
	Password string
	// PasswordFunc, when set, is asked for the password each time a new
	// connection authenticates (a rotated password file), and Password must
	// be empty. Connections already open stay authenticated.
	PasswordFunc func() string
	// SentinelUsername and SentinelPassword authenticate to the sentinels;
	// empty means the sentinels need no authentication.
	SentinelUsername string
	SentinelPassword string
	// DB selects a database for Addrs with SentinelMaster; a URL carries
	// its own (the path), and Cluster has only database 0.
	DB int

	// TLS, when non-nil, is used for every connection. rediss:// implies
	// TLS with the system roots; set TLS to trust a private CA or present
	// a client certificate. TLS with a redis:// URL is an error (the URL
	// says plain text). An empty ServerName is taken from each server's
	// address.
	TLS *tls.Config

	// DialTimeout, ReadTimeout and WriteTimeout bound each connection
	// attempt and each command; zero means DefaultDialTimeout,
	// DefaultReadTimeout and DefaultWriteTimeout (or the URL's value).
	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// PoolSize is the number of connections per server; zero means the
	// go-redis default (10 per GOMAXPROCS).
	PoolSize int

	// TracerProvider, when set, makes a client span of every command run
	// for a traced request (its context holds a recording span); nil
	// traces nothing.
	TracerProvider trace.TracerProvider
}

// NewClient returns a client for o: a *redis.Client for a URL, a failover
// client for Sentinel, a *redis.ClusterClient for Cluster. It does not
// connect; the first command does (use Store.Ping for readiness). Errors
// name the AUTHGATE_REDIS_* setting at fault and never contain a password.
func NewClient(o ClientOptions) (redis.UniversalClient, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.URL != "" {
		c, err := o.urlClient()
		if err != nil {
			return nil, o.Redact(err)
		}
		o.trace(c)
		return c, nil
	}
	u := &redis.UniversalOptions{
		Addrs:                   o.Addrs,
		Username:                o.Username,
		Password:                o.Password,
		SentinelUsername:        o.SentinelUsername,
		SentinelPassword:        o.SentinelPassword,
		DB:                      o.DB,
		MasterName:              o.SentinelMaster,
		IsClusterMode:           o.Cluster,
		TLSConfig:               o.TLS,
		DialTimeout:             or(o.DialTimeout, DefaultDialTimeout),
		ReadTimeout:             or(o.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:            or(o.WriteTimeout, DefaultWriteTimeout),
		DialerRetries:           dialAttempts,
		MaxRetries:              commandRetries,
		PoolSize:                o.PoolSize,
		ContextTimeoutEnabled:   true,
		ReadBufferSize:          connBufferSize,
		WriteBufferSize:         connBufferSize,
		PipelineReadBufferSize:  connBufferSize,
		PipelineWriteBufferSize: connBufferSize,
	}
	if o.PasswordFunc != nil {
		u.CredentialsProvider = credentials(o.Username, o.PasswordFunc)
	}
	c := redis.NewUniversalClient(u)
	o.trace(c)
	return c, nil
}

// trace adds the tracing hook when o has a TracerProvider.
func (o ClientOptions) trace(c redis.UniversalClient) {
	if o.TracerProvider != nil {
		c.AddHook(tracingHook{tracer: o.TracerProvider.Tracer(tracerName)})
	}
}

// connBufferSize sizes each connection's read and write buffers, pipeline
// connections' included. go-redis defaults to 32 KiB each way and 128 KiB
// for pipelines, sized for large values; a sealed session is a few KB, so
// 8 KiB holds a whole reply and saves about 56 KiB per pooled connection
// (20 connections on two cores) and 240 KiB per pipeline connection
// (issue 12: the Redis store's peak RSS).
const connBufferSize = 8 << 10

// validate reports every problem with o, naming the settings involved.
func (o ClientOptions) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch {
	case o.URL == "" && len(o.Addrs) == 0:
		add("redisstore: no server configured: set AUTHGATE_REDIS_URL, or AUTHGATE_REDIS_ADDRS with AUTHGATE_REDIS_SENTINEL_MASTER or AUTHGATE_REDIS_CLUSTER=true")
	case o.URL != "" && len(o.Addrs) > 0:
		add("redisstore: AUTHGATE_REDIS_URL and AUTHGATE_REDIS_ADDRS are both set: choose one")
	case len(o.Addrs) > 0 && o.SentinelMaster == "" && !o.Cluster:
		add("redisstore: AUTHGATE_REDIS_ADDRS needs AUTHGATE_REDIS_SENTINEL_MASTER (Sentinel) or AUTHGATE_REDIS_CLUSTER=true (Cluster); for one server use AUTHGATE_REDIS_URL")
	}
	if o.SentinelMaster != "" && o.Cluster {
		add("redisstore: AUTHGATE_REDIS_SENTINEL_MASTER and AUTHGATE_REDIS_CLUSTER=true are both set: choose one")
	}
	if o.SentinelMaster != "" && o.URL != "" {
		add("redisstore: AUTHGATE_REDIS_SENTINEL_MASTER needs the sentinel addresses in AUTHGATE_REDIS_ADDRS, not AUTHGATE_REDIS_URL")
	}
	for _, a := range o.Addrs {
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
			add("redisstore: AUTHGATE_REDIS_ADDRS entry %q is not host:port", a)
		}
	}
	if o.Password != "" && o.PasswordFunc != nil {
		add("redisstore: Password and PasswordFunc are both set: keep one")
	}
	if o.DB < 0 {
		add("redisstore: database %d is negative", o.DB)
	}
	if o.DB != 0 && (o.URL != "" || o.Cluster) {
		add("redisstore: a database number applies only to Sentinel: put it in the AUTHGATE_REDIS_URL path; Cluster has only database 0")
	}
	for _, d := range [...]struct {
		name string
		v    time.Duration
	}{{"dial", o.DialTimeout}, {"read", o.ReadTimeout}, {"write", o.WriteTimeout}} {
		if d.v < 0 {
			add("redisstore: %s timeout %v is negative", d.name, d.v)
		}
	}
	if o.PoolSize < 0 {
		add("redisstore: pool size %d is negative", o.PoolSize)
	}
	if o.URL != "" {
		// Never print the URL: it may carry a password.
		u, err := url.Parse(o.URL)
		switch {
		case err != nil:
			add("redisstore: AUTHGATE_REDIS_URL is not a valid URL")
		case u.Scheme != "redis" && u.Scheme != "rediss":
			add("redisstore: AUTHGATE_REDIS_URL scheme must be redis or rediss")
		case u.Host == "":
			add("redisstore: AUTHGATE_REDIS_URL has no host")
		default:
			if _, ok := u.User.Password(); ok && (o.Password != "" || o.PasswordFunc != nil) {
				add("redisstore: a password is both in AUTHGATE_REDIS_URL and set on its own: keep one")
			}
			if u.User.Username() != "" && o.Username != "" {
				add("redisstore: a user name is both in AUTHGATE_REDIS_URL and set on its own: keep one")
			}
			if u.Scheme == "redis" && o.TLS != nil {
				add("redisstore: TLS is configured but AUTHGATE_REDIS_URL is redis://: use rediss://")
			}
			if o.Cluster && u.Path != "" && u.Path != "/" && u.Path != "/0" {
				add("redisstore: Cluster has only database 0: remove the database from AUTHGATE_REDIS_URL")
			}
		}
	}
	return errors.Join(errs...)
}

// urlClient builds the client for a URL, standalone or Cluster.
func (o ClientOptions) urlClient() (redis.UniversalClient, error) {
	if o.Cluster {
		co, err := redis.ParseClusterURL(o.URL)
		if err != nil {
			return nil, fmt.Errorf("redisstore: parse AUTHGATE_REDIS_URL: %w", err)
		}
		if o.Username != "" {
			co.Username = o.Username
		}
		if o.Password != "" {
			co.Password = o.Password
		}
		if co.TLSConfig != nil {
			// go-redis pins ServerName to the seed host; every other node
			// must be verified against its own address instead.
			co.TLSConfig = tlsConfig(o.TLS)
		}
		co.DialTimeout = pick(o.DialTimeout, co.DialTimeout, DefaultDialTimeout)
		co.ReadTimeout = pick(o.ReadTimeout, co.ReadTimeout, DefaultReadTimeout)
		co.WriteTimeout = pick(o.WriteTimeout, co.WriteTimeout, DefaultWriteTimeout)
		co.DialerRetries = or(co.DialerRetries, dialAttempts)
		co.MaxRetries = or(co.MaxRetries, commandRetries)
		co.PoolSize = or(o.PoolSize, co.PoolSize)
		co.ContextTimeoutEnabled = true
		if o.PasswordFunc != nil {
			co.CredentialsProvider = credentials(co.Username, o.PasswordFunc)
		}
		co.ReadBufferSize, co.WriteBufferSize = or(co.ReadBufferSize, connBufferSize), or(co.WriteBufferSize, connBufferSize)
		co.PipelineReadBufferSize = or(co.PipelineReadBufferSize, connBufferSize)
		co.PipelineWriteBufferSize = or(co.PipelineWriteBufferSize, connBufferSize)
		return redis.NewClusterClient(co), nil
	}
	ro, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("redisstore: parse AUTHGATE_REDIS_URL: %w", err)
	}
	if o.Username != "" {
		ro.Username = o.Username
	}
	if o.Password != "" {
		ro.Password = o.Password
	}
	if ro.TLSConfig != nil && o.TLS != nil {
		c := tlsConfig(o.TLS)
		if c.ServerName == "" {
			c.ServerName = ro.TLSConfig.ServerName
		}
		ro.TLSConfig = c
	}
	ro.DialTimeout = pick(o.DialTimeout, ro.DialTimeout, DefaultDialTimeout)
	ro.ReadTimeout = pick(o.ReadTimeout, ro.ReadTimeout, DefaultReadTimeout)
	ro.WriteTimeout = pick(o.WriteTimeout, ro.WriteTimeout, DefaultWriteTimeout)
	ro.DialerRetries = or(ro.DialerRetries, dialAttempts)
	ro.MaxRetries = or(ro.MaxRetries, commandRetries)
	ro.PoolSize = or(o.PoolSize, ro.PoolSize)
	ro.ContextTimeoutEnabled = true
	if o.PasswordFunc != nil {
		ro.CredentialsProvider = credentials(ro.Username, o.PasswordFunc)
	}
	ro.ReadBufferSize, ro.WriteBufferSize = or(ro.ReadBufferSize, connBufferSize), or(ro.WriteBufferSize, connBufferSize)
	ro.PipelineReadBufferSize = or(ro.PipelineReadBufferSize, connBufferSize)
	ro.PipelineWriteBufferSize = or(ro.PipelineWriteBufferSize, connBufferSize)
	return redis.NewClient(ro), nil
}

// credentials is a go-redis CredentialsProvider: it is asked on every new
// connection, so a rotated password applies without a restart.
func credentials(username string, password func() string) func() (string, string) {
	return func() (string, string) { return username, password() }
}

// tlsConfig returns a copy of c (or a fresh config for nil) with at least
// TLS 1.2.
func tlsConfig(c *tls.Config) *tls.Config {
	if c == nil {
		return &tls.Config{MinVersion: tls.VersionTLS12}
	}
	c = c.Clone()
	if c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}

// or returns v, or def when v is zero.
func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// pick returns the explicit setting, else the URL's, else the default.
func pick(explicit, fromURL, def time.Duration) time.Duration {
	return or(explicit, or(fromURL, def))
}

// urlPassword returns the password in raw, or "" when it has none or does
// not parse.
func urlPassword(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return ""
	}
	p, _ := u.User.Password()
	return p
}

// Redact returns err with every password of o (explicit, Sentinel, in the
// URL) replaced, for errors that go to a person: go-redis messages name
// addresses, not passwords, but no library message is trusted to.
func (o ClientOptions) Redact(err error) error {
	current := ""
	if o.PasswordFunc != nil {
		current = o.PasswordFunc()
	}
	return redact(err, o.Password, current, o.SentinelPassword, urlPassword(o.URL))
}

// redact returns err with every non-empty secret replaced, so that no
// library error message can carry a password into logs. The result no
// longer wraps err: it is only ever a configuration error to print.
func redact(err error, secrets ...string) error {
	msg := err.Error()
	changed := false
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
			changed = true
		}
	}
	if !changed {
		return err
	}
	return errors.New(msg)
}
