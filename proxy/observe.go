package proxy

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/upstream"
)

// TraceTrust says whose W3C trace context (traceparent, tracestate) authgate
// continues. A trusted client's trace is continued: authgate's spans join
// it and its sampling decision stands. An untrusted client's trace context
// is never passed on: authgate starts a new trace (with a link to the
// client's span, when tracing) and the upstream receives authgate's
// traceparent, or none when tracing is off. So an untrusted client can
// neither force sampling nor pose as part of a trace authgate continued.
type TraceTrust int

const (
	// TraceTrustProxies, the zero value, trusts the trace context of
	// requests whose direct peer is in Options.TrustedProxies.
	TraceTrustProxies TraceTrust = iota
	// TraceTrustNever trusts no client's trace context.
	TraceTrustNever
	// TraceTrustAlways trusts every client's trace context: for authgate
	// behind a gateway that already decides, or on a private network.
	TraceTrustAlways
)

// Trace context headers (W3C Trace Context, sections 3.2 and 3.3), in
// canonical form.
const (
	headerTraceparent = "Traceparent"
	headerTracestate  = "Tracestate"
)

// traceContext is the only propagator authgate uses: W3C Trace Context,
// read from a value rather than the global propagator.
var traceContext propagation.TextMapPropagator = propagation.TraceContext{}

// tracerName is the instrumentation scope of this package's spans.
const tracerName = "github.com/authgate/authgate/proxy"

// Span and log attribute keys.
const (
	attrOutcome          = "outcome"
	attrBytes            = "bytes"
	attrDuration         = "duration_ms"
	attrUpstreamDuration = "upstream_duration_ms"
	attrTraceID          = "trace_id"

	spanAttrOutcome = "authgate.outcome"
	spanAttrShared  = "authgate.refresh.shared"
)

// ServeHTTP serves one request. With tracing and the access log off it only
// drops an untrusted client's trace context; otherwise it records the
// request (a span, an access log line) around route.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.tracer != nil || h.accessLog != nil {
		h.serveObserved(w, r)
		return
	}
	if hasTraceContext(r.Header) && !h.trustTrace(r) {
		dropTraceContext(r.Header)
	}
	h.route(w, r)
}

func hasTraceContext(hdr http.Header) bool {
	_, p := hdr[headerTraceparent]
	_, s := hdr[headerTracestate]
	return p || s
}

func dropTraceContext(hdr http.Header) {
	delete(hdr, headerTraceparent)
	delete(hdr, headerTracestate)
}

// trustTrace applies Options.TraceTrust to r's direct peer.
func (h *Handler) trustTrace(r *http.Request) bool {
	switch h.traceTrust {
	case TraceTrustAlways:
		return true
	case TraceTrustNever:
		return false
	default:
		return h.trusted.Trusted(r.RemoteAddr)
	}
}

// serveObserved serves r through a recording ResponseWriter, inside the
// request's span when tracing, and writes its access log line.
func (h *Handler) serveObserved(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	path := r.URL.EscapedPath()
	query := r.URL.RawQuery
	rec := &observedWriter{ResponseWriter: w}
	var span trace.Span
	if h.tracer != nil {
		var ctx context.Context
		ctx, span = h.startRequestSpan(r)
		r = r.WithContext(ctx)
	} else if hasTraceContext(r.Header) && !h.trustTrace(r) {
		dropTraceContext(r.Header)
	}
	defer func() {
		// A panic (http.ErrAbortHandler from the upstream's copy) still
		// ends the span and logs the request before it unwinds further.
		outcome := rec.outcome
		if outcome == "" {
			outcome = h.endpointOutcome(r.URL.Path)
		}
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		if span != nil {
			h.endRequestSpan(span, r, status, outcome)
		}
		if h.accessLog != nil {
			h.logAccess(r, rec, start, path, query, status, outcome)
		}
	}()
	h.route(rec, r)
}

// serverSpan is made once: each trace.WithSpanKind boxes a new option.
var serverSpan = trace.WithSpanKind(trace.SpanKindServer)

