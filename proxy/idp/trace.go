package idp

import (
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// tracerName is the instrumentation scope of this package's spans.
const tracerName = "github.com/authgate/authgate/proxy/idp"

// traceContext is W3C Trace Context, used as a value rather than through
// the global propagator.
var traceContext propagation.TextMapPropagator = propagation.TraceContext{}

// tracingTransport wraps each call to the provider in a client span named
// after the endpoint (idp.discovery, idp.token, idp.userinfo, idp.jwks,
// idp.revocation) and sends its trace context to the provider. Only the
// method, host, endpoint and status are recorded: never the query, a
// header or a body, which carry codes, tokens and the client secret.
type tracingTransport struct {
	base   http.RoundTripper
	tracer trace.Tracer
	p      *Provider
}

func (t *tracingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	endpoint := t.p.endpointName(req)
	ctx, span := t.tracer.Start(req.Context(), "idp."+endpoint,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("http.request.method", req.Method),
			attribute.String("server.address", req.URL.Hostname()),
			attribute.String("authgate.idp.endpoint", endpoint),
		))
	defer span.End()
	// RoundTrip must not modify the caller's request: send a copy whose
	// header map carries the trace context.
	out := req.Clone(ctx)
	traceContext.Inject(ctx, propagation.HeaderCarrier(out.Header))
	res, err := t.base.RoundTrip(out)
	if err != nil {
		span.SetStatus(codes.Error, "round trip failed")
		return nil, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", res.StatusCode))
	if res.StatusCode >= 400 {
		span.SetStatus(codes.Error, strconv.Itoa(res.StatusCode))
	}
	return res, nil
}

// endpointName says which of the provider's endpoints req calls, from the
// discovered metadata.
func (p *Provider) endpointName(req *http.Request) string {
	u := req.URL.Scheme + "://" + req.URL.Host + req.URL.Path
	if strings.HasSuffix(req.URL.Path, "/.well-known/openid-configuration") {
		return "discovery"
	}
	d := p.state.Load()
	if d == nil {
		return "request"
	}
	switch u {
	case d.meta.TokenEndpoint:
		return "token"
	case d.meta.UserinfoEndpoint:
		return "userinfo"
	case d.meta.JWKSURI:
		return "jwks"
	case d.meta.RevocationEndpoint:
		return "revocation"
	}
	return "request"
}
