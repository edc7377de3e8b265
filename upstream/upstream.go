// Package upstream forwards requests to the protected application: an
// httputil.ReverseProxy whose Rewrite sets the user's bearer token and
// identity headers after deleting every client-sent copy of them.
package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Identity is what authgate tells the upstream about the user. A nil Identity
// (public paths) forwards the request with every identity header removed.
type Identity struct {
	AccessToken       string
	User              string // X-Forwarded-User: the subject
	Email             string
	PreferredUsername string
	Groups            []string
}

type identityKey struct{}

// WithIdentity returns a context that makes the proxy forward id.
func WithIdentity(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

func identityFrom(ctx context.Context) *Identity {
	id, _ := ctx.Value(identityKey{}).(*Identity)
	return id
}

// ErrInvalidTarget is wrapped by New when Options.Target cannot be used.
var ErrInvalidTarget = errors.New("upstream: invalid target")

// Default values of the Options fields left zero.
const (
	DefaultDialTimeout           = 5 * time.Second
	DefaultResponseHeaderTimeout = 60 * time.Second
	DefaultMaxIdleConnsPerHost   = 128
	DefaultIdleConnTimeout       = 90 * time.Second
	DefaultRequestIDHeader       = "X-Request-Id"
)

// Options configures a Proxy. Only Target is required.
type Options struct {
	// Target is the upstream's URL. Schemes:
	//   - http://host[:port][/base] and https://host[:port][/base]: the
	//     incoming path is joined to /base and the query strings merged
	//     (httputil.ProxyRequest.SetURL semantics);
	//   - h2c://host[:port][/base]: cleartext HTTP/2 with prior knowledge
	//     (RFC 9113 section 3.3), e.g. for gRPC; WebSocket upgrades need
	//     HTTP/1.1 and fail with 502 on such a target;
	//   - unix:///path/to.sock: HTTP/1.1 over a Unix domain socket.
	// In every case the Host header sent is the client's Host (not the
	// target's), so the upstream builds the same absolute URLs the browser
	// sees. A target carrying user:password is rejected. The empty string is
	// an error.
	Target string

	// Transport sends the requests. Nil means a transport built from the
	// fields below, dialing the Unix socket or speaking h2c as Target says.
	// A Transport given here is used as is: for unix:// and h2c:// targets
	// it must dial the socket or speak h2c itself, and the fields below
	// are ignored.
	Transport http.RoundTripper

	// DialTimeout bounds connecting to the upstream (and the TLS handshake
	// is bounded by it too). Zero means 5s; negative means no timeout.
	DialTimeout time.Duration

	// ResponseHeaderTimeout bounds the wait for the upstream's response
	// headers after the request is written; when it expires the client gets
	// 504. It does not limit streaming the body (SSE, downloads). Zero means
	// 60s; negative means no timeout.
	ResponseHeaderTimeout time.Duration

	// MaxIdleConnsPerHost is how many idle keep-alive connections to the
	// upstream are kept. Zero means 128: a sidecar talks to one host, and
	// net/http's default of 2 makes most requests dial anew under load.
	// Negative keeps none.
	MaxIdleConnsPerHost int

	// IdleConnTimeout is how long an idle connection is kept. Zero means
	// 90s; negative means idle connections are kept until the upstream
	// closes them.
	IdleConnTimeout time.Duration

	// TLSClientConfig is used for an https:// target, e.g. to trust a private
	// CA (RootCAs). It is cloned. HTTP/2 is negotiated by ALPN when the
	// upstream offers it. Nil means the system roots and default settings.
	TLSClientConfig *tls.Config

	// IsOwnCookie reports whether a cookie name is authgate's own (session,
	// CSRF state); such cookies are removed from the Cookie header the
	// upstream sees, so it never receives the sealed session. Nil removes no
	// cookie.
	IsOwnCookie func(name string) bool

	// RequestIDHeader names the request id header (see EnsureRequestID).
	// Empty means "X-Request-Id".
	RequestIDHeader string

	// WriteError renders the error response when the upstream fails, with
	// status 502 (unreachable, bad response) or 504 (timeout); r is the
	// request as forwarded to the upstream with its identity headers
	// removed (its URL is the upstream's). Nil writes the status text as
	// text/plain.
	WriteError func(w http.ResponseWriter, r *http.Request, status int)

	// Logger receives upstream failures at Warn and requests abandoned by
	// the client at Debug. Header values are never logged. Nil means
	// slog.Default().
	Logger *slog.Logger

	// Observe, when set, is called once per proxied request with the
	// upstream's status (or 502/504 for a failure, 499 when the client went
	// away first) and the time from the start of forwarding to the upstream's
	// response headers: the upstream latency, without the body's streaming
	// time. Nil observes nothing.
	Observe func(r *http.Request, status int, d time.Duration)

	// Forwarded, when set, says what a request that came through trusted
	// proxies was originally: the client's address, host and scheme, sent
	// as X-Forwarded-For, -Host and -Proto instead of this hop's own view.
	// It reports ok=false for a request from an untrusted peer. Nil (and
	// ok=false) sends this hop's view: the direct peer's address, the Host
	// header and the connection's scheme. Client-sent X-Forwarded-* headers
	// are never passed on as they are.
	Forwarded func(r *http.Request) (clientIP, host, proto string, ok bool)

	// PassRoutingHeaders names headers of RoutingHeaders that the upstream
	// may still receive from the client, for an upstream that really needs
	// one (a method override from an old HTML form, say). Names are matched
	// case-insensitively with '_' equal to '-'; a name not in
	// RoutingHeaders makes New fail. Nil removes every routing header.
	PassRoutingHeaders []string
	// TracerProvider, when set, wraps each round trip to the upstream in a
	// client span and sends its W3C trace context (traceparent,
	// tracestate) to the upstream in place of any the request carried.
	// Nil traces nothing and passes the request's trace context headers
	// through as they are.
	TracerProvider trace.TracerProvider
}

// Proxy forwards requests to the upstream with the identity found in their
// context (WithIdentity). Create it with New: the zero Proxy has no target
// and panics. It is safe for concurrent use.
type Proxy struct {
	target      *url.URL // always http or https: what SetURL routes to
	rp          *httputil.ReverseProxy
	ridHeader   string // canonical
	isOwnCookie func(string) bool
	writeError  func(http.ResponseWriter, *http.Request, int)
	log         *slog.Logger
	observe     func(*http.Request, int, time.Duration)
	forwarded   func(*http.Request) (string, string, string, bool)
	passRouting routingSet // routing headers the client may still send
}

// New returns a Proxy for o, or an error wrapping ErrInvalidTarget when
// o.Target is unusable.
func New(o Options) (*Proxy, error) {
	t, err := parseTarget(o.Target)
	if err != nil {
		return nil, err
	}
	pass, err := parseRoutingHeaders(o.PassRoutingHeaders)
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		passRouting: pass,
		target:      t.url,
		ridHeader:   http.CanonicalHeaderKey(o.RequestIDHeader),
		isOwnCookie: o.IsOwnCookie,
		writeError:  o.WriteError,
		log:         o.Logger,
		observe:     o.Observe,
		forwarded:   o.Forwarded,
	}
	if p.ridHeader == "" {
		p.ridHeader = DefaultRequestIDHeader
	}
	if p.writeError == nil {
		p.writeError = writePlainError
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	transport := o.Transport
	if transport == nil {
		transport = newTransport(o, t)
	}
	if o.TracerProvider != nil {
		transport = &tracingTransport{base: transport, tracer: o.TracerProvider.Tracer(tracerName)}
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:      p.rewrite,
		Transport:    transport,
		ErrorHandler: p.handleError,
		// FlushInterval stays 0: ReverseProxy already flushes every write
		// (interval -1) for text/event-stream responses and for responses
		// of unknown length (streams, chunked), and buffering the rest is
		// cheaper.
		ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
		// Without a pool every response allocates and zeroes a 32 KiB copy
		// buffer: most of the bytes allocated per request, and most of the
		// garbage collector's work under load.
		BufferPool: copyBuffers,
	}
	if p.observe != nil {
		p.rp.ModifyResponse = p.observeResponse
	}
	return p, nil
}

// target is a parsed Options.Target.
type target struct {
	url    *url.URL // http(s) URL that requests are routed to
	socket string   // Unix socket path, for unix://
	h2c    bool
}

func parseTarget(s string) (target, error) {
	if s == "" {
		return target{}, fmt.Errorf("%w: empty", ErrInvalidTarget)
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Error quotes the input, which may hold credentials: say less.
		return target{}, fmt.Errorf("%w: not a URL", ErrInvalidTarget)
	}
	if u.User != nil {
		return target{}, fmt.Errorf("%w: credentials in the URL are not supported", ErrInvalidTarget)
	}
	if u.Fragment != "" {
		return target{}, fmt.Errorf("%w: %q has a fragment", ErrInvalidTarget, s)
	}
	switch u.Scheme {
	case "http", "https", "h2c":
		if u.Host == "" {
			return target{}, fmt.Errorf("%w: %q has no host", ErrInvalidTarget, s)
		}
		t := target{url: u, h2c: u.Scheme == "h2c"}
		if t.h2c {
			c := *u
			c.Scheme = "http"
			t.url = &c
		}
		return t, nil
	case "unix":
		if u.Host != "" || u.Path == "" || u.RawQuery != "" {
			return target{}, fmt.Errorf("%w: %q: want unix:///path/to.sock", ErrInvalidTarget, s)
		}
		// The host only names the connection pool: the dialer ignores it
		// and the Host header is the client's.
		return target{url: &url.URL{Scheme: "http", Host: "localhost"}, socket: u.Path}, nil
	default:
		return target{}, fmt.Errorf("%w: %q: scheme must be http, https, h2c or unix", ErrInvalidTarget, s)
	}
}

// ServeHTTP forwards r to the upstream. It ensures r has a request id first
// (EnsureRequestID), then sends it with the identity from r's context, or
// with no identity headers at all when the context has none.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.serve(w, r, nil)
}

