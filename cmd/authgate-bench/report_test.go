package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func fakeRun(target string, n int, rate float64, p50us int, err string) runResult {
	return runResult{
		target: target, run: n, ops: 1000, rate: rate,
		p50: time.Duration(p50us) * time.Microsecond, p99: time.Duration(4*p50us) * time.Microsecond,
		cpuPerOp: 100, auxCPUPerOp: math.NaN(), peakRSSKiB: 20 << 10, newConns: 1,
		idp: map[string]int64{idpTokenRefresh: 1000}, err: err,
	}
}

func TestSummarize(t *testing.T) {
	runs := []runResult{
		fakeRun(targetAuthgate, 1, 9000, 100, ""),
		fakeRun(targetBare, 1, 10000, 90, ""),
		fakeRun(targetAuthgate, 2, 9500, 120, ""),
		fakeRun(targetBare, 2, 11000, 80, ""),
		fakeRun(targetAuthgate, 3, 1, 1, "wrk failed"), // failed runs are left out
		fakeRun(targetAuthgate, 4, 8000, 110, ""),
	}
	a, ok := summarize(runs, targetAuthgate)
	if !ok {
		t.Fatal("summarize found no authgate run")
	}
	if a.runs != 3 || a.rate != 9000 || a.p50 != 110 || a.p99 != 440 {
		t.Errorf("authgate summary = %+v, want 3 runs, median rate 9000, p50 110, p99 440", a)
	}
	if a.conn != 0.001 || a.idpPerOp[idpTokenRefresh] != 1 || a.rss != 20 {
		t.Errorf("authgate summary = %+v, want 0.001 new conns/op, 1 refresh/op, 20 MiB", a)
	}
	b, _ := summarize(runs, targetBare)
	if b.rate != 10500 {
		t.Errorf("bare median rate = %v, want 10500", b.rate)
	}
	if _, ok := summarize(runs, "nobody"); ok {
		t.Error("summarize found runs of an unknown target")
	}
}

func TestPairedP50Diffs(t *testing.T) {
	runs := []runResult{
		fakeRun(targetAuthgate, 1, 1, 130, ""),
		fakeRun(targetBarePooled, 1, 1, 100, ""),
		fakeRun(targetAuthgate, 2, 1, 90, ""),
		fakeRun(targetBarePooled, 2, 1, 100, ""),
		fakeRun(targetAuthgate, 3, 1, 500, "failed"), // unpaired: left out
		fakeRun(targetBarePooled, 3, 1, 100, ""),
		fakeRun(targetBare, 1, 1, 50, ""), // not the reference
	}
	got := pairedP50Diffs(runs)
	if len(got) != 2 || got[0] != 30 || got[1] != -10 {
		t.Errorf("pairedP50Diffs = %v, want [30 -10]", got)
	}
}

func TestRenderTargets(t *testing.T) {
	tests := []struct {
		name      string
		authRate  float64
		authP50us int
		want      []string
	}{
		{"met", 9500, 110, []string{"| 0.950× (9,500 vs 10,000 req/s); requests per CPU-second 1.000× (100.0 vs 100.0 µs CPU per request) | met |", "| +10 µs (p50 110 vs 100 µs; p99 440 vs 400 µs; median of the 1 paired differences +10 µs) | met |"}},
		{"missed", 8900, 126, []string{"| 0.890× (8,900 vs 10,000 req/s); requests per CPU-second 1.000× (100.0 vs 100.0 µs CPU per request) | **missed** |", "| +26 µs (p50 126 vs 100 µs; p99 504 vs 400 µs; median of the 1 paired differences +26 µs) | **missed** |"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _ := parseFlags(nil, io.Discard)
			r := &report{cfg: cfg, cases: []*caseResult{
				{name: caseCookie, runs: []runResult{fakeRun(targetAuthgate, 1, tt.authRate, 100, ""), fakeRun(targetBarePooled, 1, 10000, 100, "")}},
				{name: caseRedis, skipped: "authgate has no Redis store yet"},
				{name: caseOneConn, runs: []runResult{fakeRun(targetAuthgate, 1, 1000, tt.authP50us, ""), fakeRun(targetBarePooled, 1, 1000, 100, "")}},
			}}
			var b strings.Builder
			r.renderTargets(&b)
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("targets table lacks %q:\n%s", w, b.String())
				}
			}
			if !strings.Contains(b.String(), "| authgate has no Redis store yet | not measured |") {
				t.Errorf("targets table does not say the Redis case was skipped:\n%s", b.String())
			}
		})
	}
}

