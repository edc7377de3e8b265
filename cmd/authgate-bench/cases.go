package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/authgate/authgate/cmd/authgate-bench/internal/benchnet"
)

// benchCase is one row of the report: a load, the targets it alternates
// between (authgate first, then usually the bare proxy) and how to drive
// them.
type benchCase struct {
	name, title, load string
	opName            string // what one operation is: "req", "login"
	targets           []*target
	skip              string // when set, the case is reported as skipped with this reason
	// setup runs once before anything is measured.
	setup func(ctx context.Context) error
	// prepare runs before every warm-up and measured run of t, outside the
	// measurement (e.g. a fresh login).
	prepare func(ctx context.Context, t *target) error
	// check sends one request to t and fails unless it is answered as
	// expected, so that a misconfigured target is not measured.
	check func(ctx context.Context, t *target) error
	drive func(ctx context.Context, t *target, d time.Duration) (driveResult, error)
}

// driveResult is what one load run measured on the client side.
type driveResult struct {
	ops          int64
	elapsed      time.Duration
	p50, p99     time.Duration
	statusErrors int64 // status ≥ 400 (wrk) or failed operations (Go loops)
	socketErrors int64
	firstErr     error
}

// runResult is one measured run of one target.
type runResult struct {
	target       string
	run          int
	ops          int64
	rate         float64 // ops per second
	p50, p99     time.Duration
	cpuPerOp     float64 // µs of the target process
	auxCPUPerOp  float64 // µs of its aux process (redis-server); NaN when none
	peakRSSKiB   int64
	peakIsRunMax bool // VmHWM was reset before the run
	// endAnonKiB and endFileKiB split the resident set right after the
	// load (RssAnon, RssFile); mem is authgate's runtime.MemStats then.
	endAnonKiB, endFileKiB int64
	mem                    *memStats
	newConns               int64
	upstreamReqs           int64
	statusErrors           int64
	socketErrors           int64
	idp                    map[string]int64 // IdP calls during the run
	err                    string
}

// caseResult is a case with all its runs.
type caseResult struct {
	name, title, load, opName string
	targets                   []string
	skipped                   string
	runs                      []runResult
	loadAvg                   string            // /proc/loadavg when the case started
	notes                     map[string]string // target → why it was left out
}

