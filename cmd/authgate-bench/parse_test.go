package main

import (
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var d []time.Duration
		for _, n := range ns {
			d = append(d, time.Duration(n)*time.Millisecond)
		}
		return d
	}
	tests := []struct {
		name    string
		samples []time.Duration
		p       float64
		want    time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample", ms(7), 99, 7 * time.Millisecond},
		{"p50 of odd count", ms(5, 1, 3), 50, 3 * time.Millisecond},
		{"p50 of even count is the lower middle", ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{"p99 of 100 is the 99th", ms(seq(1, 100)...), 99, 99 * time.Millisecond},
		{"p99 of 10 is the largest", ms(seq(1, 10)...), 99, 10 * time.Millisecond},
		{"p100 is the largest", ms(3, 9, 1), 100, 9 * time.Millisecond},
		{"tiny p is the smallest", ms(3, 9, 1), 0.001, 1 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.samples)
			if got := percentile(tt.samples, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.samples, tt.p, got, tt.want)
			}
			if !slices.Equal(in, tt.samples) {
				t.Errorf("percentile reordered its input: %v, was %v", tt.samples, in)
			}
		})
	}
}

func seq(from, to int) []int {
	var s []int
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want float64
	}{
		{"odd", []float64{3, 1, 2}, 2},
		{"even takes the mean of the middle two", []float64{4, 1, 3, 2}, 2.5},
		{"one", []float64{7}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := median(tt.in); got != tt.want {
				t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
	if got := median(nil); !math.IsNaN(got) {
		t.Errorf("median(nil) = %v, want NaN", got)
	}
	if got := ratio(1, 0); !math.IsNaN(got) {
		t.Errorf("ratio(1, 0) = %v, want NaN", got)
	}
}

// wrkOutput is what wrk 4.1 prints with wrkScript.
const wrkOutput = `Running 5s test @ http://127.0.0.1:4180/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     6.12ms    2.01ms  40.00ms   80.00%
    Req/Sec     5.20k   300.00     6.00k    70.00%
  51234 requests in 5.00s, 12.00MB read
  Non-2xx or 3xx responses: 12
Requests/sec:  10246.80
Transfer/sec:      2.40MB
AGB requests=51234 duration_us=5000123 status_errors=12 socket_errors=3 timeouts=1 p50_us=6011 p99_us=18777 mean_us=6120.5 max_us=40001
`

func TestParseWrk(t *testing.T) {
	got, err := parseWrk(wrkOutput)
	if err != nil {
		t.Fatal(err)
	}
	want := wrkResult{
		Requests: 51234, Duration: 5000123 * time.Microsecond, StatusErrors: 12, SocketErrors: 3, Timeouts: 1,
		P50: 6011 * time.Microsecond, P99: 18777 * time.Microsecond, Mean: 6120500 * time.Nanosecond, Max: 40001 * time.Microsecond,
	}
	if got != want {
		t.Errorf("parseWrk = %+v, want %+v", got, want)
	}
}

func TestParseWrkRejects(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want string
	}{
		{"no report line", "Running 5s test @ http://127.0.0.1/\n", "no \"AGB\" line"},
		{"missing field", "AGB requests=1 duration_us=2\n", "no status_errors"},
		{"not a number", strings.Replace(wrkOutput, "p50_us=6011", "p50_us=fast", 1), "p50_us"},
		{"not key=value", strings.Replace(wrkOutput, "timeouts=1", "timeouts", 1), "not key=value"},
		{"zero duration", strings.Replace(wrkOutput, "duration_us=5000123", "duration_us=0", 1), "duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseWrk(tt.out)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseWrk error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestWrkArgs(t *testing.T) {
	got := wrkArgs(2, 64, 4500*time.Millisecond, "/tmp/r.lua", "http://127.0.0.1:1/", []string{"Cookie: a=b", "Accept: */*"})
	want := []string{"-t", "2", "-c", "64", "-d", "5s", "--timeout", "5s", "-s", "/tmp/r.lua", "-H", "Cookie: a=b", "-H", "Accept: */*", "http://127.0.0.1:1/"}
	if !slices.Equal(got, want) {
		t.Errorf("wrkArgs = %q, want %q", got, want)
	}
}

func TestParseStatCPU(t *testing.T) {
	// A command name with a space and parentheses; utime 1500, stime 250.
	stat := []byte("4242 (auth (gate) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 1500 250 0 0 20 0 9 0 123 1000000 2000 18446744073709551615\n")
	got, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if got != 1750 {
		t.Errorf("parseStatCPU = %d, want 1750", got)
	}
	for _, bad := range []string{"4242 no parens S 1", "4242 (x) S 1 2 3"} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseStatCPU(%q) = nil error, want one", bad)
		}
	}
}

func TestParseStatusKiB(t *testing.T) {
	status := []byte("Name:\tauthgate\nVmPeak:\t 1300000 kB\nVmHWM:\t   23456 kB\nVmRSS:\t   20000 kB\nThreads:\t9\n")
	tests := []struct {
		field string
		want  int64
	}{
		{"VmHWM", 23456},
		{"VmRSS", 20000},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			got, err := parseStatusKiB(status, tt.field)
			if err != nil || got != tt.want {
				t.Errorf("parseStatusKiB(%q) = %d, %v, want %d", tt.field, got, err, tt.want)
			}
		})
	}
	if _, err := parseStatusKiB(status, "Threads"); err == nil {
		t.Error("parseStatusKiB(Threads) accepted a value without kB")
	}
	if _, err := parseStatusKiB(status, "VmSwap"); err == nil {
		t.Error("parseStatusKiB(VmSwap) found a missing line")
	}
}