func TestRenderWholeReport(t *testing.T) {
	cfg, _ := parseFlags(nil, io.Discard)
	r := &report{
		cfg: cfg, started: time.Unix(0, 0), finished: time.Unix(200, 0), loadStart: "1.00 0.50 0.20", loadEnd: "1.50 0.70 0.30",
		machine: []keyValue{{"CPUs (nproc)", "2"}},
		cases: []*caseResult{
			{name: caseCookie, title: "t", load: "wrk -t2 -c64", runs: []runResult{fakeRun(targetAuthgate, 1, 9500, 110, ""), fakeRun(targetBarePooled, 1, 10000, 100, "")}},
			{name: caseLogin, runs: []runResult{fakeRun(targetAuthgate, 1, 300, 20000, ""), fakeRun(targetAuthgate, 2, 1, 1, "no operation completed")}},
		},
		idpTotals: map[string]map[string]int64{"main IdP (1h tokens)": {idpDiscovery: 1}},
		micro:     "BenchmarkHandlerAuthenticated-2 100 1000 ns/op 10 B/op 3 allocs/op",
		soak:      "# authgate soak\n\nsoak text\n\n## Samples\n",
	}
	var b strings.Builder
	r.render(&b)
	if strings.Contains(b.String(), "# authgate soak") {
		t.Error("the included soak report kept its own title")
	}
	for _, w := range []string{
		"## Targets", "## Side by side", "## Every run", "## Machine and settings", "## How to read this",
		"| 1.50 0.70 0.30 |", "| login | 2 | authgate | failed: no operation completed |",
		"| 3 allocs/op (bare ReverseProxy: ?) | reported |", "`GET /.well-known/openid-configuration` | 1 |",
		"## Soak\n\nsoak text\n\n### Samples\n",
	} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("report lacks %q", w)
		}
	}
}

// TestUpstreamCountsConnections runs the upstream's handler on a real
// server: three requests on one keep-alive connection are one new
// connection and three requests, served with a 128-byte body.
func TestUpstreamCountsConnections(t *testing.T) {
	f := &fixedBody{body: []byte(strings.Repeat("x", 128))}
	srv := httptest.NewUnstartedServer(f)
	srv.Config.ConnState = f.connState
	srv.Start()
	defer srv.Close()
	client := srv.Client()
	for range 3 {
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(body) != 128 {
			t.Errorf("body length = %d, want 128", len(body))
		}
	}
	w := httptest.NewRecorder()
	f.serveStats(w, httptest.NewRequest(http.MethodGet, "/stats", nil))
	var got upstreamCounters
	if err := json.NewDecoder(w.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got != (upstreamCounters{NewConns: 1, Requests: 3}) {
		t.Errorf("stats = %+v, want 1 new connection and 3 requests", got)
	}
}

func TestRunLoopCountsErrors(t *testing.T) {
	boom := errors.New("boom")
	calls := 0
	ops := []func(context.Context) error{
		func(context.Context) error { return nil },
		func(context.Context) error {
			calls++
			if calls == 1 {
				return boom
			}
			return nil
		},
	}
	r := runLoop(context.Background(), 20*time.Millisecond, ops)
	if r.errors != 1 || !errors.Is(r.firstErr, boom) {
		t.Errorf("runLoop errors = %d (%v), want 1 (boom)", r.errors, r.firstErr)
	}
	if r.ops == 0 || int64(len(r.latencies)) != r.ops {
		t.Errorf("runLoop ops = %d with %d latencies, want some and one latency each", r.ops, len(r.latencies))
	}
}

// TestRunLoopLetsOperationsFinish: an operation under way at the deadline
// completes and counts; it is not cut off half-way.
func TestRunLoopLetsOperationsFinish(t *testing.T) {
	var cancelled bool
	ops := []func(context.Context) error{func(ctx context.Context) error {
		select {
		case <-time.After(30 * time.Millisecond):
			return nil
		case <-ctx.Done():
			cancelled = true
			return ctx.Err()
		}
	}}
	r := runLoop(context.Background(), 10*time.Millisecond, ops)
	if cancelled || r.ops != 1 || r.errors != 0 {
		t.Errorf("runLoop = %d ops, %d errors, cancelled %v; want the one operation finished", r.ops, r.errors, cancelled)
	}
}
