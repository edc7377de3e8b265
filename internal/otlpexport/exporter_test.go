package otlpexport

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// receiver is an OTLP/HTTP receiver decoding with the collector package,
// as a collector does; statuses are answered in turn, then 200.
type receiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	statuses []int
	reqs     []*coltracepb.ExportTraceServiceRequest
	headers  []http.Header
}

func startReceiver(t *testing.T, statuses ...int) *receiver {
	t.Helper()
	r := &receiver{statuses: statuses}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.headers = append(r.headers, req.Header.Clone())
		if len(r.statuses) > 0 {
			code := r.statuses[0]
			r.statuses = r.statuses[1:]
			w.WriteHeader(code)
			return
		}
		var body io.Reader = req.Body
		if req.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, _ := io.ReadAll(body)
		var m coltracepb.ExportTraceServiceRequest
		if req.Header.Get("Content-Type") != "application/x-protobuf" || proto.Unmarshal(b, &m) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		r.reqs = append(r.reqs, &m)
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		_, _ = w.Write(out)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() ([]*coltracepb.ExportTraceServiceRequest, []http.Header) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reqs, r.headers
}

var (
	traceID  = trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	parentID = trace.SpanID{9, 8, 7, 6, 5, 4, 3, 2}
	linkTID  = trace.TraceID{0xaa, 1}
	linkSID  = trace.SpanID{0xbb, 2}
)

// makeSpans records spans with every kind of data through a real SDK
// TracerProvider and returns them as the exporter gets them.
func makeSpans(t *testing.T) []sdktrace.ReadOnlySpan {
	t.Helper()
	rec := &recorder{}
	res := resource.NewSchemaless(attribute.String("service.name", "authgate-test"))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(rec), sdktrace.WithResource(res))
	ts, _ := trace.ParseTraceState("vendor=abc")
	parent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: parentID, TraceFlags: trace.FlagsSampled, TraceState: ts, Remote: true,
	})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), parent)
	link := trace.Link{
		SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: linkTID, SpanID: linkSID, TraceFlags: trace.FlagsSampled}),
		Attributes:  []attribute.KeyValue{attribute.String("link.why", "batch")},
	}
	start := time.Unix(1700000000, 5)
	_, span := tp.Tracer("scope-a", trace.WithInstrumentationVersion("1.2")).Start(ctx, "GET /x",
		trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start), trace.WithLinks(link),
		trace.WithAttributes(
			attribute.Bool("b", true), attribute.Int64("i", -7), attribute.Float64("f", 1.5), attribute.String("s", "v"),
			attribute.BoolSlice("bs", []bool{true, false}), attribute.Int64Slice("is", []int64{1, 2}),
			attribute.Float64Slice("fs", []float64{0.5}), attribute.StringSlice("ss", []string{"a", "b"}),
		))
	span.AddEvent("retry", trace.WithTimestamp(start.Add(time.Millisecond)), trace.WithAttributes(attribute.Int("attempt", 2)))
	span.SetStatus(codes.Error, "upstream down")
	span.End(trace.WithTimestamp(start.Add(time.Second)))
	_, other := tp.Tracer("scope-b").Start(context.Background(), "root", trace.WithSpanKind(trace.SpanKindClient))
	other.SetStatus(codes.Ok, "")
	other.End()
	_, third := tp.Tracer("scope-a", trace.WithInstrumentationVersion("1.2")).Start(context.Background(), "second-a")
	third.End()
	return rec.spans
}

type recorder struct{ spans []sdktrace.ReadOnlySpan }

func (r *recorder) ExportSpans(_ context.Context, s []sdktrace.ReadOnlySpan) error {
	r.spans = append(r.spans, s...)
	return nil
}
func (r *recorder) Shutdown(context.Context) error { return nil }

func find(kvs []*commonpb.KeyValue, key string) *commonpb.AnyValue {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value
		}
	}
	return nil
}