func TestCPUMicrosPerOp(t *testing.T) {
	// 150 ticks at 100 Hz = 1.5 s over 10,000 operations = 150 µs each.
	if got := cpuMicrosPerOp(150, 100, 10000); got != 150 {
		t.Errorf("cpuMicrosPerOp(150, 100, 10000) = %v, want 150", got)
	}
	if got := cpuMicrosPerOp(150, 100, 0); !math.IsNaN(got) {
		t.Errorf("cpuMicrosPerOp with no operations = %v, want NaN", got)
	}
}

func TestParseListening(t *testing.T) {
	got, err := parseListening("listening 127.0.0.1:1 127.0.0.1:2", 2)
	if err != nil || !slices.Equal(got, []string{"127.0.0.1:1", "127.0.0.1:2"}) {
		t.Errorf("parseListening = %q, %v, want both addresses", got, err)
	}
	for _, bad := range []string{"ready 127.0.0.1:1", "listening 127.0.0.1:1", "listening 127.0.0.1:1 10.0.0.1:2"} {
		if _, err := parseListening(bad, 2); err == nil {
			t.Errorf("parseListening(%q) = nil error, want one", bad)
		}
	}
}

func TestSessionCookieHeader(t *testing.T) {
	cookies := []*http.Cookie{
		{Name: "authgate_2", Value: "c"},
		{Name: "demoidp_session", Value: "idp"},
		{Name: "authgate", Value: "a"},
		{Name: "authgate_flow_abc", Value: "flow"},
		{Name: "authgate_1", Value: "b"},
		{Name: "authgate_01", Value: "odd"},
		{Name: "authgate_100", Value: "too-far"},
		{Name: "authgate_3", Value: ""},
	}
	got := sessionCookieHeader(cookies, "authgate")
	want := "authgate=a; authgate_1=b; authgate_2=c"
	if got != want {
		t.Errorf("sessionCookieHeader = %q, want %q", got, want)
	}
	// oauth2-proxy and mod_auth_openidc count chunks from 0;
	// mod_auth_openidc also sends the number of chunks.
	peer := []*http.Cookie{
		{Name: "authgate_1", Value: "b"},
		{Name: "mod_auth_openidc_state_xyz", Value: "state"},
		{Name: "authgate_chunks", Value: "2"},
		{Name: "authgate_0", Value: "a"},
		{Name: "authgate_csrf", Value: "csrf"},
	}
	if got, want := sessionCookieHeader(peer, "authgate"), "authgate_chunks=2; authgate_0=a; authgate_1=b"; got != want {
		t.Errorf("sessionCookieHeader(peer chunks) = %q, want %q", got, want)
	}
}

func TestCookieSetUpdate(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := parseCookieHeader("authgate=old; authgate_1=chunk; theme=dark")
	resp := &http.Response{Header: http.Header{"Set-Cookie": {
		"authgate=new; Path=/; HttpOnly",
		"authgate_1=; Path=/; Max-Age=0",
		"theme=x; Expires=Thu, 01 Jan 2025 00:00:00 GMT",
	}}}
	s.update(resp, now)
	if got, want := s.header("authgate"), "authgate=new"; got != want {
		t.Errorf("header after update = %q, want %q", got, want)
	}
	if _, ok := s["theme"]; ok {
		t.Error("an expired Set-Cookie did not delete the cookie")
	}
}

