package main

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// Targets of issues 7 and 12. Ratios and added latency are against the
// pooled bare proxy (targetBarePooled).
const (
	targetCookieRatio   = 0.90
	targetRedisRatio    = 0.75
	targetAddedP50      = 25 * time.Microsecond
	targetPeakRSSMiB    = 24.0
	targetIdleRSSMiB    = 12.0
	targetReusedConnsOp = 0.001 // new upstream connections per request counted as "reused"
)

// reference is the target the ratios divide by.
const reference = targetBarePooled

// targetOrder is the order targets appear in tables.
var targetOrder = []string{targetAuthgate, targetBarePooled, targetBare, targetOAuth2, targetApache}

type keyValue struct{ key, value string }

type idleRSS struct {
	name             string
	afterStartKiB    int64
	afterLoginKiB    int64 // 0 when not measured
	anonKiB, fileKiB int64 // split of afterStartKiB; 0 when unknown
}

// report is everything the Markdown shows.
type report struct {
	cfg                *config
	started, finished  time.Time
	loadStart, loadEnd string
	machine            []keyValue
	instances          []*instance
	idle               []idleRSS
	cases              []*caseResult
	idpTotals          map[string]map[string]int64 // IdP name → request → count
	micro, microErr    string
	binaries           []binaryInfo
	targets            []keyValue // how each target other than authgate is configured
	soak, notes        string     // deploy/bench/SOAK.md and NOTES.md, included when present
}

// targetSummary holds the medians of one target's runs in a case.
type targetSummary struct {
	runs                                   int
	rate, p50, p99, cpu, auxCPU, rss, conn float64 // p50/p99 in µs, rss in MiB, conn per op
	idpPerOp                               map[string]float64
	errors, socketErrors                   int64
}

// summarize takes the medians of the successful runs of target name.
func summarize(runs []runResult, name string) (targetSummary, bool) {
	var rate, p50, p99, cpu, aux, rss, conn []float64
	idp := make(map[string][]float64)
	s := targetSummary{idpPerOp: make(map[string]float64)}
	var ok []runResult
	for _, r := range runs {
		if r.target != name || r.err != "" {
			continue
		}
		ok = append(ok, r)
	}
	if len(ok) == 0 {
		return s, false
	}
	keys := make(map[string]bool)
	for _, r := range ok {
		for k := range r.idp {
			keys[k] = true
		}
	}
	for _, r := range ok {
		rate = append(rate, r.rate)
		p50 = append(p50, micros(r.p50))
		p99 = append(p99, micros(r.p99))
		cpu = append(cpu, r.cpuPerOp)
		if !math.IsNaN(r.auxCPUPerOp) {
			aux = append(aux, r.auxCPUPerOp)
		}
		rss = append(rss, mib(r.peakRSSKiB))
		conn = append(conn, float64(r.newConns)/float64(r.ops))
		for k := range keys {
			idp[k] = append(idp[k], float64(r.idp[k])/float64(r.ops))
		}
		s.errors += r.statusErrors + r.socketErrors
		s.socketErrors += r.socketErrors
	}
	s.runs = len(ok)
	s.rate, s.p50, s.p99, s.cpu = median(rate), median(p50), median(p99), median(cpu)
	s.auxCPU, s.rss, s.conn = median(aux), median(rss), median(conn)
	for k, v := range idp {
		s.idpPerOp[k] = median(v)
	}
	return s, true
}

func (c *caseResult) summary(name string) (targetSummary, bool) { return summarize(c.runs, name) }

func (r *report) find(name string) *caseResult {
	for _, c := range r.cases {
		if c.name == name {
			return c
		}
	}
	return nil
}