func TestExportConversion(t *testing.T) {
	rcv := startReceiver(t)
	exp := New(Config{Endpoint: rcv.srv.URL + "/v1/traces", Timeout: 5 * time.Second})
	if err := exp.ExportSpans(context.Background(), makeSpans(t)); err != nil {
		t.Fatal(err)
	}
	reqs, _ := rcv.requests()
	if len(reqs) != 1 || len(reqs[0].ResourceSpans) != 1 {
		t.Fatalf("got %d requests, want 1 with one resource: %v", len(reqs), reqs)
	}
	rs := reqs[0].ResourceSpans[0]
	if v := find(rs.Resource.Attributes, "service.name"); v.GetStringValue() != "authgate-test" {
		t.Errorf("resource service.name = %v", v)
	}
	if len(rs.ScopeSpans) != 2 {
		t.Fatalf("%d scopes, want 2 (scope-a twice grouped, scope-b)", len(rs.ScopeSpans))
	}
	a, b := rs.ScopeSpans[0], rs.ScopeSpans[1]
	if a.Scope.Name != "scope-a" || a.Scope.Version != "1.2" || len(a.Spans) != 2 || b.Scope.Name != "scope-b" || len(b.Spans) != 1 {
		t.Fatalf("scopes = %v / %v", a.Scope, b.Scope)
	}
	s := a.Spans[0]
	if !bytes.Equal(s.TraceId, traceID[:]) || !bytes.Equal(s.ParentSpanId, parentID[:]) || len(s.SpanId) != 8 {
		t.Errorf("ids: trace %x parent %x span %x", s.TraceId, s.ParentSpanId, s.SpanId)
	}
	if s.Name != "GET /x" || s.Kind != tracepb.Span_SPAN_KIND_SERVER || s.TraceState != "vendor=abc" {
		t.Errorf("name %q kind %v tracestate %q", s.Name, s.Kind, s.TraceState)
	}
	if s.StartTimeUnixNano != 1700000000_000000005 || s.EndTimeUnixNano != 1700000001_000000005 {
		t.Errorf("times %d..%d", s.StartTimeUnixNano, s.EndTimeUnixNano)
	}
	if s.Flags != 0x1|0x100|0x200 {
		t.Errorf("flags = %#x, want sampled with a remote parent", s.Flags)
	}
	attrs := s.Attributes
	if !find(attrs, "b").GetBoolValue() || find(attrs, "i").GetIntValue() != -7 || find(attrs, "f").GetDoubleValue() != 1.5 || find(attrs, "s").GetStringValue() != "v" {
		t.Errorf("scalar attributes: %v", attrs)
	}
	if v := find(attrs, "bs").GetArrayValue().GetValues(); len(v) != 2 || !v[0].GetBoolValue() || v[1].GetBoolValue() {
		t.Errorf("bool slice: %v", v)
	}
	if v := find(attrs, "is").GetArrayValue().GetValues(); len(v) != 2 || v[1].GetIntValue() != 2 {
		t.Errorf("int slice: %v", v)
	}
	if v := find(attrs, "fs").GetArrayValue().GetValues(); len(v) != 1 || v[0].GetDoubleValue() != 0.5 {
		t.Errorf("float slice: %v", v)
	}
	if v := find(attrs, "ss").GetArrayValue().GetValues(); len(v) != 2 || v[1].GetStringValue() != "b" {
		t.Errorf("string slice: %v", v)
	}
	if len(s.Events) != 1 || s.Events[0].Name != "retry" || s.Events[0].TimeUnixNano != 1700000000_001000005 || find(s.Events[0].Attributes, "attempt").GetIntValue() != 2 {
		t.Errorf("events: %v", s.Events)
	}
	if len(s.Links) != 1 || !bytes.Equal(s.Links[0].TraceId, linkTID[:]) || !bytes.Equal(s.Links[0].SpanId, linkSID[:]) ||
		find(s.Links[0].Attributes, "link.why").GetStringValue() != "batch" || s.Links[0].Flags&1 != 1 {
		t.Errorf("links: %v", s.Links)
	}
	if s.Status.Code != tracepb.Status_STATUS_CODE_ERROR || s.Status.Message != "upstream down" {
		t.Errorf("status: %v", s.Status)
	}
	root := b.Spans[0]
	if len(root.ParentSpanId) != 0 || root.Kind != tracepb.Span_SPAN_KIND_CLIENT || root.Status.Code != tracepb.Status_STATUS_CODE_OK || root.Flags != 0x1|0x100 {
		t.Errorf("root span: parent %x kind %v status %v flags %#x", root.ParentSpanId, root.Kind, root.Status, root.Flags)
	}
}

func TestExportHeadersGzip(t *testing.T) {
	rcv := startReceiver(t)
	cfg, problems := ConfigFromEnv(func(k string) string {
		return map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT":           rcv.srv.URL + "/",
			"OTEL_EXPORTER_OTLP_HEADERS":            "x-general=no",
			"OTEL_EXPORTER_OTLP_TRACES_HEADERS":     "api-key=s%20ecret%3D,x-team = core",
			"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "gzip",
			"OTEL_EXPORTER_OTLP_TIMEOUT":            "2500",
		}[k]
	})
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if cfg.Endpoint != rcv.srv.URL+"/v1/traces" || cfg.Timeout != 2500*time.Millisecond || !cfg.Gzip {
		t.Fatalf("config = %+v", cfg)
	}
	if err := New(cfg).ExportSpans(context.Background(), makeSpans(t)); err != nil {
		t.Fatal(err)
	}
	reqs, hdrs := rcv.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d decoded requests, want 1", len(reqs))
	}
	h := hdrs[0]
	if h.Get("Api-Key") != "s ecret=" || h.Get("X-Team") != "core" || h.Get("X-General") != "" || h.Get("Content-Encoding") != "gzip" {
		t.Errorf("headers: %v", h)
	}
}