// ServeIdentity forwards r to the upstream with id, as ServeHTTP does for
// r.WithContext(WithIdentity(r.Context(), &id)), but with one context and
// one copy of r where that takes two of each (and a third allocation for
// the start time when Options.Observe is set): the path every
// authenticated request takes.
func (p *Proxy) ServeIdentity(w http.ResponseWriter, r *http.Request, id Identity) {
	p.serve(w, r, &id)
}

// serve is ServeHTTP with id (nil: the one in r's context, if any).
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request, id *Identity) {
	EnsureRequestID(r, p.ridHeader)
	if r.Method == http.MethodConnect {
		// ReverseProxy cannot tunnel CONNECT and would report it to the
		// ErrorHandler as if the upstream had failed; it is a client fault.
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	if v, ok := r.Header["Upgrade"]; ok && !printableASCII(v) {
		// Same: ReverseProxy refuses it through the ErrorHandler.
		http.Error(w, http.StatusText(http.StatusBadRequest), http.StatusBadRequest)
		return
	}
	if id != nil || p.observe != nil {
		fc := &forwardContext{Context: r.Context()}
		if id != nil {
			fc.id, fc.hasID = *id, true
		}
		if p.observe != nil {
			fc.start = time.Now()
		}
		r = r.WithContext(fc)
	}
	p.rp.ServeHTTP(w, r)
}

// forwardContext is the context of a request on its way to the upstream:
// the identity ServeIdentity was given and the time serve started (for
// Options.Observe), in one allocation. Every other value, the deadline and
// the cancellation are its parent's.
type forwardContext struct {
	context.Context
	id    Identity
	hasID bool
	start time.Time // zero without Options.Observe
}

// forwardKey finds the innermost forwardContext.
type forwardKey struct{}

func (c *forwardContext) Value(key any) any {
	switch key.(type) {
	case forwardKey:
		return c
	case identityKey:
		if c.hasID {
			return &c.id
		}
	}
	return c.Context.Value(key)
}

func printableASCII(vals []string) bool {
	for _, v := range vals {
		for i := 0; i < len(v); i++ {
			if v[i] < ' ' || v[i] > '~' {
				return false
			}
		}
	}
	return true
}

// copyBufferSize is the size httputil.ReverseProxy uses when it has no pool.
const copyBufferSize = 32 << 10

// bufferPool recycles the response copy buffers of every Proxy. It pools
// array pointers, which an interface holds without allocating; pooling
// *[]byte would allocate a new slice header on every Put.
type bufferPool struct{ pool sync.Pool }

var copyBuffers = &bufferPool{pool: sync.Pool{New: func() any { return new([copyBufferSize]byte) }}}

// Get fits httputil.BufferPool.
func (p *bufferPool) Get() []byte { return p.pool.Get().(*[copyBufferSize]byte)[:] }

// Put fits httputil.BufferPool. Buffers of another size (none today) are
// dropped rather than pooled.
func (p *bufferPool) Put(b []byte) {
	if cap(b) != copyBufferSize {
		return
	}
	p.pool.Put((*[copyBufferSize]byte)(b[:copyBufferSize]))
}

// observeResponse is the ReverseProxy's ModifyResponse when Observe is set:
// it runs once the upstream's response headers have arrived.
func (p *Proxy) observeResponse(res *http.Response) error {
	p.observeSince(res.Request, res.StatusCode)
	return nil
}

func (p *Proxy) observeSince(r *http.Request, status int) {
	if p.observe == nil || r == nil {
		return
	}
	if fc, ok := r.Context().Value(forwardKey{}).(*forwardContext); ok && !fc.start.IsZero() {
		p.observe(r, status, time.Since(fc.start))
	}
}