// cases builds the selected cases, in order.
func (b *bench) cases() []*benchCase {
	var list []*benchCase
	jsonAccept := "Accept: application/json"
	withCookie := func(inst *instance) func(t *target) []string {
		return func(t *target) []string {
			c := t.cookie
			if c == "" {
				c = inst.cookie // authgate; the bare proxies forward it unread
			}
			return []string{"Cookie: " + c, jsonAccept}
		}
	}
	for _, name := range b.cfg.cases {
		cookie, redis, refresh := b.instances["cookie"], b.instances["redis"], b.instances["refresh"]
		switch name {
		case caseCookie:
			list = append(list, b.wrkCase(name, "Authenticated GET, cookie store", cookie, b.peerTargets(), b.cfg.threads, b.cfg.connections,
				withCookie(cookie), http.StatusOK))
		case caseRedis:
			if redis == nil {
				list = append(list, &benchCase{name: name, title: "Authenticated GET, Redis store", skip: b.redisMissing})
				continue
			}
			c := b.wrkCase(name, "Authenticated GET, Redis store", redis, nil, b.cfg.threads, b.cfg.connections,
				withCookie(redis), http.StatusOK)
			c.targets[0].aux = b.redis
			list = append(list, c)
		case caseNavigation:
			// Without Fetch Metadata: with Sec-Fetch-Mode authgate first
			// answers its deep-link page, whose script then asks for this
			// 302 (proxy.BenchmarkLoginRoundTrip measures that extra step).
			list = append(list, b.wrkCase(name, "Unauthenticated navigation (the proxy answers 302 to the IdP)", cookie, b.peerTargets(), b.cfg.threads, b.cfg.connections,
				func(*target) []string {
					return []string{"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
				}, http.StatusFound))
		case caseAPI:
			list = append(list, b.wrkCase(name, "Unauthenticated API call (the proxy answers 401)", cookie, b.peerTargets(), b.cfg.threads, b.cfg.connections,
				func(*target) []string { return []string{jsonAccept} }, http.StatusUnauthorized))
		case caseOneConn:
			list = append(list, b.wrkCase(name, "Authenticated GET on one connection (latency without queueing)", cookie, b.peerTargets(), 1, 1,
				withCookie(cookie), http.StatusOK))
		case caseLogin:
			list = append(list, b.loginCase(cookie))
		case caseRefresh:
			list = append(list, b.refreshCase(refresh))
		case caseRefreshGrace:
			list = append(list, b.refreshGraceCase(refresh))
		}
	}
	return list
}

// peerTargets returns the peers running against the main IdP, in a fixed
// order.
func (b *bench) peerTargets() []*target {
	var list []*target
	for _, name := range []string{targetOAuth2, targetApache} {
		if t := b.peers[name]; t != nil {
			list = append(list, t)
		}
	}
	return list
}

// authgateTarget is the authgate side of a case.
func authgateTarget(inst *instance) *target {
	return &target{name: targetAuthgate, base: inst.base(), proc: inst.child, idp: inst.idp, metricsURL: "http://" + inst.internal + "/metrics", pprofURL: "http://" + inst.internal + "/debug/pprof/"}
}

// isBare reports whether t is one of the bare proxies, which forward
// everything (200) whatever authgate answers.
func isBare(t *target) bool { return t.name == targetBare || t.name == targetBarePooled }

// wrkCase drives authgate (inst), the bare proxies and peers with wrk: GET /
// with headers, expecting status want from authgate and the peers and 200
// from the bare proxies.
func (b *bench) wrkCase(name, title string, inst *instance, peers []*target, threads, conns int, headers func(*target) []string, want int) *benchCase {
	a := authgateTarget(inst)
	return &benchCase{
		name:    name,
		title:   title,
		load:    fmt.Sprintf("wrk -t%d -c%d, GET / (%s)", threads, conns, describeHeaders(headers(a))),
		opName:  "req",
		targets: append([]*target{a, b.barePooled, b.bare}, peers...),
		check: func(ctx context.Context, t *target) error {
			status := want
			if isBare(t) {
				status = http.StatusOK
			}
			return b.checkStatus(ctx, t.base+"/", headers(t), status)
		},
		drive: func(ctx context.Context, t *target, d time.Duration) (driveResult, error) {
			r, err := b.wrk.run(ctx, threads, conns, d, t.base+"/", headers(t))
			if err != nil {
				return driveResult{}, err
			}
			return driveResult{
				ops: r.Requests, elapsed: r.Duration, p50: r.P50, p99: r.P99,
				statusErrors: r.StatusErrors, socketErrors: r.SocketErrors + r.Timeouts,
			}, nil
		},
	}
}

// describeHeaders names the headers of a load without their values where
// those are secret.
func describeHeaders(headers []string) string {
	var parts []string
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ": ")
		if strings.EqualFold(name, "Cookie") {
			parts = append(parts, "session cookie")
			continue
		}
		parts = append(parts, name+": "+value)
	}
	if len(parts) == 0 {
		return "no extra headers"
	}
	return strings.Join(parts, ", ")
}

// checkStatus sends one GET with headers and compares the status.
func (b *bench) checkStatus(ctx context.Context, url string, headers []string, want int) error {
	if err := benchnet.RequireLoopbackURL(url); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ": ")
		req.Header.Add(name, value)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return fmt.Errorf("check %s: %w", url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("check %s: status %d, want %d", url, resp.StatusCode, want)
	}
	return nil
}

// loopDrive runs per-target operations built by setup in a closed loop.
func loopDrive(ops map[string][]func(context.Context) error) func(context.Context, *target, time.Duration) (driveResult, error) {
	return func(ctx context.Context, t *target, d time.Duration) (driveResult, error) {
		r := runLoop(ctx, d, ops[t.name])
		res := driveResult{
			ops:          r.ops,
			elapsed:      r.elapsed,
			p50:          percentileSorted(r.latencies, 50),
			p99:          percentileSorted(r.latencies, 99),
			statusErrors: r.errors,
			firstErr:     r.firstErr,
		}
		if r.ops == 0 && r.firstErr != nil {
			return res, fmt.Errorf("no operation succeeded: %w", r.firstErr)
		}
		return res, nil
	}
}