// render writes the report as Markdown.
func (r *report) render(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("# authgate benchmark results\n\n")
	p("Measured by `cmd/authgate-bench` (issue 7) on %s; the run took %s. Regenerate (about %s of load plus setup):\n\n",
		r.started.UTC().Format("2006-01-02 15:04 MST"), r.finished.Sub(r.started).Round(time.Second), r.cfg.plannedLoad())
	runs := ""
	if r.cfg.runs != defaultRuns {
		runs = fmt.Sprintf(" -runs %d", r.cfg.runs)
	}
	p("```sh\nexport GOTOOLCHAIN=go1.27.3\ngo run ./cmd/authgate-bench%s -out deploy/bench/RESULTS.md\n```\n\n", runs)
	p("Targets, each its own process in front of the same fixed-body upstream and signing in at the same IdP: **authgate** (the real binary, built as the container image builds it), **bare-pooled** (`httputil.ReverseProxy` with authgate's transport and a BufferPool: the reference every ratio divides by), **bare** (the same without a BufferPool), and the peers **oauth2-proxy** and **mod_auth_openidc** (Apache httpd), when installed. See [How to read this](#how-to-read-this).\n\n")

	r.renderTargets(w)
	r.renderSummary(w)

	p("## Machine and settings\n\n| | |\n|---|---|\n")
	for _, kv := range r.machine {
		p("| %s | %s |\n", kv.key, mdEscape(kv.value))
	}
	p("| load average (1, 5, 15 min) at start | %s |\n", r.loadStart)
	p("| load average at end | %s |\n", r.loadEnd)
	p("| load runs | %s each, %d alternations over the targets, %s unmeasured warm-up per target and case |\n", r.cfg.duration, r.cfg.runs, r.cfg.warmup)
	p("| wrk | -t%d -c%d keep-alive (one-conn: -t1 -c1); 128-byte upstream body |\n", r.cfg.threads, r.cfg.connections)
	p("| upstream transport (authgate and the bare proxies) | %s |\n", transportSettings)
	if len(r.cfg.authgateEnv) > 0 {
		p("| authgate settings beyond the defaults | `%s` |\n", strings.Join(r.cfg.authgateEnv, "`, `"))
	}
	for _, inst := range r.instances {
		p("| authgate-%s | %s |\n", inst.name, mdEscape(inst.about))
	}
	for _, t := range r.targets {
		p("| %s | %s |\n", t.key, mdEscape(t.value))
	}
	p("\n")

	r.renderIdle(w)
	r.renderMemorySplit(w)
	r.renderIncluded(w, "Soak", r.soak, "`go run ./cmd/authgate-bench -soak 10m -out deploy/bench/SOAK.md` has not been run on this tree.")
	r.renderIncluded(w, "Analysis", r.notes, "")
	r.renderRuns(w)
	r.renderIdP(w)
	r.renderMicro(w)
	r.renderMethod(w)
}

