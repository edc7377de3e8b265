package upstream

import (
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// tracerName is the instrumentation scope of this package's spans.
const tracerName = "github.com/authgate/authgate/upstream"

// traceContext is W3C Trace Context, used as a value rather than through
// the global propagator.
var traceContext propagation.TextMapPropagator = propagation.TraceContext{}

// clientSpan is made once: each trace.WithSpanKind boxes a new option.
var clientSpan = trace.WithSpanKind(trace.SpanKindClient)

// tracingTransport wraps each round trip to the upstream in a client span
// and sends that span's trace context (traceparent, tracestate) with the
// request, replacing whatever the client sent. The span ends when the
// response headers arrive: a stream's body may last for hours.
type tracingTransport struct {
	base   http.RoundTripper
	tracer trace.Tracer
}

func (t *tracingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, span := t.tracer.Start(req.Context(), "upstream "+req.Method,
		clientSpan,
		trace.WithAttributes(
			attribute.String("http.request.method", req.Method),
			attribute.String("server.address", req.URL.Hostname()),
			attribute.String("url.path", req.URL.Path),
		))
	defer span.End()
	// The outgoing request is the ReverseProxy's own copy, with a header
	// map of its own (cloned before Rewrite), so it may be changed here.
	traceContext.Inject(ctx, propagation.HeaderCarrier(req.Header))
	res, err := t.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		// The error text may name the upstream's address only; keep it
		// short and generic all the same.
		span.SetStatus(codes.Error, "round trip failed")
		return nil, err
	}
	if span.IsRecording() { // sampled out: nothing to build
		span.SetAttributes(attribute.Int("http.response.status_code", res.StatusCode))
		if res.StatusCode >= 500 {
			span.SetStatus(codes.Error, strconv.Itoa(res.StatusCode))
		}
	}
	return res, nil
}
