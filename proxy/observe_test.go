package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/authgate/authgate/proxy/access"
	"github.com/authgate/authgate/session"
)

// TestRequestSpanNamesAndOutcomes: the request span is named after
// authgate's endpoint (Envoy's <prefix>/auth/<path> folded into one name),
// or the method alone, and carries the outcome and status.
func TestRequestSpanNamesAndOutcomes(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	env := newTestEnvWith(t, &fakeProvider{}, func(o *Options) { o.TracerProvider = tp })
	s := env.session(time.Hour)
	cookie := env.cookieFor(t, s)

	for _, tc := range []struct {
		name, path, cookie, accept string
		wantName, wantOutcome      string
		wantStatus                 int64
	}{
		{"forwarded", "/app?secret=1", cookie, "application/json", "GET", "forwarded", 200},
		{"unauthenticated", "/app", "", "application/json", "GET", "unauthenticated", 401},
		{"envoy auth", "/oauth2/auth/some/original/path", "", "application/json", "GET /oauth2/auth", "unauthenticated", 401},
		{"userinfo", "/oauth2/userinfo", cookie, "application/json", "GET /oauth2/userinfo", "userinfo", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(spans.Ended())
			r := httptest.NewRequest("GET", tc.path, nil)
			r.Header.Set("Accept", tc.accept)
			if tc.cookie != "" {
				r.Header.Set("Cookie", tc.cookie)
			}
			env.h.ServeHTTP(httptest.NewRecorder(), r)
			var req sdktrace.ReadOnlySpan
			for _, sp := range spans.Ended()[before:] {
				if !sp.Parent().IsValid() {
					req = sp
				}
			}
			if req == nil {
				t.Fatal("no request span")
			}
			if req.Name() != tc.wantName {
				t.Errorf("span name = %q, want %q", req.Name(), tc.wantName)
			}
			attrs := map[attribute.Key]attribute.Value{}
			for _, kv := range req.Attributes() {
				attrs[kv.Key] = kv.Value
			}
			if got := attrs["authgate.outcome"].AsString(); got != tc.wantOutcome {
				t.Errorf("outcome = %q, want %q", got, tc.wantOutcome)
			}
			if got := attrs["http.response.status_code"].AsInt64(); got != tc.wantStatus {
				t.Errorf("status = %d, want %d", got, tc.wantStatus)
			}
			for _, v := range attrs {
				if v.Type() == attribute.STRING && (strings.Contains(v.AsString(), "secret=") || strings.Contains(v.AsString(), "access-0")) {
					t.Errorf("attribute %q holds the query or the token", v.AsString())
				}
			}
		})
	}
}

// TestTraceTrustByPeer: with TraceTrustProxies, the trace context of a
// trusted peer is continued and any other peer's is not.
func TestTraceTrustByPeer(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	trusted, err := access.ParseTrustedProxies([]string{"10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	env := newTestEnvWith(t, &fakeProvider{}, func(o *Options) { o.TracerProvider = tp; o.TrustedProxies = trusted })
	for _, tc := range []struct {
		remote    string
		continued bool
	}{{"10.0.0.1:1234", true}, {"10.0.0.2:1234", false}} {
		before := len(spans.Ended())
		r := httptest.NewRequest("GET", "/app", nil)
		r.RemoteAddr = tc.remote
		r.Header.Set("Accept", "application/json")
		r.Header.Set("Traceparent", parent)
		env.h.ServeHTTP(httptest.NewRecorder(), r)
		ended := spans.Ended()[before:]
		if len(ended) == 0 {
			t.Fatalf("%s: no span", tc.remote)
		}
		req := ended[len(ended)-1]
		continued := req.SpanContext().TraceID().String() == "4bf92f3577b34da6a3ce929d0e0e4736"
		if continued != tc.continued {
			t.Errorf("peer %s: trace continued = %v, want %v", tc.remote, continued, tc.continued)
		}
		if !tc.continued && (len(req.Links()) != 1 || req.Links()[0].SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736") {
			t.Errorf("peer %s: links = %v, want one to the client's span", tc.remote, req.Links())
		}
	}
}

// BenchmarkAccessLogLine is the access log's own cost per request: one
// JSON line written to io.Discard (the handler benchmarks measure it whole,
// BenchmarkHandlerAuthenticatedAccessLog).
func BenchmarkAccessLogLine(b *testing.B) {
	h, err := New(Options{Provider: &fakeProvider{}, Store: nopStore{}, Sealer: &session.Sealer{}, Upstream: http.NotFoundHandler(),
		AccessLog: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/api/items?page=2", nil)
	r.Header.Set("X-Request-Id", "0123456789abcdef0123456789abcdef")
	rec := &observedWriter{status: 200, bytes: 128, outcome: outcomeForwarded, sub: "alice", upstream: 80 * time.Microsecond}
	start := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		h.logAccess(r, rec, start, "/api/items", "page=2", 200, outcomeForwarded)
	}
}

// nopStore is a session.Store with no sessions.
type nopStore struct{}

func (nopStore) Load(*http.Request) (*session.Session, error)                    { return nil, session.ErrNotFound }
func (nopStore) Save(http.ResponseWriter, *http.Request, *session.Session) error { return nil }
func (nopStore) Delete(http.ResponseWriter, *http.Request, *session.Session) error {
	return nil
}