func (r *report) renderTargets(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("## Targets\n\n| target | measured | result |\n|---|---|---|\n")

	ratioRow := func(caseName, label string, want float64) {
		c := r.find(caseName)
		a, okA := summaryOf(c, targetAuthgate)
		b, okB := summaryOf(c, reference)
		switch {
		case c == nil:
			p("| %s | not run (-cases) | not measured |\n", label)
		case c.skipped != "":
			p("| %s | %s | not measured |\n", label, mdEscape(c.skipped))
		case !okA || !okB:
			p("| %s | no successful run | not measured |\n", label)
		default:
			q := ratio(a.rate, b.rate)
			p("| %s | %.3f× (%s vs %s req/s); requests per CPU-second %.3f× (%.1f vs %.1f µs CPU per request) | %s |\n",
				label, q, num(a.rate), num(b.rate), ratio(b.cpu, a.cpu), a.cpu, b.cpu, verdict(q >= want))
		}
	}
	ratioRow(caseCookie, fmt.Sprintf("authenticated req/s, cookie store ≥ %.2f × pooled bare", targetCookieRatio), targetCookieRatio)
	ratioRow(caseRedis, fmt.Sprintf("authenticated req/s, Redis store ≥ %.2f × pooled bare", targetRedisRatio), targetRedisRatio)

	label := fmt.Sprintf("added p50 latency at one connection over pooled bare ≤ %d µs", targetAddedP50/time.Microsecond)
	if c := r.find(caseOneConn); c == nil || c.skipped != "" {
		p("| %s | %s | not measured |\n", label, skippedText(c))
	} else if a, okA := c.summary(targetAuthgate); !okA {
		p("| %s | no successful run | not measured |\n", label)
	} else if b, okB := c.summary(reference); !okB {
		p("| %s | no successful run | not measured |\n", label)
	} else {
		diffs := pairedP50Diffs(c.runs)
		added := a.p50 - b.p50
		p("| %s | %+.0f µs (p50 %.0f vs %.0f µs; p99 %.0f vs %.0f µs; median of the %d paired differences %+.0f µs) | %s |\n",
			label, added, a.p50, b.p50, a.p99, b.p99, len(diffs), median(diffs), verdict(added <= micros(targetAddedP50)))
	}

	if allocs, bareAllocs, ok := microAllocs(r.micro); ok {
		p("| allocations per authenticated request (handler benchmark) | %s allocs/op (bare ReverseProxy: %s) | reported |\n", allocs, bareAllocs)
	} else {
		p("| allocations per authenticated request (handler benchmark) | see micro-benchmarks | reported |\n")
	}

	var peaks []string
	peak, floor := 0.0, 0.0
	for _, c := range r.cases {
		casePeak := 0.0
		for _, run := range c.runs {
			if run.err != "" {
				continue
			}
			switch run.target {
			case targetAuthgate:
				casePeak = max(casePeak, mib(run.peakRSSKiB))
			case targetBarePooled, targetBare:
				floor = max(floor, mib(run.peakRSSKiB))
			}
		}
		if casePeak > 0 {
			peaks = append(peaks, fmt.Sprintf("%s %.1f", c.name, casePeak))
			peak = max(peak, casePeak)
		}
	}
	if len(peaks) > 0 {
		p("| peak RSS under load ≤ %.0f MiB, every case | largest %.1f MiB; per case (MiB): %s; the bare proxies' largest (the floor): %.1f | %s |\n",
			targetPeakRSSMiB, peak, strings.Join(peaks, ", "), floor, verdict(peak <= targetPeakRSSMiB))
	}
	var idle []string
	idleMax, idleFloor := 0.0, 0.0
	for _, i := range r.idle {
		switch {
		case strings.HasPrefix(i.name, "authgate"):
			idle = append(idle, fmt.Sprintf("%s %.1f MiB after start, %.1f after one login", i.name, mib(i.afterStartKiB), mib(i.afterLoginKiB)))
			// An idle sidecar has usually served logins: the target is
			// judged on both samples, not on the fresh process alone.
			idleMax = max(idleMax, mib(i.afterStartKiB), mib(i.afterLoginKiB))
		case strings.HasPrefix(i.name, "bare-proxy"):
			idleFloor = max(idleFloor, mib(i.afterStartKiB))
		}
	}
	if len(idle) > 0 {
		p("| idle RSS ≤ %.0f MiB | %s; the bare proxies (the floor): %.1f MiB | %s |\n", targetIdleRSSMiB, strings.Join(idle, "; "), idleFloor, verdict(idleMax <= targetIdleRSSMiB))
	}

	if c := r.find(caseCookie); c != nil {
		if a, ok := c.summary(targetAuthgate); ok {
			b, _ := c.summary(reference)
			p("| upstream connections reused | %.5f new upstream connections per request (pooled bare: %.5f) | %s |\n", a.conn, b.conn, verdict(a.conn <= targetReusedConnsOp))
		}
	}

	if c := r.find(caseLogin); c != nil && c.skipped == "" {
		if a, ok := c.summary(targetAuthgate); ok {
			code := a.idpPerOp[idpTokenCode]
			userinfo := a.idpPerOp[idpUserinfoGET] + a.idpPerOp[idpUserinfoPOST]
			disc, keys := a.idpPerOp[idpDiscovery], a.idpPerOp[idpKeys]
			met := math.Abs(code-1) < 0.01 && userinfo == 0 && disc == 0 && keys == 0
			p("| login: one token call, userinfo only when needed, discovery and JWKS cached | per login: %.2f token calls, %.2f userinfo, %.3f discovery, %.3f JWKS (the demo IdP's ID token carries the email) | %s |\n",
				code, userinfo, disc, keys, verdict(met))
		}
	}
	p("\n")
}

// pairedP50Diffs returns authgate's p50 minus the bare proxy's, in µs, for
// each alternation where both runs succeeded: a difference taken within
// seconds, so that slow drifts in the machine's load cancel out.
func pairedP50Diffs(runs []runResult) []float64 {
	a := make(map[int]runResult)
	for _, r := range runs {
		if r.target == targetAuthgate && r.err == "" {
			a[r.run] = r
		}
	}
	var diffs []float64
	for _, r := range runs {
		if ar, ok := a[r.run]; ok && r.target == reference && r.err == "" {
			diffs = append(diffs, micros(ar.p50)-micros(r.p50))
		}
	}
	return diffs
}

