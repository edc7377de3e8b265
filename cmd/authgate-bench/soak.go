package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authgate/authgate/cmd/authgate-bench/internal/benchnet"
)

// Soak traffic: bounded, so that a soak measures drift, not saturation.
const (
	soakSessions      = 32                     // sessions the request workers go round
	soakRequestPause  = 4 * time.Millisecond   // per request worker between requests
	soakRequestWorker = 4                      // request workers
	soakLoginEvery    = 500 * time.Millisecond // one login, a few requests, a sign-out
	soakWebSocketHold = 2 * time.Second        // how long each WebSocket stays open
	soakWebSockets    = 4                      // WebSocket workers
	// soakScrapes metrics scrapes soakScrapeGap apart make one sample of
	// heap in use and goroutines (their median).
	soakScrapes   = 5
	soakScrapeGap = 100 * time.Millisecond
	// soakMaxDrift is the limit on RSS, heap and goroutines over
	// the second half.
	soakMaxDrift = 0.05
)

// soakSample is authgate's state at one moment of the soak.
type soakSample struct {
	at                   time.Duration // since the start
	rssKiB               int64
	heapInuse            float64 // bytes, go_memstats_heap_inuse_bytes
	goroutines           float64
	requests, errors     int64 // cumulative
	logins, signOuts     int64
	refreshes, websocket int64
}

// soakCounters are the traffic's running totals.
type soakCounters struct {
	requests, errors, logins, signOuts, webSockets atomic.Int64
	mu                                             sync.Mutex
	firstErr                                       error
}

func (c *soakCounters) fail(err error) {
	c.errors.Add(1)
	c.mu.Lock()
	if c.firstErr == nil {
		c.firstErr = err
	}
	c.mu.Unlock()
}

