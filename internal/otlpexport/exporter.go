// Package otlpexport is a trace exporter for OTLP over HTTP with protobuf,
// configured by the standard OTEL_EXPORTER_OTLP_* variables. It replaces
// the OpenTelemetry otlptracehttp/otlptracegrpc exporters, whose use of
// the collector package links gRPC (and through it html/template) into
// the binary: 17 MB and about 4 MiB of idle memory (issue 13).
package otlpexport

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/protobuf/proto"
)

// Config is where and how to send spans.
type Config struct {
	// Endpoint is the full URL spans are POSTed to.
	Endpoint string
	// Headers are added to every request (e.g. an API key).
	Headers map[string]string
	// Timeout bounds one export, retries included.
	Timeout time.Duration
	// Gzip compresses the request body.
	Gzip bool
	// RootCAs, when not nil, verifies the collector's certificate.
	RootCAs *x509.CertPool
}

// DefaultEndpoint is the OTLP/HTTP trace endpoint when no variable sets one.
const DefaultEndpoint = "http://localhost:4318/v1/traces"

// ConfigFromEnv reads the OTEL_EXPORTER_OTLP_* variables through getenv,
// the TRACES_ ones winning over the general ones, as the SDK's exporter
// did. Every problem is returned, naming its variable and never a header
// value or the endpoint (either may carry a credential).
func ConfigFromEnv(getenv func(string) string) (Config, []error) {
	var problems []error
	get := func(name string) (string, string) {
		k := "OTEL_EXPORTER_OTLP_TRACES_" + name
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return k, v
		}
		k = "OTEL_EXPORTER_OTLP_" + name
		return k, strings.TrimSpace(getenv(k))
	}
	c := Config{Endpoint: DefaultEndpoint, Timeout: 10 * time.Second}
	if v := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")); v != "" {
		c.Endpoint = v // used as is, per the specification
	} else if v := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_ENDPOINT")); v != "" {
		c.Endpoint = strings.TrimSuffix(v, "/") + "/v1/traces"
	}
	if k, v := get("HEADERS"); v != "" {
		c.Headers = map[string]string{}
		for _, pair := range strings.Split(v, ",") {
			name, val, ok := strings.Cut(pair, "=")
			name = strings.TrimSpace(name)
			dec, err := url.PathUnescape(strings.TrimSpace(val))
			if !ok || name == "" || err != nil {
				problems = append(problems, fmt.Errorf("%s: an entry is not key=value with a URL-encoded value", k))
				continue
			}
			c.Headers[name] = dec
		}
	}
	if k, v := get("TIMEOUT"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms <= 0 {
			problems = append(problems, fmt.Errorf("%s: %q is not a positive number of milliseconds", k, v))
		} else {
			c.Timeout = time.Duration(ms) * time.Millisecond
		}
	}
	if k, v := get("COMPRESSION"); v != "" {
		switch v {
		case "gzip":
			c.Gzip = true
		case "none":
		default:
			problems = append(problems, fmt.Errorf("%s: %q is not gzip or none", k, v))
		}
	}
	if k, v := get("CERTIFICATE"); v != "" {
		pem, err := os.ReadFile(v)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", k, err))
		} else {
			pool, err := x509.SystemCertPool()
			if err != nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				problems = append(problems, fmt.Errorf("%s: %s holds no PEM certificate", k, v))
			} else {
				c.RootCAs = pool
			}
		}
	}
	return c, problems
}

// Exporter sends spans to an OTLP/HTTP receiver as protobuf. It
// implements sdktrace.SpanExporter; the batch span processor calls it
// from one goroutine at a time.
type Exporter struct {
	cfg    Config
	client *http.Client
	// backoff is the first wait before a retry; it doubles each time.
	backoff time.Duration
}

var _ sdktrace.SpanExporter = (*Exporter)(nil)

// New returns an exporter for cfg.
func New(cfg Config) *Exporter {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.RootCAs != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	return &Exporter{cfg: cfg, client: &http.Client{Transport: tr}, backoff: 100 * time.Millisecond}
}

// maxAttempts bounds the tries of one export (the timeout bounds them too).
const maxAttempts = 4

// ExportSpans sends spans in one request, retrying on 429, 502, 503 and
// 504 and on transport errors with a doubling wait, within the timeout.
func (e *Exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if len(spans) == 0 {
		return nil
	}
	body, err := proto.Marshal(TracesData(spans))
	if err != nil {
		return fmt.Errorf("otlp: marshal spans: %w", err)
	}
	if e.cfg.Gzip {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(body); err != nil {
			return fmt.Errorf("otlp: gzip: %w", err)
		}
		if err := zw.Close(); err != nil {
			return fmt.Errorf("otlp: gzip: %w", err)
		}
		body = buf.Bytes()
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	wait := e.backoff
	for attempt := 1; ; attempt++ {
		retry, err := e.send(ctx, body)
		if err == nil {
			return nil
		}
		if !retry || attempt == maxAttempts {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up: %w)", err, ctx.Err())
		case <-t.C:
		}
		wait *= 2
	}
}

// send makes one attempt; retry says whether another may succeed.
func (e *Exporter) send(ctx context.Context, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.cfg.Endpoint, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("otlp: bad endpoint URL") // the URL may carry a credential: not echoed
	}
	for k, v := range e.cfg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if e.cfg.Gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		// *url.Error names the URL; keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return ctx.Err() == nil, fmt.Errorf("otlp: export spans: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, nil
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		retry = true
	}
	return retry, fmt.Errorf("otlp: export spans: receiver answered %s", resp.Status)
}

// Shutdown releases idle connections; the exporter is not used afterwards.
func (e *Exporter) Shutdown(ctx context.Context) error {
	e.client.CloseIdleConnections()
	return ctx.Err()
}
