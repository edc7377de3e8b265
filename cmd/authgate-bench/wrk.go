package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/authgate/authgate/cmd/authgate-bench/internal/benchnet"
)

// wrkScript makes wrk print one machine-readable line at the end of a run.
// latency:percentile returns microseconds. summary.errors.status counts
// responses with a status above 399 (wrk's own definition).
const wrkScript = `done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("AGB requests=%.0f duration_us=%.0f status_errors=%.0f socket_errors=%.0f timeouts=%.0f p50_us=%.0f p99_us=%.0f mean_us=%.1f max_us=%.0f\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end
`

// wrkLinePrefix starts the line wrkScript prints.
const wrkLinePrefix = "AGB "

// wrkResult is one wrk run, as reported by wrkScript.
type wrkResult struct {
	Requests     int64
	Duration     time.Duration
	StatusErrors int64 // responses with status ≥ 400
	SocketErrors int64 // connect, read and write errors
	Timeouts     int64
	P50, P99     time.Duration
	Mean, Max    time.Duration
}

// parseWrk finds wrkScript's line in wrk's output and decodes it.
func parseWrk(out string) (wrkResult, error) {
	var line string
	for l := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(l, wrkLinePrefix) {
			line = strings.TrimSpace(strings.TrimPrefix(l, wrkLinePrefix))
		}
	}
	if line == "" {
		return wrkResult{}, fmt.Errorf("parse wrk output: no %q line", strings.TrimSpace(wrkLinePrefix))
	}
	vals := make(map[string]float64)
	for field := range strings.FieldsSeq(line) {
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			return wrkResult{}, fmt.Errorf("parse wrk output: field %q is not key=value", field)
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return wrkResult{}, fmt.Errorf("parse wrk output: %s: %w", k, err)
		}
		vals[k] = f
	}
	for _, k := range []string{"requests", "duration_us", "status_errors", "socket_errors", "timeouts", "p50_us", "p99_us", "mean_us", "max_us"} {
		if _, ok := vals[k]; !ok {
			return wrkResult{}, fmt.Errorf("parse wrk output: no %s", k)
		}
	}
	us := func(k string) time.Duration { return time.Duration(vals[k] * float64(time.Microsecond)) }
	r := wrkResult{
		Requests:     int64(vals["requests"]),
		Duration:     us("duration_us"),
		StatusErrors: int64(vals["status_errors"]),
		SocketErrors: int64(vals["socket_errors"]),
		Timeouts:     int64(vals["timeouts"]),
		P50:          us("p50_us"),
		P99:          us("p99_us"),
		Mean:         us("mean_us"),
		Max:          us("max_us"),
	}
	if r.Duration <= 0 {
		return wrkResult{}, fmt.Errorf("parse wrk output: duration %v", r.Duration)
	}
	return r, nil
}

// wrkArgs returns wrk's command line for one run. d is rounded up to whole
// seconds, wrk's unit.
func wrkArgs(threads, conns int, d time.Duration, script, target string, headers []string) []string {
	secs := int((d + time.Second - 1) / time.Second)
	args := []string{
		"-t", strconv.Itoa(threads),
		"-c", strconv.Itoa(conns),
		"-d", strconv.Itoa(secs) + "s",
		"--timeout", "5s",
		"-s", script,
	}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	return append(args, target)
}

// wrkRunner runs wrk with wrkScript.
type wrkRunner struct {
	path   string // the wrk executable
	script string // wrkScript, written to a file
}

func newWrkRunner(path, dir string) (*wrkRunner, error) {
	p, err := exec.LookPath(path)
	if err != nil {
		return nil, fmt.Errorf("find wrk (apt-get install wrk): %w", err)
	}
	script := filepath.Join(dir, "report.lua")
	if err := os.WriteFile(script, []byte(wrkScript), 0o600); err != nil {
		return nil, fmt.Errorf("write wrk script: %w", err)
	}
	return &wrkRunner{path: p, script: script}, nil
}

// run drives target for d and returns wrk's numbers. It refuses targets
// that are not loopback, and kills wrk if it overruns d by 20s.
func (w *wrkRunner) run(ctx context.Context, threads, conns int, d time.Duration, target string, headers []string) (wrkResult, error) {
	if err := benchnet.RequireLoopbackURL(target); err != nil {
		return wrkResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, d+20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.path, wrkArgs(threads, conns, d, w.script, target, headers)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("run wrk: %w: %s", err, lastLines(string(out), 5))
	}
	return parseWrk(string(out))
}

// lastLines returns the last n lines of s, for error messages.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
