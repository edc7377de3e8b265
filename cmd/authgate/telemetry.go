package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/authgate/authgate/internal/otlpexport"
)

// Tracing is configured by the standard OpenTelemetry variables only
// (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/).
// These are the ones authgate reads or checks itself; internal/otlpexport
// reads OTEL_EXPORTER_OTLP_(TRACES_)HEADERS, TIMEOUT, COMPRESSION and
// CERTIFICATE, and the batch processor OTEL_BSP_*.
var otelVariables = []string{
	"OTEL_SDK_DISABLED",
	"OTEL_TRACES_EXPORTER",
	"OTEL_EXPORTER_OTLP_ENDPOINT",
	"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	"OTEL_EXPORTER_OTLP_PROTOCOL",
	"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
	"OTEL_EXPORTER_OTLP_HEADERS",
	"OTEL_EXPORTER_OTLP_TRACES_HEADERS",
	"OTEL_EXPORTER_OTLP_TIMEOUT",
	"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
	"OTEL_EXPORTER_OTLP_COMPRESSION",
	"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
	"OTEL_EXPORTER_OTLP_CERTIFICATE",
	"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
	"OTEL_SERVICE_NAME",
	"OTEL_RESOURCE_ATTRIBUTES",
	"OTEL_TRACES_SAMPLER",
	"OTEL_TRACES_SAMPLER_ARG",
}

// tracingConfig is what validateTracing made of the OTEL_* variables.
type tracingConfig struct {
	// enabled: an OTLP endpoint is set (or OTEL_TRACES_EXPORTER=otlp) and
	// OTEL_SDK_DISABLED is not true.
	enabled bool
	// export is where and how spans are sent (OTLP/HTTP with protobuf).
	export   otlpexport.Config
	sampler  sdktrace.Sampler
	resource *resource.Resource
}

// validateTracing reads the OTEL_* variables through getenv (os.Getenv;
// the resource's OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are read
// by the SDK from the environment itself). Tracing is on
// when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is
// set, or OTEL_TRACES_EXPORTER=otlp (the default endpoint then); off when
// none is, or with OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none.
// Every problem is reported, naming its variable.
func validateTracing(getenv func(string) string) (tracingConfig, []error) {
	var tc tracingConfig
	var problems []error
	add := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }

	disabled := false
	if v := getenv("OTEL_SDK_DISABLED"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			add("OTEL_SDK_DISABLED: %q is not true or false", v)
		}
		disabled = b
	}
	exporter := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))
	switch exporter {
	case "", "otlp", "none":
	default:
		add("OTEL_TRACES_EXPORTER: %q is not supported (want otlp or none)", exporter)
	}
	endpointSet := false
	for _, key := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		v := getenv(key)
		if v == "" {
			continue
		}
		endpointSet = true
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("%s: not an http:// or https:// URL", key) // the URL may carry credentials: not echoed
		}
	}
	protocol := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	protocolKey := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	if protocol == "" {
		protocol, protocolKey = getenv("OTEL_EXPORTER_OTLP_PROTOCOL"), "OTEL_EXPORTER_OTLP_PROTOCOL"
	}
	switch protocol {
	case "", "http/protobuf":
	case "grpc", "http/json":
		add("%s: %q is not supported: only http/protobuf (OTLP/HTTP with protobuf) is built in, to keep the sidecar small; use a collector's OTLP/HTTP receiver (port 4318)", protocolKey, protocol)
	default:
		add("%s: %q is not a protocol (want http/protobuf)", protocolKey, protocol)
	}
	var exportProblems []error
	tc.export, exportProblems = otlpexport.ConfigFromEnv(getenv)
	problems = append(problems, exportProblems...)
	var err error
	if tc.sampler, err = samplerFromEnv(getenv); err != nil {
		problems = append(problems, err)
	}
	res, err := resource.New(context.Background(),
		resource.WithTelemetrySDK(),
		resource.WithAttributes(
			attribute.String("service.name", "authgate"),
			attribute.String("service.version", version),
		),
		// Last, so that OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win.
		resource.WithFromEnv(),
	)
	if err != nil {
		add("OTEL_RESOURCE_ATTRIBUTES: %v", err)
	}
	tc.resource = res
	tc.enabled = !disabled && exporter != "none" && (endpointSet || exporter == "otlp")
	return tc, problems
}

// samplerFromEnv builds the sampler of OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG; unset means parentbased_always_on. The SDK would
// read them itself but fall back silently on a typo: here it is an error.
func samplerFromEnv(getenv func(string) string) (sdktrace.Sampler, error) {
	name := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER"))
	arg := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER_ARG"))
	ratio := 1.0
	if arg != "" && strings.HasSuffix(name, "traceidratio") {
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG: %q is not a ratio between 0 and 1", arg)
		}
		ratio = r
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	}
	return nil, fmt.Errorf("OTEL_TRACES_SAMPLER: %q is not one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio", name)
}

// newTracerProvider builds the SDK's TracerProvider with our OTLP/HTTP
// protobuf exporter, or returns nil when tracing is off.
func newTracerProvider(tc tracingConfig) (*sdktrace.TracerProvider, error) {
	if !tc.enabled {
		return nil, nil
	}
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(otlpexport.New(tc.export)),
		sdktrace.WithSampler(tc.sampler),
		sdktrace.WithResource(tc.resource),
	), nil
}

// tracerProvider is tp as the API interface, nil when tracing is off (a
// typed nil would not compare equal to nil in the packages' checks).
func tracerProvider(tp *sdktrace.TracerProvider) trace.TracerProvider {
	if tp == nil {
		return nil
	}
	return tp
}

// traceLogHandler adds the trace and span ids of the context's span to
// every log record written with that context, so that a request's log
// lines can be found from its trace and the other way round.
type traceLogHandler struct{ slog.Handler }

func (h traceLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceLogHandler{h.Handler.WithAttrs(attrs)}
}

func (h traceLogHandler) WithGroup(name string) slog.Handler {
	return traceLogHandler{h.Handler.WithGroup(name)}
}

// lockedWriter serialises the writes of two handlers (the log and the
// access log) to one output.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// shutdownTracing flushes the spans still queued, within ctx.
func shutdownTracing(ctx context.Context, tp *sdktrace.TracerProvider) error {
	if tp == nil {
		return nil
	}
	if err := tp.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("flush traces: %w", err)
	}
	return nil
}