// loginCase measures whole logins per second: start → IdP authorize →
// IdP login page (signed in by the IdP's session cookie, as a returning
// user is) → IdP callback → authgate callback (code exchange, ID token
// verification, new session cookie). Each worker is a browser that typed
// its password once during setup. There is no bare counterpart.
func (b *bench) loginCase(inst *instance) *benchCase {
	ops := make(map[string][]func(context.Context) error)
	targets := append([]*target{authgateTarget(inst)}, b.peerTargets()...)
	return &benchCase{
		name:    caseLogin,
		title:   "Full login flow (start → IdP → callback), IdP session already present",
		load:    fmt.Sprintf("%d Go clients in a closed loop, one login each at a time", b.cfg.workers),
		opName:  "login",
		targets: targets,
		setup: func(ctx context.Context) error {
			for _, t := range targets {
				start := loginStart(t.name, t.base)
				for range b.cfg.workers {
					br, err := newBrowser(b.transport, t.idp.issuer)
					if err != nil {
						return err
					}
					if _, err := br.login(ctx, start); err != nil {
						return fmt.Errorf("%s: first login: %w", t.name, err)
					}
					ops[t.name] = append(ops[t.name], func(ctx context.Context) error {
						usedForm, err := br.login(ctx, start)
						if err == nil && usedForm {
							err = errors.New("the IdP asked for the password again")
						}
						return err
					})
				}
			}
			return nil
		},
		drive: loopDrive(ops),
	}
}

// refreshCase measures requests that each refresh the access token at the
// IdP. authgate refreshes a token once less than half its lifetime is left
// (and AUTHGATE_REFRESH_SKEW, 60s, is longer than that), and the refresh
// IdP's tokens live refreshTokenLifetime, so a session is due again about a
// second after its last refresh. The clients share a pool of
// -refresh-sessions sessions, each client going round its own part of it and
// keeping the cookie every answer sets (as a browser does): as long as a
// round takes longer than half a token lifetime, every request refreshes.
// The IdP's count of refresh_token grants per request, in the report, shows
// whether it did. The bare proxy gets the same clients.
func (b *bench) refreshCase(inst *instance) *benchCase {
	ops := make(map[string][]func(context.Context) error)
	a := authgateTarget(inst)
	var peers []*target
	for _, name := range []string{targetOAuth2, targetApache} {
		if t := b.refreshPeers[name]; t != nil {
			peers = append(peers, t)
		}
	}
	return &benchCase{
		name:  caseRefresh,
		title: "Request that refreshes the access token at the IdP",
		load: fmt.Sprintf("%d Go clients in a closed loop, going round %d sessions (%s tokens), keeping the cookie each answer sets",
			b.cfg.workers, b.cfg.refreshSessions, refreshTokenLifetime),
		opName:  "req",
		targets: append([]*target{a, b.barePooled, b.bare}, peers...),
		setup: func(ctx context.Context) error {
			cookies, err := b.loginMany(ctx, a, b.cfg.refreshSessions)
			if err != nil {
				return err
			}
			peerCookies := make(map[string][]string)
			for _, t := range peers {
				if peerCookies[t.name], err = b.loginMany(ctx, t, b.cfg.refreshSessions); err != nil {
					return fmt.Errorf("%s: %w", t.name, err)
				}
			}
			for w := range b.cfg.workers {
				for _, t := range append([]*target{a, b.barePooled, b.bare}, peers...) {
					from := cookies
					if pc, ok := peerCookies[t.name]; ok {
						from = pc
					}
					var mine []cookieSet
					for i := w; i < len(from); i += b.cfg.workers {
						mine = append(mine, parseCookieHeader(from[i]))
					}
					ops[t.name] = append(ops[t.name], cookieRequester(b.client, t.base+"/", mine))
				}
			}
			return nil
		},
		drive: loopDrive(ops),
	}
}