func TestConfigFromEnv(t *testing.T) {
	cfg, problems := ConfigFromEnv(func(k string) string {
		return map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT":        "http://ignored:4318",
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://c/custom",
		}[k]
	})
	if len(problems) > 0 || cfg.Endpoint != "https://c/custom" || cfg.Timeout != 10*time.Second || cfg.Gzip {
		t.Errorf("config = %+v, problems %v", cfg, problems)
	}
	if cfg, _ := ConfigFromEnv(func(string) string { return "" }); cfg.Endpoint != DefaultEndpoint {
		t.Errorf("default endpoint = %q", cfg.Endpoint)
	}
	_, problems = ConfigFromEnv(func(k string) string {
		return map[string]string{
			"OTEL_EXPORTER_OTLP_HEADERS":            "api-key=topsecret,broken",
			"OTEL_EXPORTER_OTLP_TIMEOUT":            "-1",
			"OTEL_EXPORTER_OTLP_COMPRESSION":        "zstd",
			"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": "/nonexistent/ca.pem",
		}[k]
	})
	var msgs []string
	for _, p := range problems {
		msgs = append(msgs, p.Error())
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{"OTEL_EXPORTER_OTLP_HEADERS:", "OTEL_EXPORTER_OTLP_TIMEOUT:", "OTEL_EXPORTER_OTLP_COMPRESSION:", "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE:"} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %s:\n%s", want, all)
		}
	}
	if len(problems) != 4 || strings.Contains(all, "topsecret") {
		t.Errorf("want 4 problems without header values:\n%s", all)
	}
}

func TestExportRetries503(t *testing.T) {
	rcv := startReceiver(t, http.StatusServiceUnavailable)
	exp := New(Config{Endpoint: rcv.srv.URL, Timeout: 5 * time.Second})
	exp.backoff = time.Millisecond
	if err := exp.ExportSpans(context.Background(), makeSpans(t)); err != nil {
		t.Fatalf("503 then 200: %v", err)
	}
	reqs, hdrs := rcv.requests()
	if len(hdrs) != 2 || len(reqs) != 1 {
		t.Errorf("%d attempts, %d decoded; want 2 and 1", len(hdrs), len(reqs))
	}
}

func TestExportErrorStatus(t *testing.T) {
	rcv := startReceiver(t, http.StatusUnauthorized)
	exp := New(Config{Endpoint: rcv.srv.URL, Timeout: 5 * time.Second, Headers: map[string]string{"Authorization": "Bearer topsecret"}})
	exp.backoff = time.Millisecond
	err := exp.ExportSpans(context.Background(), makeSpans(t))
	if err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "topsecret") {
		t.Fatalf("err = %v, want the 401 status without the header", err)
	}
	if _, hdrs := rcv.requests(); len(hdrs) != 1 {
		t.Errorf("401 was tried %d times, want once (not retryable)", len(hdrs))
	}
	// Retryable statuses are given up after maxAttempts, within the timeout.
	rcv = startReceiver(t, 503, 502, 504, 429, 503)
	exp = New(Config{Endpoint: rcv.srv.URL, Timeout: 5 * time.Second})
	exp.backoff = time.Millisecond
	if err := exp.ExportSpans(context.Background(), makeSpans(t)); err == nil || !strings.Contains(err.Error(), "429") {
		t.Errorf("err = %v, want the last status 429", err)
	}
	if _, hdrs := rcv.requests(); len(hdrs) != maxAttempts {
		t.Errorf("%d attempts, want %d", len(hdrs), maxAttempts)
	}
	// The timeout bounds the retries.
	rcv = startReceiver(t, 503, 503, 503, 503)
	exp = New(Config{Endpoint: rcv.srv.URL, Timeout: 50 * time.Millisecond})
	exp.backoff = time.Second
	began := time.Now()
	err = exp.ExportSpans(context.Background(), makeSpans(t))
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || time.Since(began) > 900*time.Millisecond {
		t.Errorf("err = %v after %v, want a deadline error within the timeout", err, time.Since(began))
	}
}

// TestExportCertificate: OTEL_EXPORTER_OTLP_CERTIFICATE makes a collector
// with a private CA trusted; without it the export fails verification.
func TestExportCertificate(t *testing.T) {
	var got int
	var mu sync.Mutex
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got++
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	pemPath := t.TempDir() + "/ca.pem"
	if err := os.WriteFile(pemPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": srv.URL + "/v1/traces"}
	cfg, problems := ConfigFromEnv(func(k string) string { return env[k] })
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if err := New(cfg).ExportSpans(context.Background(), makeSpans(t)); err == nil {
		t.Fatal("export to an untrusted certificate succeeded")
	}
	env["OTEL_EXPORTER_OTLP_CERTIFICATE"] = pemPath
	cfg, problems = ConfigFromEnv(func(k string) string { return env[k] })
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if err := New(cfg).ExportSpans(context.Background(), makeSpans(t)); err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got != 1 {
		t.Errorf("receiver got %d requests, want 1", got)
	}
}