func skippedText(c *caseResult) string {
	if c == nil {
		return "not run (-cases)"
	}
	return mdEscape(c.skipped)
}

func summaryOf(c *caseResult, name string) (targetSummary, bool) {
	if c == nil {
		return targetSummary{}, false
	}
	return c.summary(name)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func (r *report) renderSummary(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("## Side by side\n\nMedians of %d runs per target. Rates are operations per second (requests, or logins for the login case); \"× ref\" divides by the pooled bare proxy's rate in the same case, and \"ops per CPU-s × ref\" does the same with CPU time per operation (the better estimate on a busy machine).\n\n", r.cfg.runs)
	p("| case | target | ops/s | × ref | p50 µs | p99 µs | CPU µs/op | ops per CPU-s × ref | peak RSS MiB | new upstream conns/op | errors | IdP calls/op |\n")
	p("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, c := range r.cases {
		if c.skipped != "" {
			p("| %s | %s | | | | | | | | | | |\n", c.name, mdEscape(c.skipped))
			continue
		}
		ref, okRef := c.summary(reference)
		for _, name := range targetOrder {
			if note := c.notes[name]; note != "" {
				p("| %s | %s | left out: %s | | | | | | | | | |\n", c.name, name, mdEscape(note))
				continue
			}
			if !slices.Contains(c.targets, name) {
				continue
			}
			a, ok := c.summary(name)
			if !ok {
				p("| %s | %s | no successful run | | | | | | | | | |\n", c.name, name)
				continue
			}
			q, eff := "–", "–"
			if okRef {
				q, eff = fmt.Sprintf("%.2f", ratio(a.rate, ref.rate)), fmt.Sprintf("%.2f", ratio(ref.cpu, a.cpu))
			}
			cpu := fmt.Sprintf("%.1f", a.cpu)
			if !math.IsNaN(a.auxCPU) {
				cpu += fmt.Sprintf(" (+%.1f redis-server)", a.auxCPU)
			}
			errs := a.errors
			if c.name == caseAPI && !isBareName(name) {
				errs = a.socketErrors // every answer is the expected 401
			}
			p("| %s | %s | %s | %s | %.0f | %.0f | %s | %s | %.1f | %.4f | %d | %s |\n",
				c.name, name, num(a.rate), q, a.p50, a.p99, cpu, eff, a.rss, a.conn, errs, idpText(a.idpPerOp))
		}
	}
	p("\nErrors are responses with status ≥ 400 other than the expected 401 of the api case, socket errors, or failed operations of a Go loop, summed over the runs.\n\nCases:\n\n")
	for _, c := range r.cases {
		load := c.load
		if load == "" {
			load = "–"
		}
		p("- **%s**: %s. Load: %s.", c.name, c.title, mdEscape(load))
		if c.loadAvg != "" {
			p(" Load average when it started: %s.", c.loadAvg)
		}
		p("\n")
	}
	p("\n")
}

func isBareName(name string) bool { return name == targetBare || name == targetBarePooled }

// idpText lists the IdP calls per operation that are not zero.
func idpText(perOp map[string]float64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(perOp)) {
		if v := perOp[k]; v >= 0.0005 {
			parts = append(parts, fmt.Sprintf("%s %.3f", k, v))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

func (r *report) renderRuns(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("## Every run\n\nIn the order they ran. Errors: wrk's responses with status ≥ 400 (expected for the api case), or failed operations of a Go loop. Peak RSS is VmHWM after resetting it before the run")
	p(" (`/proc/<pid>/clear_refs`); a `*` marks a lifetime peak where the reset was refused.\n\n")
	p("| case | run | target | ops | ops/s | p50 µs | p99 µs | CPU µs/op | peak RSS MiB | new upstream conns | upstream requests | errors | socket errors | IdP calls |\n")
	p("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, c := range r.cases {
		for _, run := range c.runs {
			if run.err != "" {
				p("| %s | %d | %s | failed: %s | | | | | | | | | | |\n", c.name, run.run, run.target, mdEscape(run.err))
				continue
			}
			star := ""
			if !run.peakIsRunMax {
				star = "*"
			}
			cpu := fmt.Sprintf("%.1f", run.cpuPerOp)
			if !math.IsNaN(run.auxCPUPerOp) {
				cpu += fmt.Sprintf(" (+%.1f)", run.auxCPUPerOp)
			}
			p("| %s | %d | %s | %d | %s | %.0f | %.0f | %s | %.1f%s | %d | %d | %d | %d | %s |\n",
				c.name, run.run, run.target, run.ops, num(run.rate), micros(run.p50), micros(run.p99), cpu,
				mib(run.peakRSSKiB), star, run.newConns, run.upstreamReqs, run.statusErrors, run.socketErrors, idpCounts(run.idp))
		}
	}
	p("\n")
}

func idpCounts(m map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

func (r *report) renderIdle(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("## Idle memory\n\nVmRSS before any load: 2 s after the process answers, and again 2 s after one login (proxies that sign in); every process gets the same 2 s to finish its start-up work. ")
	p("The resident set splits into anonymous memory (heap, stacks, runtime) and file pages (the mapped executable: the code and read-only data the process has touched, plus the pages the kernel maps around each fault).\n\n")
	p("| process | after start MiB | of which anonymous | of which file | after one login MiB |\n|---|---:|---:|---:|---:|\n")
	for _, i := range r.idle {
		after := "–"
		if i.afterLoginKiB > 0 {
			after = fmt.Sprintf("%.1f", mib(i.afterLoginKiB))
		}
		p("| %s | %.1f | %.1f | %.1f | %s |\n", i.name, mib(i.afterStartKiB), mib(i.anonKiB), mib(i.fileKiB), after)
	}
	p("\n")
	if len(r.binaries) > 0 {
		p("| binary | size MB | package inits: heap allocated | allocations | largest |\n|---|---:|---:|---:|---|\n")
		for _, b := range r.binaries {
			p("| %s | %.1f | %s | %d | %s |\n", mdEscape(b.name), float64(b.size)/1e6, kib(b.initBytes), b.initAllocs, mdEscape(b.topInits))
		}
		p("\nPackage inits from `GODEBUG=inittrace=1 <binary> version` (the bare proxy: `-h`).\n\n")
	}
}

// renderIncluded writes a Markdown file kept beside the results (the soak's
// report, the hand-written analysis) as a section, its own headings moved
// one level down.
func (r *report) renderIncluded(w io.Writer, title, md, missing string) {
	if strings.TrimSpace(md) == "" {
		if missing != "" {
			fmt.Fprintf(w, "## %s\n\n%s\n\n", title, missing)
		}
		return
	}
	fmt.Fprintf(w, "## %s\n\n", title)
	// The file's own title: the section's heading replaces it.
	if strings.HasPrefix(md, "# ") {
		_, md, _ = strings.Cut(md, "\n")
	}
	for line := range strings.SplitSeq(strings.Trim(md, "\n"), "\n") {
		if strings.HasPrefix(line, "#") {
			line = "#" + line
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w)
}

func kib(bytes int64) string { return fmt.Sprintf("%.0f KiB", float64(bytes)/1024) }

func (r *report) renderIdP(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("## Requests the IdPs received over the whole run\n\nEvery authgate process discovers once at start and fetches the JWKS once, at its first ID token; the rest are logins and refreshes.\n\n| IdP | request | count |\n|---|---|---:|\n")
	for _, name := range slices.Sorted(maps.Keys(r.idpTotals)) {
		counts := r.idpTotals[name]
		for _, k := range slices.Sorted(maps.Keys(counts)) {
			p("| %s | `%s` | %d |\n", name, k, counts[k])
		}
	}
	p("\n")
}

func (r *report) renderMicro(w io.Writer) {
	if !r.cfg.micro {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("## Handler micro-benchmarks\n\n`go test -run '^$' -bench %q -benchmem -benchtime %s ./proxy/`, run after the load (same machine, same moment). ", microPattern, r.cfg.benchtime)
	p("The pieces have their own benchmarks: `./session` (Seal, Open, Encode, Decode, CookieStoreLoad), `./upstream` (Proxy: header rewriting).\n\n")
	if r.microErr != "" {
		p("Failed: %s\n\n", mdEscape(r.microErr))
	}
	if r.micro != "" {
		p("```text\n%s\n```\n\n", strings.TrimRight(r.micro, "\n"))
	}
}

func (r *report) renderMethod(w io.Writer) {
	fmt.Fprint(w, strings.ReplaceAll(`## How to read this

- **Everything shares one machine**: wrk, the Go clients of the login and refresh cases, the demo IdP
  (inside the benchmark process), the upstream, the bare proxies, the peers and authgate. The runs
  alternate between the targets (authgate, bare-pooled, bare, oauth2-proxy, mod_auth_openidc, then again)
  so that background load (see the load averages) hits every target alike; medians damp what is left.
- **Throughput needs a quiet machine; CPU per operation does not.** When other work takes the CPUs
  (see the load averages, taken at the start of each case), requests per second fall for every target and
  swing between runs, while CPU µs per operation of each process stays put: "ops per CPU-s × ref" (the
  pooled bare proxy's CPU per op over the target's) is then the better estimate of the ratio a quiet
  machine would show.
- **CPU µs/op** is the process's utime + stime from `+"`/proc/<pid>/stat`"+` over the run, divided by the
  operations the load generator completed; for Apache, summed over its processes (and the workers it
  retired during the run). The clock tick is 10 ms, so a 5 s run is exact to well under 1 %.
  For the Redis case the redis-server's own CPU is shown in parentheses.
- **The peers** run as their documentation recommends for this job (the command line and configuration
  are generated by `+"`oauth2ProxyArgs`"+` and `+"`apacheConfig`"+` in cmd/authgate-bench/peers.go, and the
  Machine and settings table shows them): a cookie session, the access token forwarded to the upstream
  (oauth2-proxy: X-Forwarded-Access-Token with --pass-access-token; mod_auth_openidc: Authorization:
  Bearer from OIDC_access_token with OIDCPassClaimsAs environment), PKCE, no request log. For the refresh
  case each runs a second instance against the 2 s-token IdP (oauth2-proxy --cookie-refresh=1s;
  OIDCRefreshAccessTokenBeforeExpiry 1). Apache's peak RSS is the sum of its processes' peaks (parent and
  mpm_event workers), an upper bound of their joint peak.
- **New upstream conns/op** counts connections the upstream accepted (`+"`http.Server.ConnState`"+`) during the
  run, per operation: 0 means every request reused a keep-alive connection.
- **navigation / api**: authgate and the peers answer these themselves (302 to the IdP with a login-flow
  cookie; 401), while the bare proxies forward them; the ratio says how cheaply unauthenticated
  traffic is turned away, not how the proxies compare on the same work.
- **login**: logins per second of the whole dance through authgate and the IdP, with the IdP's session
  cookie already present (a returning user; the password form is typed once per client beforehand).
  The rate is bounded by the demo IdP, which signs two RS256 JWTs per login in the benchmark process;
  authgate's CPU per login is the number that belongs to authgate.
- **refresh**: requests that each refresh the access token at the IdP. authgate refreshes a token once
  less than half its lifetime is left, and this IdP's tokens live {{refresh token lifetime}}; the clients go
  round a pool of sessions (-refresh-sessions) and keep every cookie they are given, so each request carries
  a session that is due and an unredeemed refresh token. The IdP's refresh_token grants per request (IdP
  calls column) show how many requests really refreshed. The bare proxy gets the same Go clients; the gap
  is the IdP round trip (token endpoint, RS256 signing in the IdP, ID token verification in authgate).
- **refresh-grace**: a session that needs a refresh, with a cookie that is never updated. Before each
  run a fresh login is made and one request refreshes it; during the run every request still carries the
  old cookie and, inside authgate's 10 s grace window, gets the refreshed session from memory and a new
  Set-Cookie (a cookie sealed per request), with no IdP call.
- **Peak RSS** is per run (VmHWM reset before it), but each authgate process serves several cases in a
  row (authgate-cookie: cookie, navigation, api, one-conn, login; authgate-refresh: refresh-grace, then
  refresh), and memory the Go runtime has not returned to the kernel yet still counts in a later case.
- **The bare proxies** are a binary of their own (`+"`cmd/authgate-bench/bareproxy`"+`, built static and
  -trimpath like authgate), so their memory is the floor of a Go reverse proxy; the upstream is this
  program re-executed (`+"`authgate-bench upstream`"+`).
`, "{{refresh token lifetime}}", refreshTokenLifetime.String()))
}

// microPattern selects the handler benchmarks of package proxy.
const microPattern = "^Benchmark(Handler|BareReverseProxy|ServeHTTP)"

// benchLine is one result line of `go test -bench -benchmem`.
type benchLine struct {
	name        string // without the -GOMAXPROCS suffix
	nsPerOp     float64
	bytesPerOp  float64
	allocsPerOp float64
}

// parseBenchLine decodes "BenchmarkX-2  1000  1234 ns/op  56 B/op  7 allocs/op".
func parseBenchLine(line string) (benchLine, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
		return benchLine{}, false
	}
	b := benchLine{name: f[0], nsPerOp: -1, bytesPerOp: -1, allocsPerOp: -1}
	if i := strings.LastIndexByte(b.name, '-'); i > 0 {
		if _, err := fmt.Sscanf(b.name[i+1:], "%d", new(int)); err == nil {
			b.name = b.name[:i]
		}
	}
	for i := 2; i+1 < len(f); i += 2 {
		var v float64
		if _, err := fmt.Sscanf(f[i], "%g", &v); err != nil {
			return benchLine{}, false
		}
		switch f[i+1] {
		case "ns/op":
			b.nsPerOp = v
		case "B/op":
			b.bytesPerOp = v
		case "allocs/op":
			b.allocsPerOp = v
		}
	}
	if b.nsPerOp < 0 {
		return benchLine{}, false
	}
	return b, true
}

// microAllocs returns allocs/op of BenchmarkHandlerAuthenticated and
// BenchmarkBareReverseProxy from the micro-benchmark output.
func microAllocs(out string) (handler, bare string, ok bool) {
	handler, bare = "?", "?"
	for line := range strings.SplitSeq(out, "\n") {
		b, good := parseBenchLine(line)
		if !good || b.allocsPerOp < 0 {
			continue
		}
		switch b.name {
		case "BenchmarkHandlerAuthenticated":
			handler, ok = fmt.Sprintf("%.0f", b.allocsPerOp), true
		case "BenchmarkBareReverseProxy":
			bare = fmt.Sprintf("%.0f", b.allocsPerOp)
		}
	}
	return handler, bare, ok
}

// num formats a rate with a thousands separator, e.g. 12,345.
func num(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	if v < 100 {
		return fmt.Sprintf("%.1f", v)
	}
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// mdEscape keeps a value inside its table cell.
func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

func nan() float64 { return math.NaN() }

// renderMemorySplit explains authgate's peak RSS per case: the resident
// set right after the load, split into file pages (code) and anonymous
// memory, and the anonymous part by what the Go runtime holds it for.
func (r *report) renderMemorySplit(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	var rows []string
	for _, c := range r.cases {
		for _, target := range []string{targetAuthgate, targetBarePooled} {
			var worst *runResult
			for i := range c.runs {
				run := &c.runs[i]
				if run.target != target || run.err != "" || run.endAnonKiB == 0 {
					continue
				}
				if worst == nil || run.peakRSSKiB > worst.peakRSSKiB {
					worst = run
				}
			}
			if worst == nil {
				continue
			}
			row := fmt.Sprintf("| %s | %s | %.1f | %.1f | %.1f |", c.name, target, mib(worst.peakRSSKiB), mib(worst.endFileKiB), mib(worst.endAnonKiB))
			if m := worst.mem; m != nil {
				row += fmt.Sprintf(" %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %d |",
					mibBytes(m.heapInuse), mibBytes(m.heapIdle), mibBytes(m.stackInuse), mibBytes(m.gcSys), mibBytes(m.otherSys),
					mibBytes(m.nextGC), m.numGC)
			} else {
				row += " – | – | – | – | – | – | – |"
			}
			rows = append(rows, row)
		}
	}
	if len(rows) == 0 {
		return
	}
	p("## Where the peak goes\n\n")
	p("authgate's and the pooled bare proxy's run with the highest peak in each case. Right after the load: the resident set's file pages (the executable's code and data it has touched) and anonymous memory, and, from `runtime.MemStats` (the `go_memstats_*` samples of authgate's `/metrics`), what the Go runtime holds: heap spans in use (live objects and garbage not yet swept), free heap spans not yet returned to the OS, goroutine stacks, GC metadata and the rest of the runtime's own memory. The GC target is the heap size at which the next collection starts (twice the live heap with GOGC=100).\n\n")
	p("| case | target | peak RSS MiB | file MiB | anonymous MiB | heap in use | heap free, kept | stacks | GC metadata | runtime other | GC target MiB | GCs so far |\n")
	p("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, row := range rows {
		p("%s\n", row)
	}
	p("\n")
}

func mibBytes(b int64) float64 { return float64(b) / (1 << 20) }