// runSoak drives authgate-refresh (tokens of refreshTokenLifetime, so
// sessions refresh every second or so) with mixed traffic for cfg.soak:
// authenticated requests over a pool of sessions that keep every cookie
// they are given, logins followed by a sign-out, and WebSockets held open
// for a while. It samples RSS (/proc), heap in use and goroutines (the
// internal /metrics) every cfg.soakInterval and reports the drift over the
// second half.
func (b *bench) runSoak(ctx context.Context) (*soakReport, error) {
	inst := b.instances["refresh"]
	rep := &soakReport{duration: b.cfg.soak, interval: b.cfg.soakInterval, loadStart: loadAverage()}
	// Each WebSocket worker has a session of its own: a session whose
	// refresh token another worker redeemed would end after the grace
	// window, as it should.
	cookies, err := b.loginMany(ctx, authgateTarget(inst), soakSessions+soakWebSockets)
	if err != nil {
		return nil, fmt.Errorf("soak: log in: %w", err)
	}
	var c soakCounters
	ctx, cancel := context.WithTimeout(ctx, b.cfg.soak)
	defer cancel()
	var wg sync.WaitGroup
	wsCookies, cookies := cookies[soakSessions:], cookies[:soakSessions]
	for w := range soakRequestWorker {
		var mine []cookieSet
		for i := w; i < len(cookies); i += soakRequestWorker {
			mine = append(mine, parseCookieHeader(cookies[i]))
		}
		op := cookieRequester(b.client, inst.base()+"/", mine)
		wg.Go(func() {
			for pause(ctx, soakRequestPause) {
				if err := op(ctx); err != nil && ctx.Err() == nil {
					c.fail(fmt.Errorf("request: %w", err))
				}
				c.requests.Add(1)
			}
		})
	}
	wg.Go(func() {
		br, err := newBrowser(b.transport, inst.idp.issuer)
		if err != nil {
			c.fail(err)
			return
		}
		for pause(ctx, soakLoginEvery) {
			if err := b.soakLoginSignOut(ctx, br, inst, &c); err != nil && ctx.Err() == nil {
				c.fail(err)
			}
		}
	})
	for w := range soakWebSockets {
		set := parseCookieHeader(wsCookies[w])
		wg.Go(func() {
			for pause(ctx, 100*time.Millisecond) {
				// The session refreshes under the requests' feet: refresh
				// this worker's cookie with a request first, as a page
				// does before it opens a socket.
				if err := cookieRequester(b.client, inst.base()+"/", []cookieSet{set})(ctx); err != nil {
					if ctx.Err() == nil {
						c.fail(fmt.Errorf("websocket page: %w", err))
					}
					continue
				}
				if err := webSocketEcho(ctx, inst.addr, set.header(benchCookieName), soakWebSocketHold); err != nil && ctx.Err() == nil {
					c.fail(fmt.Errorf("websocket: %w", err))
					continue
				}
				c.webSockets.Add(1)
			}
		})
	}

	start := time.Now()
	refreshStart := inst.idp.snapshot()[idpTokenRefresh]
	sample := func() {
		s := soakSample{at: time.Since(start).Round(time.Second)}
		if p, err := readProc(inst.child.pid()); err == nil {
			s.rssKiB = p.rssKiB
		}
		// Goroutines and heap move with the requests in flight at the
		// instant of a scrape; the median of a few scrapes is the level a
		// leak would raise.
		var heaps, gors []float64
		for i := range soakScrapes {
			if i > 0 && !pause(ctx, soakScrapeGap) {
				return
			}
			m, err := scrapeMetrics(ctx, "http://"+inst.internal+"/metrics", "go_memstats_heap_inuse_bytes", "go_goroutines")
			if err != nil {
				if ctx.Err() != nil {
					return // the soak ended under the scrape: no sample
				}
				c.fail(fmt.Errorf("read metrics: %w", err))
				continue
			}
			heaps, gors = append(heaps, m["go_memstats_heap_inuse_bytes"]), append(gors, m["go_goroutines"])
		}
		s.heapInuse, s.goroutines = medianOf(heaps), medianOf(gors)
		s.requests, s.errors = c.requests.Load(), c.errors.Load()
		s.logins, s.signOuts, s.websocket = c.logins.Load(), c.signOuts.Load(), c.webSockets.Load()
		s.refreshes = inst.idp.snapshot()[idpTokenRefresh] - refreshStart
		rep.samples = append(rep.samples, s)
		fmt.Fprintf(b.stderr, "[soak] %6s RSS %5.1f MiB  heap in use %5.1f MiB  goroutines %4.0f  requests %d  refreshes %d  logins %d  sign-outs %d  websockets %d  errors %d\n",
			s.at, mib(s.rssKiB), s.heapInuse/(1<<20), s.goroutines, s.requests, s.refreshes, s.logins, s.signOuts, s.websocket, s.errors)
	}
	sample()
	tick := time.NewTicker(b.cfg.soakInterval)
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			sample()
		}
	}
	wg.Wait()
	// The last sample, after the traffic stopped, is taken with a fresh
	// context (the soak's ended).
	ctx = context.Background()
	sample()
	rep.firstErr = c.firstErr
	rep.loadEnd = loadAverage()
	return rep, nil
}