func TestParseBenchLine(t *testing.T) {
	line := "BenchmarkHandlerAuthenticated-2   \t   20000\t     61234 ns/op\t    4567 B/op\t      58 allocs/op"
	got, ok := parseBenchLine(line)
	want := benchLine{name: "BenchmarkHandlerAuthenticated", nsPerOp: 61234, bytesPerOp: 4567, allocsPerOp: 58}
	if !ok || got != want {
		t.Errorf("parseBenchLine = %+v, %v, want %+v", got, ok, want)
	}
	for _, bad := range []string{"PASS", "ok  \tgithub.com/x\t1.2s", "BenchmarkX-2 --- FAIL"} {
		if _, ok := parseBenchLine(bad); ok {
			t.Errorf("parseBenchLine(%q) accepted it", bad)
		}
	}
	out := "goos: linux\n" + line + "\nBenchmarkBareReverseProxy-2 30000 41000 ns/op 3000 B/op 45 allocs/op\nPASS\n"
	handler, bare, ok := microAllocs(out)
	if !ok || handler != "58" || bare != "45" {
		t.Errorf("microAllocs = %q, %q, %v, want 58, 45, true", handler, bare, ok)
	}
	if got := keepBenchLines(out); strings.Contains(got, "PASS") || !strings.Contains(got, "goos: linux") {
		t.Errorf("keepBenchLines = %q, want the header and benchmark lines only", got)
	}
}

