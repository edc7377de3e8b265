package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func TestValidateTracing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		enabled bool
		sampler string // the sampler's Description
		errs    []string
	}{
		{name: "nothing set: off", env: nil, sampler: "ParentBased{root:AlwaysOnSampler"},
		{name: "service name alone: off", env: map[string]string{"OTEL_SERVICE_NAME": "x"}},
		{name: "endpoint: on", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, enabled: true},
		{name: "traces endpoint: on", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://collector/v1/traces"}, enabled: true},
		{name: "exporter otlp: on with the default endpoint", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, enabled: true},
		{name: "sdk disabled wins", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}},
		{name: "exporter none wins", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}},
		{name: "http/protobuf", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, enabled: true},
		{name: "grpc refused", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
			errs: []string{`OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" is not supported: only http/protobuf (OTLP/HTTP with protobuf) is built in, to keep the sidecar small`}},
		{name: "traces grpc refused", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
			errs: []string{`OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "grpc" is not supported`}},
		{name: "exporter settings", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
			"OTEL_EXPORTER_OTLP_TIMEOUT": "soon", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "zstd"},
			errs: []string{`OTEL_EXPORTER_OTLP_TIMEOUT: "soon" is not a positive number`, `OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: "zstd" is not gzip or none`}},
		{name: "ratio sampler", env: map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"},
			sampler: "ParentBased{root:TraceIDRatioBased{0.25}"},
		{name: "always_off", env: map[string]string{"OTEL_TRACES_SAMPLER": "always_off"}, sampler: "AlwaysOffSampler"},
		{name: "every problem", env: map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT":        "collector:4318",
			"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json",
			"OTEL_TRACES_SAMPLER":                "traceidratio",
			"OTEL_TRACES_SAMPLER_ARG":            "1.5",
			"OTEL_SDK_DISABLED":                  "maybe",
			"OTEL_TRACES_EXPORTER":               "zipkin",
			"OTEL_RESOURCE_ATTRIBUTES":           "no-equals-sign",
		}, errs: []string{
			"OTEL_EXPORTER_OTLP_ENDPOINT: not an http:// or https:// URL",
			`OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/json" is not supported`,
			`OTEL_TRACES_SAMPLER_ARG: "1.5" is not a ratio`,
			`OTEL_SDK_DISABLED: "maybe"`,
			`OTEL_TRACES_EXPORTER: "zipkin" is not supported`,
			"OTEL_RESOURCE_ATTRIBUTES:",
		}},
		{name: "unknown sampler", env: map[string]string{"OTEL_TRACES_SAMPLER": "jaeger_remote"}, errs: []string{`OTEL_TRACES_SAMPLER: "jaeger_remote" is not one of`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range otelVariables {
				t.Setenv(k, tc.env[k])
			}
			tcfg, problems := validateTracing(os.Getenv)
			var msgs []string
			for _, p := range problems {
				msgs = append(msgs, p.Error())
			}
			all := strings.Join(msgs, "\n")
			if len(tc.errs) == 0 && len(problems) > 0 {
				t.Fatalf("problems: %s", all)
			}
			for _, want := range tc.errs {
				if !strings.Contains(all, want) {
					t.Errorf("problems %q lack %q", all, want)
				}
			}
			if len(problems) != len(tc.errs) {
				t.Errorf("%d problems, want %d: %s", len(problems), len(tc.errs), all)
			}
			if len(tc.errs) > 0 {
				return
			}
			if tcfg.enabled != tc.enabled {
				t.Errorf("enabled = %v, want %v", tcfg.enabled, tc.enabled)
			}
			if tc.sampler != "" && !strings.HasPrefix(tcfg.sampler.Description(), tc.sampler) {
				t.Errorf("sampler = %s, want %s…", tcfg.sampler.Description(), tc.sampler)
			}
		})
	}
}

func TestLoadConfigTraceTrust(t *testing.T) {
	env := validEnv()
	env["AUTHGATE_TRACE_TRUST_CLIENT"] = "sometimes"
	env["OTEL_TRACES_SAMPLER"] = "bogus"
	setEnv(t, env)
	_, err := loadConfig()
	if err == nil {
		t.Fatal("loadConfig accepted a bad AUTHGATE_TRACE_TRUST_CLIENT and OTEL_TRACES_SAMPLER")
	}
	for _, want := range []string{`AUTHGATE_TRACE_TRUST_CLIENT: "sometimes" is not never, trusted-proxies or always`, `OTEL_TRACES_SAMPLER: "bogus"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestTraceLogHandler: a record logged with a span's context carries its
// trace and span ids; one without carries neither.
func TestTraceLogHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(traceLogHandler{slog.NewJSONHandler(&buf, nil)}).With("k", "v")
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	ctx, span := tp.Tracer("test").Start(context.Background(), "s")
	log.InfoContext(ctx, "with span")
	log.Info("without")
	span.End()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	sc := trace.SpanContextFromContext(ctx)
	if !strings.Contains(lines[0], `"trace_id":"`+sc.TraceID().String()+`"`) || !strings.Contains(lines[0], `"span_id":"`+sc.SpanID().String()+`"`) {
		t.Errorf("line with a span = %s, want its trace and span ids", lines[0])
	}
	if strings.Contains(lines[1], "trace_id") {
		t.Errorf("line without a span = %s, want no trace id", lines[1])
	}
}