// loginMany logs in n times to t, with -workers browsers in parallel,
// and returns the n session cookies.
func (b *bench) loginMany(ctx context.Context, t *target, n int) ([]string, error) {
	cookies := make([]string, n)
	errs := make([]error, b.cfg.workers)
	var wg sync.WaitGroup
	for w := range b.cfg.workers {
		wg.Go(func() {
			br, err := newBrowser(b.transport, t.idp.issuer)
			if err != nil {
				errs[w] = err
				return
			}
			for i := w; i < n; i += b.cfg.workers {
				if _, err := br.login(ctx, loginStart(t.name, t.base)); err != nil {
					errs[w] = fmt.Errorf("login: %w", err)
					return
				}
				if cookies[i], err = br.sessionCookie(t.base); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return cookies, errors.Join(errs...)
}

// refreshGraceCase drives, with wrk, a session that needs a refresh with a
// cookie that is never updated. Before each run it logs in afresh and waits
// (one request every 100ms, at most 10s) until a request refreshes and sets
// a new cookie; during the run, inside authgate's 10s grace window, every
// request still carrying the old cookie gets the refreshed session from
// memory and a new Set-Cookie, with no IdP call. That is a browser's burst
// of parallel requests at the moment of a refresh.
func (b *bench) refreshGraceCase(inst *instance) *benchCase {
	cookie := inst.cookie
	headers := func(*target) []string { return []string{"Cookie: " + cookie, "Accept: application/json"} }
	c := b.wrkCase(caseRefreshGrace, "Stale cookie inside the refresh grace window (refreshed session shared from memory, new cookie sealed per request)",
		inst, nil, b.cfg.threads, b.cfg.connections, headers, http.StatusOK)
	var br *browser
	c.prepare = func(ctx context.Context, t *target) error {
		if t.name != targetAuthgate {
			return nil
		}
		if br == nil {
			var err error
			if br, err = newBrowser(b.transport, inst.idp.issuer); err != nil {
				return err
			}
		}
		if _, err := br.login(ctx, loginStart(targetAuthgate, inst.base())); err != nil {
			return fmt.Errorf("fresh login: %w", err)
		}
		var err error
		if cookie, err = br.sessionCookie(inst.base()); err != nil {
			return err
		}
		return b.waitForRefresh(ctx, inst.base()+"/", cookie)
	}
	return c
}

// waitForRefresh sends GET url with cookie every 100ms until an answer sets
// a cookie (a refresh happened), for at most 10s.
func (b *bench) waitForRefresh(ctx context.Context, url, cookie string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Cookie", cookie)
		req.Header.Set("Accept", "application/json")
		resp, err := b.client.Do(req)
		if err != nil {
			return fmt.Errorf("wait for a refresh: %w", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("wait for a refresh: status %d, want 200", resp.StatusCode)
		}
		if len(resp.Cookies()) > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("wait for a refresh: no refresh within 10s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// runCase checks and warms up every target, then alternates measured runs.
func (b *bench) runCase(ctx context.Context, c *benchCase) *caseResult {
	cr := &caseResult{name: c.name, title: c.title, load: c.load, opName: c.opName, loadAvg: loadAverage()}
	for _, t := range c.targets {
		cr.targets = append(cr.targets, t.name)
	}
	if c.skip != "" {
		cr.skipped = c.skip
		fmt.Fprintf(b.stderr, "[%s] skipped: %s\n", c.name, c.skip)
		return cr
	}
	fail := func(err error) *caseResult {
		cr.skipped = "failed: " + err.Error()
		fmt.Fprintf(b.stderr, "[%s] %s\n", c.name, cr.skipped)
		return cr
	}
	if c.setup != nil {
		if err := c.setup(ctx); err != nil {
			return fail(fmt.Errorf("setup: %w", err))
		}
	}
	var targets []*target
	for _, t := range c.targets {
		err := b.warmUp(ctx, c, t)
		switch {
		case err == nil:
			targets = append(targets, t)
		case t.name == targetOAuth2 || t.name == targetApache:
			// A peer is optional: one that misbehaves in a case is left
			// out of that case, with the reason in the report.
			if cr.notes == nil {
				cr.notes = make(map[string]string)
			}
			cr.notes[t.name] = err.Error()
			fmt.Fprintf(b.stderr, "[%s] %s left out: %v\n", c.name, t.name, err)
		default:
			return fail(err)
		}
	}
	for run := 1; run <= b.cfg.runs; run++ {
		for _, t := range targets {
			if ctx.Err() != nil {
				return cr
			}
			r := b.measure(ctx, c, t, run)
			cr.runs = append(cr.runs, r)
			if r.err != "" {
				fmt.Fprintf(b.stderr, "[%s] run %d %s: %s\n", c.name, run, t.name, r.err)
				continue
			}
			fmt.Fprintf(b.stderr, "[%s] run %d %-8s %9.0f %s/s  p50 %7.0fµs  p99 %7.0fµs  CPU %6.1fµs/%s  peak RSS %5.1f MiB\n",
				c.name, run, t.name, r.rate, c.opName, micros(r.p50), micros(r.p99), r.cpuPerOp, c.opName, mib(r.peakRSSKiB))
		}
	}
	return cr
}

// warmUp prepares and checks t, then runs the unmeasured warm-up.
func (b *bench) warmUp(ctx context.Context, c *benchCase, t *target) error {
	if c.prepare != nil {
		if err := c.prepare(ctx, t); err != nil {
			return err
		}
	}
	if c.check != nil {
		if err := c.check(ctx, t); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}
	if b.cfg.warmup > 0 {
		if _, err := c.drive(ctx, t, b.cfg.warmup); err != nil {
			return fmt.Errorf("%s warm-up: %w", t.name, err)
		}
	}
	return nil
}

// measure runs one load against t and reads the processes around it.
func (b *bench) measure(ctx context.Context, c *benchCase, t *target, run int) runResult {
	r := runResult{target: t.name, run: run, auxCPUPerOp: nan()}
	fail := func(err error) runResult { r.err = err.Error(); return r }
	if c.prepare != nil {
		if err := c.prepare(ctx, t); err != nil {
			return fail(err)
		}
	}
	r.peakIsRunMax = resetPeakTree(t.proc.pid()) == nil
	before, err := readTree(t.proc.pid())
	if err != nil {
		return fail(err)
	}
	var auxBefore procSample
	if t.aux != nil {
		if auxBefore, err = readProc(t.aux.pid()); err != nil {
			return fail(err)
		}
	}
	upBefore, err := b.upstreamCounters(ctx)
	if err != nil {
		return fail(err)
	}
	idpBefore := t.idp.snapshot()

	var cpuProfile chan error
	if b.cfg.keep && t.pprofURL != "" {
		// A CPU profile of the run, for go tool pprof.
		cpuProfile = make(chan error, 1)
		url := t.pprofURL + fmt.Sprintf("profile?seconds=%d", max(1, int(b.cfg.duration.Seconds())-1))
		name := filepath.Join(b.tmp, fmt.Sprintf("cpu-%s-%d.pb.gz", c.name, run))
		go func() { cpuProfile <- saveURL(ctx, url, name) }()
	}
	res, err := c.drive(ctx, t, b.cfg.duration)
	if cpuProfile != nil {
		if err := <-cpuProfile; err != nil {
			fmt.Fprintf(b.stderr, "[%s] run %d %s: CPU profile: %v\n", c.name, run, t.name, err)
		}
	}

	idpAfter := t.idp.snapshot()
	if err != nil {
		return fail(err)
	}
	if err := t.proc.alive(); err != nil {
		return fail(err)
	}
	after, err := readTree(t.proc.pid())
	if err != nil {
		return fail(err)
	}
	upAfter, err := b.upstreamCounters(ctx)
	if err != nil {
		return fail(err)
	}
	r.ops = res.ops
	r.rate = float64(res.ops) / res.elapsed.Seconds()
	r.p50, r.p99 = res.p50, res.p99
	r.statusErrors, r.socketErrors = res.statusErrors, res.socketErrors
	r.cpuPerOp = cpuMicrosPerOp(after.cpuTicks-before.cpuTicks, b.ticks, res.ops)
	if t.aux != nil {
		if auxAfter, err := readProc(t.aux.pid()); err == nil {
			r.auxCPUPerOp = cpuMicrosPerOp(auxAfter.cpuTicks-auxBefore.cpuTicks, b.ticks, res.ops)
		}
	}
	r.peakRSSKiB = after.hwmKiB
	r.endAnonKiB, r.endFileKiB = after.anonKiB, after.fileKiB
	if t.metricsURL != "" {
		// Read after the numbers above: it stops the world briefly.
		if m, err := fetchMemStats(ctx, t.metricsURL); err == nil {
			r.mem = &m
		} else {
			fmt.Fprintf(b.stderr, "[%s] run %d %s: memory split: %v\n", c.name, run, t.name, err)
		}
		if b.cfg.keep {
			// For go tool pprof -sample_index=inuse_space.
			name := filepath.Join(b.tmp, fmt.Sprintf("heap-%s-%d.pb.gz", c.name, run))
			if err := saveURL(ctx, t.pprofURL+"heap", name); err != nil {
				fmt.Fprintf(b.stderr, "[%s] run %d %s: heap profile: %v\n", c.name, run, t.name, err)
			}
			if err := writeResident(filepath.Join(b.tmp, fmt.Sprintf("resident-%s-%d.txt", c.name, run)), t.proc.pid(), b.authgate); err != nil {
				fmt.Fprintf(b.stderr, "[%s] run %d %s: resident pages: %v\n", c.name, run, t.name, err)
			}
		}
	}
	r.newConns = upAfter.NewConns - upBefore.NewConns
	r.upstreamReqs = upAfter.Requests - upBefore.Requests
	r.idp = since(idpBefore, idpAfter)
	if res.ops == 0 {
		r.err = "no operation completed"
	}
	return r
}

// cpuMicrosPerOp converts a CPU tick count to microseconds per operation.
func cpuMicrosPerOp(ticks uint64, hz int64, ops int64) float64 {
	if ops <= 0 || hz <= 0 {
		return nan()
	}
	return float64(ticks) * 1e6 / float64(hz) / float64(ops)
}