func TestNum(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{12345.4, "12,345"},
		{999, "999"},
		{1234567, "1,234,567"},
		{42.25, "42.2"},
		{math.NaN(), "–"},
	}
	for _, tt := range tests {
		if got := num(tt.in); got != tt.want {
			t.Errorf("num(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDescribeHeadersHidesCookie(t *testing.T) {
	got := describeHeaders([]string{"Cookie: authgate=SECRET", "Accept: application/json"})
	if strings.Contains(got, "SECRET") || !strings.Contains(got, "session cookie") {
		t.Errorf("describeHeaders = %q, want the cookie named but not shown", got)
	}
}

func TestParseFlags(t *testing.T) {
	c, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.duration != 5*time.Second || c.runs != 3 || c.connections != 64 || c.threads != 2 || !slices.Equal(c.cases, allCases) {
		t.Errorf("defaults = %+v, want 5s, 3 runs, -c64 -t2, every case", c)
	}
	// 8 cases, each target 1s warm-up + 3 × 5s: cookie, navigation, api,
	// one-conn and refresh with authgate, two bare proxies and two peers;
	// redis and refresh-grace with authgate and the bare proxies; login
	// with authgate and the peers.
	if got, want := c.plannedLoad(), (5*5+2*3+3)*16*time.Second; got != want {
		t.Errorf("plannedLoad = %s, want %s", got, want)
	}
	c, err = parseFlags([]string{"-cases", "api, cookie,api"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.cases, []string{caseCookie, caseAPI}) {
		t.Errorf("cases = %q, want [cookie api] in run order, once each", c.cases)
	}

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"fractional duration", []string{"-duration", "1500ms"}, "-duration"},
		{"no runs", []string{"-runs", "0"}, "-runs"},
		{"more threads than connections", []string{"-connections", "1", "-threads", "2"}, "-threads"},
		{"unknown case", []string{"-cases", "cookie,fast"}, `unknown case "fast"`},
		{"no case", []string{"-cases", ","}, "none selected"},
		{"grace window overrun", []string{"-duration", "30s"}, "grace window"},
		{"rev and binary", []string{"-rev", "HEAD", "-authgate", "/bin/x"}, "set one"},
		{"argument", []string{"extra"}, "unexpected argument"},
		{"unknown peer", []string{"-peers", "oauth2-proxy,pomerium"}, `unknown peer "pomerium"`},
		{"short soak", []string{"-soak", "10s"}, "-soak 10s"},
		{"soak sampled too rarely", []string{"-soak", "1m", "-soak-interval", "30s"}, "-soak-interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseFlags(%q) error = %v, want one containing %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestDrift(t *testing.T) {
	at := make([]time.Duration, 20)
	for i := range at {
		at[i] = time.Duration(i) * 10 * time.Second
	}
	flat, climbing, sawtooth := make([]float64, 20), make([]float64, 20), make([]float64, 20)
	for i := range flat {
		flat[i] = 100
		climbing[i] = 100 + float64(i) // +9 over the second half (10..19), mean 114.5
		sawtooth[i] = 100 + float64(i%2)*10
	}
	if d := drift(at, flat); d != 0 {
		t.Errorf("drift(flat) = %v, want 0", d)
	}
	if d, want := drift(at, climbing), 9/114.5; math.Abs(d-want) > 1e-9 {
		t.Errorf("drift(climbing) = %v, want %v", d, want)
	}
	if d := drift(at, sawtooth); math.Abs(d) > 0.03 { // ±5% around the mean: well under the 5% limit
		t.Errorf("drift(sawtooth) = %v, want about 0: a GC sawtooth is not drift", d)
	}
	if d := drift(at[:3], flat[:3]); !math.IsNaN(d) {
		t.Errorf("drift of 3 samples = %v, want NaN", d)
	}
}

func TestParseMetrics(t *testing.T) {
	text := "# HELP go_goroutines x\n# TYPE go_goroutines gauge\ngo_goroutines 42\ngo_memstats_heap_inuse_bytes 1.2582912e+07\nauthgate_requests_total{code=\"200\"} 5\n"
	m, err := parseMetrics(strings.NewReader(text), "go_goroutines", "go_memstats_heap_inuse_bytes")
	if err != nil || m["go_goroutines"] != 42 || m["go_memstats_heap_inuse_bytes"] != 12582912 {
		t.Errorf("parseMetrics = %v, %v; want 42 goroutines and 12 MiB", m, err)
	}
	if _, err := parseMetrics(strings.NewReader(text), "process_resident_memory_bytes"); err == nil {
		t.Error("parseMetrics found a missing metric")
	}
}

func TestParseInitTrace(t *testing.T) {
	out := "init internal/bytealg @0.003 ms, 0.003 ms clock, 0 bytes, 0 allocs\n" +
		"init github.com/prometheus/procfs @3.1 ms, 0.50 ms clock, 96432 bytes, 886 allocs\n" +
		"authgate dev\n" +
		"init unicode @1.0 ms, 0.13 ms clock, 11400 bytes, 16 allocs\n"
	got := parseInitTrace(out)
	if len(got) != 3 || got[1].pkg != "github.com/prometheus/procfs" || got[1].bytes != 96432 || got[1].allocs != 886 || got[2].bytes != 11400 {
		t.Errorf("parseInitTrace = %+v", got)
	}
}

func TestMemStatsFromMetrics(t *testing.T) {
	exposition := `# HELP go_memstats_heap_inuse_bytes x
# TYPE go_memstats_heap_inuse_bytes gauge
go_memstats_heap_inuse_bytes 4.194304e+06
go_memstats_heap_idle_bytes 5.24288e+06
go_memstats_heap_released_bytes 1.048576e+06
go_memstats_stack_inuse_bytes 1.048576e+06
go_memstats_gc_sys_bytes 2.097152e+06
go_memstats_other_sys_bytes 7
go_memstats_mspan_sys_bytes 100
go_memstats_mcache_sys_bytes 20
go_memstats_buck_hash_sys_bytes 3
go_memstats_next_gc_bytes 8.388608e+06
go_gc_duration_seconds{quantile="0.5"} 1e-05
go_gc_duration_seconds_count 42
`
	m, err := parseMetrics(strings.NewReader(exposition), memStatsMetrics...)
	if err != nil {
		t.Fatal(err)
	}
	got, err := memStatsFrom(m)
	if err != nil {
		t.Fatal(err)
	}
	want := memStats{heapInuse: 4194304, heapIdle: 4194304, stackInuse: 1048576, gcSys: 2097152, otherSys: 130, nextGC: 8388608, numGC: 42}
	if got != want {
		t.Errorf("memStatsFrom = %+v, want %+v", got, want)
	}
	delete(m, "go_memstats_gc_sys_bytes")
	if _, err := memStatsFrom(m); err == nil || !strings.Contains(err.Error(), "go_memstats_gc_sys_bytes") {
		t.Errorf("memStatsFrom without a sample: %v, want an error naming it", err)
	}
}

func TestSymbolPackage(t *testing.T) {
	for in, want := range map[string]string{
		"net/http.(*conn).serve":                          "net/http",
		"runtime.mallocgc":                                "runtime",
		"github.com/authgate/authgate/proxy.(*Handler).X": "github.com/authgate/authgate/proxy",
		"go.opentelemetry.io/otel/sdk/trace.New":          "go.opentelemetry.io/otel/sdk/trace",
		"type:.eq.x":                                      "type:",
	} {
		if got := symbolPackage(in); got != want {
			t.Errorf("symbolPackage(%q) = %q, want %q", in, got, want)
		}
	}
}