// pause waits d and reports whether ctx is still live.
func pause(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// soakLoginSignOut logs in (the IdP asks for the password again after each
// sign-out), makes three requests, signs out, and checks that the signed-out
// cookie is refused.
func (b *bench) soakLoginSignOut(ctx context.Context, br *browser, inst *instance, c *soakCounters) error {
	if _, err := br.login(ctx, loginStart(targetAuthgate, inst.base())); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	c.logins.Add(1)
	cookie, err := br.sessionCookie(inst.base())
	if err != nil {
		return err
	}
	set := parseCookieHeader(cookie)
	req := cookieRequester(b.client, inst.base()+"/", []cookieSet{set})
	for range 3 {
		if err := req(ctx); err != nil {
			return fmt.Errorf("request after login: %w", err)
		}
	}
	// The sign-out button's POST, as a browser sends it: a GET from
	// elsewhere only gets a confirmation page (cross-site sign-out guard).
	signOut, err := http.NewRequestWithContext(ctx, http.MethodPost, inst.base()+"/oauth2/sign_out", nil)
	if err != nil {
		return err
	}
	signOut.Header.Set("Origin", inst.base())
	signOut.Header.Set("Sec-Fetch-Site", "same-origin")
	signOut.Header.Set("Sec-Fetch-Mode", "navigate")
	signOut.Header.Set("Accept", "text/html")
	// authgate's answer is what counts, not where the IdP's logout leads.
	noFollow := &http.Client{Transport: br.client.Transport, Jar: br.client.Jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Do(signOut)
	if err != nil {
		return fmt.Errorf("sign out: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		return fmt.Errorf("sign out: status %d, want a redirect", resp.StatusCode)
	}
	c.signOuts.Add(1)
	if err := req(ctx); err == nil || !strings.Contains(err.Error(), "status 401") {
		return fmt.Errorf("request with a signed-out cookie: %v, want status 401", err)
	}
	return nil
}

// webSocketEcho opens a WebSocket through authgate at addr with cookie,
// checks that bytes written come back (the upstream echoes), holds it for
// hold, and closes it.
func webSocketEcho(ctx context.Context, addr, cookie string, hold time.Duration) error {
	if err := benchnet.RequireLoopbackAddr(addr); err != nil {
		return err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(hold + 10*time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAccept: application/json\r\nCookie: %s\r\n\r\n", addr, cookie)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("upgrade: status %d, want 101", resp.StatusCode)
	}
	msg := []byte("ping through authgate")
	for _, wait := range []time.Duration{0, hold} {
		if !pause(ctx, wait) {
			return nil
		}
		if _, err := conn.Write(msg); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil {
			return fmt.Errorf("read echo: %w", err)
		}
		if string(got) != string(msg) {
			return fmt.Errorf("echo %q, want %q", got, msg)
		}
	}
	return nil
}

// scrapeMetrics reads the named unlabelled gauges from a Prometheus text
// endpoint on loopback.
func scrapeMetrics(ctx context.Context, u string, names ...string) (map[string]float64, error) {
	if err := benchnet.RequireLoopbackURL(u); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: status %d", u, resp.StatusCode)
	}
	return parseMetrics(resp.Body, names...)
}

// parseMetrics returns the values of the named samples without labels.
func parseMetrics(r io.Reader, names ...string) (map[string]float64, error) {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	out := make(map[string]float64)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || !want[name] {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %w", name, err)
		}
		out[name] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("metric %s missing", n)
		}
	}
	return out, nil
}

// soakReport is a soak's samples and verdict.
type soakReport struct {
	duration, interval time.Duration
	samples            []soakSample
	firstErr           error
	loadStart, loadEnd string
	commit             string
}

// drift fits a straight line through the second half of ys (least squares
// over the sample times) and returns its rise across that half relative to
// the half's mean: 0.05 is a 5% climb from the half's start to its end.
// Fitting damps the sawtooth of garbage collection, which a first/last
// comparison would mistake for drift.
func drift(at []time.Duration, ys []float64) float64 {
	n := len(ys)
	if n < 4 || len(at) != n {
		return math.NaN()
	}
	xs, vs := at[n/2:], ys[n/2:]
	var sx, sy float64
	for i := range vs {
		sx += xs[i].Seconds()
		sy += vs[i]
	}
	mx, my := sx/float64(len(vs)), sy/float64(len(vs))
	var num, den float64
	for i := range vs {
		dx := xs[i].Seconds() - mx
		num += dx * (vs[i] - my)
		den += dx * dx
	}
	if den == 0 || my == 0 {
		return math.NaN()
	}
	span := (xs[len(xs)-1] - xs[0]).Seconds()
	return num / den * span / my
}

// series returns the samples taken while the traffic ran (every sample but
// the one after it stopped).
func (r *soakReport) series() []soakSample {
	if len(r.samples) < 2 {
		return r.samples
	}
	return r.samples[:len(r.samples)-1]
}

// medianOf returns the median of vs, 0 for none.
func medianOf(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	vs = slices.Clone(vs)
	slices.Sort(vs)
	if n := len(vs); n%2 == 0 {
		return (vs[n/2-1] + vs[n/2]) / 2
	}
	return vs[len(vs)/2]
}

// drifts returns the second-half drift of RSS, heap in use and goroutines.
func (r *soakReport) drifts() (rss, heap, goroutines float64) {
	s := r.series()
	at := make([]time.Duration, len(s))
	var rv, hv, gv []float64
	for i, x := range s {
		at[i] = x.at
		rv = append(rv, float64(x.rssKiB))
		hv = append(hv, x.heapInuse)
		gv = append(gv, x.goroutines)
	}
	return drift(at, rv), drift(at, hv), drift(at, gv)
}

// render writes the soak as Markdown.
func (r *soakReport) render(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	rss, heap, gor := r.drifts()
	last := r.samples[len(r.samples)-1]
	ok := func(d float64) bool { return !math.IsNaN(d) && math.Abs(d) <= soakMaxDrift }
	p("# authgate soak\n\n")
	p("`go run ./cmd/authgate-bench -soak %s -out deploy/bench/SOAK.md` (authgate commit %s). Load average %s at the start, %s at the end.\n\n", r.duration, r.commit, r.loadStart, r.loadEnd)
	p("Mixed traffic against one authgate (cookie store, defaults) whose IdP issues access tokens for %s, so that sessions refresh every second or so: ", refreshTokenLifetime)
	p("%d workers going round %d sessions (a request every %s each, keeping every cookie they are given), ", soakRequestWorker, soakSessions, soakRequestPause)
	p("one browser that logs in (password form), makes three requests, signs out and checks that the old cookie is refused, every %s, ", soakLoginEvery)
	p("and %d workers each opening a WebSocket (echoed by the upstream), writing through it, holding it %s and closing it.\n\n", soakWebSockets, soakWebSocketHold)
	p("| target | measured | result |\n|---|---|---|\n")
	p("| RSS drift over the second half ≤ %.0f%% | %+.1f%% | %s |\n", soakMaxDrift*100, rss*100, verdict(ok(rss)))
	p("| heap in use drift over the second half ≤ %.0f%% | %+.1f%% | %s |\n", soakMaxDrift*100, heap*100, verdict(ok(heap)))
	p("| goroutine drift over the second half ≤ %.0f%% | %+.1f%% | %s |\n", soakMaxDrift*100, gor*100, verdict(ok(gor)))
	errText := "0"
	if last.errors > 0 {
		errText = fmt.Sprintf("%d (first: %s)", last.errors, mdEscape(fmt.Sprint(r.firstErr)))
	}
	p("| errors = 0 | %s | %s |\n", errText, verdict(last.errors == 0))
	p("| traffic | %d requests, %d refresh grants at the IdP, %d logins, %d sign-outs, %d WebSockets | reported |\n\n", last.requests, last.refreshes, last.logins, last.signOuts, last.websocket)
	p("Drift is the rise of a least-squares line through the second half's samples, from its first to its last sample, relative to their mean. Heap in use and goroutines are each the median of five scrapes of /metrics 100 ms apart, since both move with the requests in flight at any instant. The last row is taken after the traffic stopped.\n\n")
	p("| time | RSS MiB | heap in use MiB | goroutines | requests | refreshes | logins | sign-outs | WebSockets | errors |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.samples {
		p("| %s | %.1f | %.1f | %.0f | %d | %d | %d | %d | %d | %d |\n", s.at, mib(s.rssKiB), s.heapInuse/(1<<20), s.goroutines, s.requests, s.refreshes, s.logins, s.signOuts, s.websocket, s.errors)
	}
}

// soak is the -soak run: setup as for the refresh cases, the soak, and its
// report on stdout and in -out.
func (b *bench) soak(ctx context.Context) error {
	rep, err := b.runSoak(ctx)
	if err != nil {
		return err
	}
	rep.commit = "unknown"
	for _, kv := range machineInfo(ctx, b.repo, b.cfg.rev, b.wrk.path) {
		if kv.key == "authgate commit" {
			rep.commit = kv.value
		}
	}
	if err := b.writeReport(rep.render); err != nil {
		return err
	}
	if rss, heap, gor := rep.drifts(); rep.samples[len(rep.samples)-1].errors > 0 || !(math.Abs(rss) <= soakMaxDrift && math.Abs(heap) <= soakMaxDrift && math.Abs(gor) <= soakMaxDrift) {
		return errors.New("soak: a target was missed (see the report)")
	}
	return nil
}