// startRequestSpan starts the server span of r: a child of the client's
// span when its trace context is trusted, otherwise the root of a new
// trace linked to the client's span, whose headers are then dropped.
func (h *Handler) startRequestSpan(r *http.Request) (context.Context, trace.Span) {
	ctx := r.Context()
	opts := []trace.SpanStartOption{
		serverSpan,
		trace.WithAttributes(attribute.String("http.request.method", r.Method)),
	}
	if hasTraceContext(r.Header) {
		if h.trustTrace(r) {
			ctx = traceContext.Extract(ctx, propagation.HeaderCarrier(r.Header))
		} else {
			// The link keeps the client's trace findable without letting
			// its sampled flag decide: a link does not make a parent.
			if sc := trace.SpanContextFromContext(traceContext.Extract(ctx, propagation.HeaderCarrier(r.Header))); sc.IsValid() {
				opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc,
					Attributes: []attribute.KeyValue{attribute.String("authgate.link", "untrusted_client_parent")}}))
			}
			opts = append(opts, trace.WithNewRoot())
			dropTraceContext(r.Header)
		}
	}
	return h.tracer.Start(ctx, r.Method, opts...)
}

// endRequestSpan names the span after authgate's own endpoint (or the
// method alone for proxied paths, which have no route template), and
// records the status and outcome. Paths are recorded without their query.
func (h *Handler) endRequestSpan(span trace.Span, r *http.Request, status int, outcome string) {
	if !span.IsRecording() {
		span.End()
		return
	}
	if route := h.endpoint(r.URL.Path); route != "" {
		span.SetName(r.Method + " " + route)
	}
	span.SetAttributes(
		attribute.String("url.path", r.URL.Path),
		attribute.Int("http.response.status_code", status),
		attribute.String(spanAttrOutcome, outcome),
	)
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

// endpoint is the route of authgate's own endpoint at path, or "" for a
// path that is proxied. Envoy's <prefix>/auth/<original path> is named
// <prefix>/auth, so that span names stay few.
func (h *Handler) endpoint(path string) string {
	switch path {
	case h.startPath, h.callbackPath, h.signOutPath, h.userinfoPath, h.authPath, h.backchannelPath:
		return path
	}
	if strings.HasPrefix(path, h.authPath+"/") {
		return h.authPath
	}
	return ""
}

// endpointOutcome is the outcome of a request to one of authgate's own
// endpoints that records none itself.
func (h *Handler) endpointOutcome(path string) string {
	switch path {
	case h.callbackPath:
		return "callback"
	case h.signOutPath:
		return "sign_out"
	case h.userinfoPath:
		return "userinfo"
	case h.backchannelPath:
		return "backchannel_logout"
	}
	return "other"
}

// logAccess writes the access log line of one request. The query is left
// out unless AccessLogQuery is set, and always for authgate's own
// endpoints, whose queries carry authorization codes and states.
func (h *Handler) logAccess(r *http.Request, rec *observedWriter, start time.Time, path, query string, status int, outcome string) {
	if query != "" && h.accessLogQuery && !strings.HasPrefix(r.URL.Path, h.prefix+"/") {
		path += "?" + query
	}
	attrs := make([]slog.Attr, 0, 11)
	attrs = append(attrs,
		slog.String(attrMethod, r.Method),
		slog.String(attrPath, path),
		slog.Int(attrStatus, status),
		slog.Int64(attrBytes, rec.bytes),
		slog.Float64(attrDuration, ms(time.Since(start))),
	)
	if rec.upstream > 0 {
		attrs = append(attrs, slog.Float64(attrUpstreamDuration, ms(rec.upstream)))
	}
	attrs = append(attrs, slog.String(attrOutcome, outcome))
	if rec.sub != "" {
		attrs = append(attrs, slog.String(attrSubject, rec.sub))
	}
	attrs = append(attrs, slog.String(attrRequestID, r.Header.Get(h.requestIDHeader)))
	if sc := trace.SpanContextFromContext(r.Context()); sc.IsValid() {
		attrs = append(attrs, slog.String(attrTraceID, sc.TraceID().String()))
	}
	// The context is left out: the line carries its trace id itself.
	h.accessLog.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs...)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// observedWriter is the ResponseWriter of an observed request: it notes the
// status, the bytes written, and what the handler learnt (outcome, subject,
// upstream time). Unwrap lets http.ResponseController reach the
// connection's Flush and Hijack (streams, WebSockets).
type observedWriter struct {
	http.ResponseWriter
	status   int
	bytes    int64
	outcome  string
	sub      string
	upstream time.Duration
}

func (w *observedWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 || code == http.StatusSwitchingProtocols {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *observedWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *observedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack hands the connection over (a WebSocket upgrade): the upstream's
// 101 is then written on the raw connection, so it is noted here.
func (w *observedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return conn, brw, err
}

// outcome counts the request's outcome (authgate_requests_total) and, when
// the request is observed, notes it for its span and access log line.
func (h *Handler) outcome(w http.ResponseWriter, outcome string, code int) {
	h.metrics.request(outcome, code)
	if rec, ok := w.(*observedWriter); ok {
		rec.outcome = outcome
	}
}

// noteSubject notes who the request was forwarded (or authorized) for, for
// the access log.
func noteSubject(w http.ResponseWriter, sub string) {
	if rec, ok := w.(*observedWriter); ok {
		rec.sub = sub
	}
}

// serveUpstream forwards r to the upstream with id (nil: none, a public
// path); when observed it notes the time spent there (until the response
// was relayed).
func (h *Handler) serveUpstream(w http.ResponseWriter, r *http.Request, id *upstream.Identity) {
	rec, ok := w.(*observedWriter)
	if !ok {
		h.toUpstream(w, r, id)
		return
	}
	start := time.Now()
	defer func() { rec.upstream = time.Since(start) }()
	h.toUpstream(w, r, id)
}

// identityServer is an Options.Upstream that takes the identity as an
// argument (*upstream.Proxy, as cmd/authgate wires it), which saves a
// context and a copy of the request over upstream.WithIdentity.
type identityServer interface {
	ServeIdentity(w http.ResponseWriter, r *http.Request, id upstream.Identity)
}

func (h *Handler) toUpstream(w http.ResponseWriter, r *http.Request, id *upstream.Identity) {
	switch {
	case id == nil:
		h.upstream.ServeHTTP(w, r)
	case h.identityUpstream != nil:
		h.identityUpstream.ServeIdentity(w, r, *id)
	default:
		// A copy, so that id itself stays on the caller's stack.
		c := *id
		h.upstream.ServeHTTP(w, r.WithContext(upstream.WithIdentity(r.Context(), &c)))
	}
}

// startSpan starts an internal span under ctx's, or returns ctx and a nil
// span when tracing is off; endSpan ends it.
func (h *Handler) startSpan(ctx context.Context, name string) (context.Context, trace.Span) {
	if h.tracer == nil {
		return ctx, nil
	}
	return h.tracer.Start(ctx, name)
}

// endSpan ends span (nil: tracing off), marking it failed when err is set.
// The error's text is left out: it may quote what a client sent.
func endSpan(span trace.Span, err error, attrs ...attribute.KeyValue) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, "failed")
	}
	span.SetAttributes(attrs...)
	span.End()
}

// storeFault is err unless it only says that there is no session.
func storeFault(err error) error {
	if errors.Is(err, session.ErrNotFound) {
		return nil
	}
	return err
}

// loadTraced loads r's session inside a session.load span. With tracing
// off it is the store's Load alone: no request copy, no attributes.
func (h *Handler) loadTraced(r *http.Request) (*session.Session, error) {
	if h.tracer == nil {
		return h.store.Load(r)
	}
	ctx, span := h.tracer.Start(r.Context(), "session.load")
	s, err := h.store.Load(r.WithContext(ctx))
	if !span.IsRecording() { // sampled out: no attribute to build
		span.End()
		return s, err
	}
	endSpan(span, storeFault(err), attribute.Bool("authgate.session.found", err == nil))
	return s, err
}
