package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// bench is one benchmark run: the processes it started and what it
// measured.
type bench struct {
	cfg            *config
	stdout, stderr io.Writer

	tmp      string
	repo     string
	self     string // this executable, re-run for the bare proxy and upstream
	authgate string // the authgate binary
	src      string // the source tree it was built from (and the micro-benchmarks run in)
	wrk      *wrkRunner
	ticks    int64 // USER_HZ

	idp           *benchIdP // tokens live an hour
	refreshIdP    *benchIdP // tokens live refreshTokenLifetime
	upstream      *child
	upstreamURL   string
	upstreamStats string
	bareProxy     string  // the bare proxy binary (./cmd/authgate-bench/bareproxy)
	bare          *target // plain: a new copy buffer per response
	barePooled    *target // with a BufferPool: the reference
	instances     map[string]*instance
	// peers by target name, and their variants for the refresh case (an
	// IdP with 2s tokens); peerMissing says why a peer cannot run.
	peers        map[string]*target
	refreshPeers map[string]*target
	peerMissing  map[string]string
	// peerSpecs and refreshPeerSpecs are the peers planned before the IdPs
	// start (their redirect URIs must be registered).
	peerSpecs, refreshPeerSpecs map[string]*plannedPeer
	clientSecret                string
	redis                       *child
	// redisMissing, when set, says why the Redis case cannot run.
	redisMissing string

	transport *http.Transport // shared by every Go client
	client    *http.Client    // no cookie jar, no redirects

	rep *report
}

// instance is one authgate process and its configuration.
type instance struct {
	name             string // cookie, redis, refresh
	about            string // its configuration, for the report
	addr, internal   string
	env              []string // AUTHGATE_* beyond the common ones
	child            *child
	cookie           string // Cookie header of a session logged in at start
	idleRSSKiB       int64
	idleAfterLogin   int64
	idleSplit        procSample // at start: RssAnon and RssFile
	needsRedisServer bool
	idp              *benchIdP // the IdP it signs in with
}

func (i *instance) base() string { return "http://" + i.addr }

// target is one side of an A/B comparison.
type target struct {
	name string // targetAuthgate, targetBare, targetBarePooled, targetOAuth2, targetApache
	base string
	proc *child    // measured with its descendants (Apache's workers)
	aux  *child    // another process whose CPU is part of this target's cost (redis-server)
	idp  *benchIdP // the IdP whose calls the runs count; nil for none
	// cookie is the Cookie header of a session logged in at start (peers).
	cookie string
	about  string // how it is configured, for the report
	// metricsURL is authgate's /metrics, read after each run to split its
	// memory; pprofURL its /debug/pprof/ (with -keep, AUTHGATE_PPROF).
	metricsURL, pprofURL string
}

const (
	targetAuthgate = "authgate"
	targetBare     = "bare"
)

func (b *bench) run(ctx context.Context) (err error) {
	b.rep = &report{started: time.Now(), cfg: b.cfg, loadStart: loadAverage()}
	fmt.Fprintf(b.stderr, "authgate-bench: %d cases, about %s of load plus setup\n", len(b.cfg.cases), b.cfg.plannedLoad())

	if b.repo, err = findRepo(b.cfg.repo); err != nil {
		return err
	}
	if b.self, err = os.Executable(); err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	if b.tmp, err = os.MkdirTemp("", "authgate-bench-"); err != nil {
		return fmt.Errorf("create temporary directory: %w", err)
	}
	defer func() {
		if b.cfg.keep || err != nil {
			fmt.Fprintf(b.stderr, "authgate-bench: logs kept in %s\n", b.tmp)
			return
		}
		os.RemoveAll(b.tmp)
	}()
	defer b.stopAll()

	if b.wrk, err = newWrkRunner(b.cfg.wrk, b.tmp); err != nil {
		return err
	}
	b.ticks = clockTicks()
	b.transport = newBareTransport()
	b.transport.MaxIdleConnsPerHost = 2 * b.cfg.workers
	b.client = &http.Client{
		Transport:     b.transport,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	if err := b.buildAuthgate(ctx); err != nil {
		return err
	}
	b.bareProxy = filepath.Join(b.tmp, "bareproxy")
	if err := b.goBuild(ctx, b.repo, "./cmd/authgate-bench/bareproxy", b.bareProxy, ""); err != nil {
		return err
	}
	b.rep.machine = machineInfo(ctx, b.repo, b.cfg.rev, b.wrk.path)
	if err := b.startUpstreamAndBare(); err != nil {
		return err
	}
	if err := b.startAuthgates(ctx); err != nil {
		return err
	}
	if err := b.startPeers(ctx); err != nil {
		return err
	}
	for _, t := range []*target{b.barePooled, b.bare, b.peers[targetOAuth2], b.peers[targetApache]} {
		if t != nil {
			b.rep.targets = append(b.rep.targets, keyValue{t.name, t.about})
		}
	}
	for _, name := range []string{targetOAuth2, targetApache} {
		if why := b.peerMissing[name]; why != "" {
			b.rep.targets = append(b.rep.targets, keyValue{name, "skipped: " + why})
		}
	}
	b.rep.idle = b.idleRSS()
	b.rep.binaries = []binaryInfo{
		inspectBinary(ctx, "authgate (-tags "+b.cfg.buildTags+", static, -trimpath)", b.authgate, "version"),
		inspectBinary(ctx, "bare proxy (./cmd/authgate-bench/bareproxy, static, -trimpath)", b.bareProxy, "-h"),
	}
	b.rep.soak = readFileString(filepath.Join(b.repo, "deploy", "bench", "SOAK.md"))
	b.rep.notes = readFileString(filepath.Join(b.repo, "deploy", "bench", "NOTES.md"))
	if b.cfg.soak > 0 {
		return b.soak(ctx)
	}

	for _, c := range b.cases() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.rep.cases = append(b.rep.cases, b.runCase(ctx, c))
	}
	b.rep.idpTotals = map[string]map[string]int64{"main IdP (1h tokens)": b.idp.snapshot()}
	if b.refreshIdP != nil {
		b.rep.idpTotals[fmt.Sprintf("refresh IdP (%s tokens)", refreshTokenLifetime)] = b.refreshIdP.snapshot()
	}
	b.rep.instances = b.instanceList()

	if b.cfg.micro {
		fmt.Fprintln(b.stderr, "authgate-bench: running the handler micro-benchmarks")
		b.rep.micro, b.rep.microErr = runMicro(ctx, b.src, b.cfg.benchtime)
	}
	b.rep.loadEnd = loadAverage()
	b.rep.finished = time.Now()

	if err := b.writeReport(b.rep.render); err != nil {
		return err
	}
	fmt.Fprintf(b.stderr, "authgate-bench: done in %s\n", b.rep.finished.Sub(b.rep.started).Round(time.Second))
	return nil
}

// findRepo returns dir, or the nearest directory up from the working
// directory whose go.mod declares authgate's module.
func findRepo(dir string) (string, error) {
	if dir != "" {
		return filepath.Abs(dir)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/authgate/authgate\n") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("find repository: no go.mod of github.com/authgate/authgate above the working directory (use -repo)")
		}
	}
}

func (b *bench) buildAuthgate(ctx context.Context) error {
	if b.cfg.authgateBin != "" {
		b.authgate = b.cfg.authgateBin
		b.src = b.repo
		return nil
	}
	b.authgate = filepath.Join(b.tmp, "authgate")
	src := b.repo
	b.src = src
	if b.cfg.rev != "" {
		// A snapshot of one revision, so that work in progress in the
		// working tree neither breaks the build nor lands in the numbers.
		src = filepath.Join(b.tmp, "src")
		b.src = src
		if err := os.Mkdir(src, 0o755); err != nil {
			return fmt.Errorf("export %s: %w", b.cfg.rev, err)
		}
		archive := exec.CommandContext(ctx, "git", "-C", b.repo, "archive", "--format=tar", b.cfg.rev)
		untar := exec.CommandContext(ctx, "tar", "-x", "-C", src)
		pipe, err := archive.StdoutPipe()
		if err != nil {
			return fmt.Errorf("export %s: %w", b.cfg.rev, err)
		}
		untar.Stdin = pipe
		var archiveErr strings.Builder
		archive.Stderr = &archiveErr
		if err := archive.Start(); err != nil {
			return fmt.Errorf("export %s: %w", b.cfg.rev, err)
		}
		if out, err := untar.CombinedOutput(); err != nil {
			archive.Wait()
			return fmt.Errorf("export %s: tar: %w: %s", b.cfg.rev, err, lastLines(string(out), 3))
		}
		if err := archive.Wait(); err != nil {
			return fmt.Errorf("export %s: git archive: %w: %s", b.cfg.rev, err, lastLines(archiveErr.String(), 3))
		}
	}
	return b.goBuild(ctx, src, "./cmd/authgate", b.authgate, b.cfg.buildTags)
}

// goBuild builds pkg in dir the way the Dockerfile builds the image's
// binary: static (CGO_ENABLED=0; a cgo build maps libc, about 1.4 MiB more
// RSS) and -trimpath, with the given build tags.
func (b *bench) goBuild(ctx context.Context, dir, pkg, out, tags string) error {
	fmt.Fprintf(b.stderr, "authgate-bench: go build -tags %q %s (%s)\n", tags, pkg, dir)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", tags, "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %w: %s", pkg, err, lastLines(string(out), 10))
	}
	return nil
}

// startUpstreamAndBare starts the fixed-body upstream and the bare proxy in
// front of it.
func (b *bench) startUpstreamAndBare() error {
	up, line, err := startChild("upstream", b.self, []string{cmdUpstream, "-body-size", "128"}, childEnv(), b.tmp, filepath.Join(b.tmp, "upstream.log"), true)
	if err != nil {
		return err
	}
	b.upstream = up
	addrs, err := parseListening(line, 2)
	if err != nil {
		return err
	}
	b.upstreamURL, b.upstreamStats = "http://"+addrs[0], "http://"+addrs[1]+"/stats"

	var err2 error
	if b.bare, err2 = b.startBare("bare-proxy", targetBare, false); err2 != nil {
		return err2
	}
	b.bare.about = "httputil.ReverseProxy, authgate's transport, a new 32 KiB copy buffer per response (ReverseProxy without a BufferPool)"
	if b.barePooled, err2 = b.startBare("bare-proxy-pooled", targetBarePooled, true); err2 != nil {
		return err2
	}
	b.barePooled.about = "the same with a ReverseProxy.BufferPool of 32 KiB buffers, as authgate has: the reference of the ratios"
	return nil
}

// startBare starts one bare proxy in front of the upstream.
func (b *bench) startBare(name, targetName string, pooled bool) (*target, error) {
	args := []string{"-upstream", b.upstreamURL}
	if pooled {
		args = append(args, "-buffer-pool")
	}
	c, line, err := startChild(name, b.bareProxy, args, childEnv(), b.tmp, filepath.Join(b.tmp, name+".log"), true)
	if err != nil {
		return nil, err
	}
	addrs, err := parseListening(line, 1)
	if err != nil {
		c.stop()
		return nil, err
	}
	return &target{name: targetName, base: "http://" + addrs[0], proc: c}, nil
}

// startAuthgates starts the IdP, redis-server when needed, and one
// authgate per configuration the selected cases use, then logs in to each.
func (b *bench) startAuthgates(ctx context.Context) error {
	b.instances = make(map[string]*instance)
	if b.cfg.has(caseCookie, caseNavigation, caseAPI, caseOneConn, caseLogin) {
		b.instances["cookie"] = &instance{name: "cookie", about: "cookie store, defaults (AUTHGATE_REFRESH_SKEW 60s, tokens live 1h: no refresh)"}
	}
	if b.cfg.has(caseRedis) {
		if missing := b.redisUnsupported(ctx); missing != "" {
			b.redisMissing = missing
		} else {
			b.instances["redis"] = &instance{name: "redis", about: "AUTHGATE_SESSION_STORE=redis", needsRedisServer: true}
		}
	}
	if b.cfg.has(caseRefresh, caseRefreshGrace) {
		b.instances["refresh"] = &instance{
			name: "refresh",
			about: fmt.Sprintf("cookie store, defaults, against an IdP whose access tokens live %s: a session is due for a refresh about %s after its last one",
				refreshTokenLifetime, refreshTokenLifetime/2),
		}
	}
	var redirects, refreshRedirects []string
	for _, inst := range b.instanceList() {
		var err error
		if inst.addr, err = freeLoopbackAddr(); err != nil {
			return err
		}
		if inst.internal, err = freeLoopbackAddr(); err != nil {
			return err
		}
		if inst.name == "refresh" {
			refreshRedirects = append(refreshRedirects, inst.base()+"/oauth2/callback")
		} else {
			redirects = append(redirects, inst.base()+"/oauth2/callback")
		}
	}
	clientSecret := randomKey()
	b.clientSecret = clientSecret
	if err := b.planPeers(); err != nil {
		return err
	}
	for _, spec := range b.peerSpecs {
		redirects = append(redirects, spec.redirect)
	}
	for _, spec := range b.refreshPeerSpecs {
		refreshRedirects = append(refreshRedirects, spec.redirect)
	}
	var err error
	if len(redirects) > 0 {
		if b.idp, err = startIdP(clientSecret, redirects, benchTokenLifetime); err != nil {
			return err
		}
	}
	if len(refreshRedirects) > 0 {
		if b.refreshIdP, err = startIdP(clientSecret, refreshRedirects, refreshTokenLifetime); err != nil {
			return err
		}
	}
	for _, inst := range b.instanceList() {
		inst.idp = b.idp
		if inst.name == "refresh" {
			inst.idp = b.refreshIdP
		}
	}
	if inst := b.instances["redis"]; inst != nil {
		addr, err := b.startRedis(ctx)
		if err != nil {
			return err
		}
		inst.env = append(inst.env, "AUTHGATE_SESSION_STORE=redis", "AUTHGATE_REDIS_URL=redis://"+addr)
	}
	for _, inst := range b.instanceList() {
		if err := b.startAuthgate(ctx, inst, clientSecret); err != nil {
			return err
		}
	}
	for _, inst := range b.instanceList() {
		settle(ctx)
		if s, err := readProc(inst.child.pid()); err == nil {
			inst.idleRSSKiB = s.rssKiB
			inst.idleSplit = s
		}
		br, err := newBrowser(b.transport, inst.idp.issuer)
		if err != nil {
			return err
		}
		if _, err := br.login(ctx, loginStart(targetAuthgate, inst.base())); err != nil {
			return fmt.Errorf("log in to authgate-%s: %w", inst.name, err)
		}
		if inst.cookie, err = br.sessionCookie(inst.base()); err != nil {
			return fmt.Errorf("log in to authgate-%s: %w", inst.name, err)
		}
		settle(ctx)
		if s, err := readProc(inst.child.pid()); err == nil {
			inst.idleAfterLogin = s.rssKiB
		}
	}
	return nil
}

// instanceList returns the instances in a fixed order.
func (b *bench) instanceList() []*instance {
	var list []*instance
	for _, name := range []string{"cookie", "redis", "refresh"} {
		if inst := b.instances[name]; inst != nil {
			list = append(list, inst)
		}
	}
	return list
}

func (b *bench) startAuthgate(ctx context.Context, inst *instance, clientSecret string) error {
	env := childEnv(
		"AUTHGATE_UPSTREAM="+b.upstreamURL,
		"AUTHGATE_OIDC_ISSUER_URL="+inst.idp.issuer,
		"AUTHGATE_CLIENT_ID="+benchClientID,
		"AUTHGATE_CLIENT_SECRET="+clientSecret,
		"AUTHGATE_COOKIE_SECRET="+randomKey(),
		"AUTHGATE_REDIRECT_URL="+inst.base()+"/oauth2/callback",
		"AUTHGATE_LISTEN_ADDR="+inst.addr,
		"AUTHGATE_INTERNAL_ADDR="+inst.internal,
		"AUTHGATE_COOKIE_NAME="+benchCookieName,
		"AUTHGATE_COOKIE_SECURE=false",
		"AUTHGATE_SCOPES=openid,email,profile,groups,offline_access",
		"AUTHGATE_LOG_LEVEL="+b.cfg.logLevel,
	)
	if b.cfg.keep {
		// Heap and CPU profiles of every run (-keep only: fetching them
		// maps code the proxy itself never runs).
		env = append(env, "AUTHGATE_PPROF=true")
	}
	env = append(env, inst.env...)
	env = append(env, b.cfg.authgateEnv...)
	name := "authgate-" + inst.name
	c, _, err := startChild(name, b.authgate, nil, env, b.tmp, filepath.Join(b.tmp, name+".log"), false)
	if err != nil {
		return err
	}
	inst.child = c
	if err := waitHTTP(ctx, c, "http://"+inst.internal+"/readyz", 30*time.Second); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	return nil
}

// redisUnsupported returns why the Redis case cannot run, or "".
func (b *bench) redisUnsupported(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, b.authgate, "--help").Output()
	if err != nil {
		return fmt.Sprintf("authgate --help failed: %v", err)
	}
	help := string(out)
	if !strings.Contains(help, "AUTHGATE_SESSION_STORE") || !strings.Contains(help, "AUTHGATE_REDIS_URL") {
		return "authgate has no Redis store yet (AUTHGATE_SESSION_STORE and AUTHGATE_REDIS_URL are not in authgate --help)"
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		return "redis-server is not installed (apt-get install redis-server)"
	}
	return ""
}

// startRedis runs redis-server on a free loopback port, without
// persistence, as a child of this process.
func (b *bench) startRedis(ctx context.Context) (string, error) {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return "", err
	}
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("find redis-server: %w", err)
	}
	c, _, err := startChild("redis-server", path,
		[]string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"},
		childEnv(), b.tmp, filepath.Join(b.tmp, "redis-server.log"), false)
	if err != nil {
		return "", err
	}
	b.redis = c
	if err := waitTCP(ctx, c, addr, 10*time.Second); err != nil {
		return "", err
	}
	return addr, nil
}

// stopAll stops every child process this run started.
func (b *bench) stopAll() {
	for _, inst := range b.instances {
		if inst.child != nil {
			inst.child.stop()
		}
	}
	if b.redis != nil {
		b.redis.stop()
	}
	for _, t := range []*target{b.bare, b.barePooled} {
		if t != nil {
			t.proc.stop()
		}
	}
	for _, m := range []map[string]*target{b.peers, b.refreshPeers} {
		for _, t := range m {
			t.proc.stop()
		}
	}
	if b.upstream != nil {
		b.upstream.stop()
	}
	b.idp.close()
	b.refreshIdP.close()
}

// idleSettle is how long every process is left alone before its idle RSS
// is read: start-up work in the background has finished by then (authgate
// releases its start-up pages once discovery is done; internal/codetrim).
const idleSettle = 2 * time.Second

func settle(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(idleSettle):
	}
}

// idleRSS samples every process after start and one login, before load.
func (b *bench) idleRSS() []idleRSS {
	var list []idleRSS
	for _, inst := range b.instanceList() {
		list = append(list, idleRSS{name: "authgate-" + inst.name, afterStartKiB: inst.idleRSSKiB, afterLoginKiB: inst.idleAfterLogin,
			anonKiB: inst.idleSplit.anonKiB, fileKiB: inst.idleSplit.fileKiB})
	}
	var procs []*child
	for _, t := range []*target{b.bare, b.barePooled, b.peers[targetOAuth2], b.peers[targetApache]} {
		if t != nil {
			procs = append(procs, t.proc)
		}
	}
	for _, c := range append(procs, b.upstream, b.redis) {
		if c == nil {
			continue
		}
		if c.idleStartKiB > 0 {
			list = append(list, idleRSS{name: c.name, afterStartKiB: c.idleStartKiB, afterLoginKiB: c.idleAfterLoginKiB,
				anonKiB: c.idleSplit.anonKiB, fileKiB: c.idleSplit.fileKiB})
		} else if s, err := readTree(c.pid()); err == nil {
			list = append(list, idleRSS{name: c.name, afterStartKiB: s.rssKiB, anonKiB: s.anonKiB, fileKiB: s.fileKiB})
		}
	}
	return list
}

// upstreamCounters reads the upstream's counters.
func (b *bench) upstreamCounters(ctx context.Context) (upstreamCounters, error) {
	var c upstreamCounters
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.upstreamStats, nil)
	if err != nil {
		return c, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return c, fmt.Errorf("read upstream counters: %w", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		return c, fmt.Errorf("read upstream counters: %w", err)
	}
	return c, nil
}

// randomKey returns 32 random bytes, base64: a cookie secret or a client
// secret that lives as long as this run.
func randomKey() string {
	var k [32]byte
	rand.Read(k[:])
	return base64.StdEncoding.EncodeToString(k[:])
}

// loadAverage returns the first three fields of /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// machineInfo describes where the numbers come from.
func machineInfo(ctx context.Context, repo, rev, wrkPath string) []keyValue {
	info := []keyValue{
		{"CPUs (nproc)", fmt.Sprint(runtime.NumCPU())},
		{"CPU model", cpuModel()},
		{"kernel", firstLine(readFileString("/proc/sys/kernel/osrelease"))},
		{"Go (authgate build and this program)", goVersion(ctx, repo)},
	}
	if out, _ := exec.CommandContext(ctx, wrkPath, "-v").CombinedOutput(); len(out) > 0 {
		info = append(info, keyValue{"wrk", firstLine(string(out))})
	}
	ref := rev
	if ref == "" {
		ref = "HEAD"
	}
	if id, err := exec.CommandContext(ctx, "git", "-C", repo, "rev-parse", "--short", ref).Output(); err == nil {
		v := strings.TrimSpace(string(id))
		if rev != "" {
			v += " (built from git archive " + rev + ")"
		} else if st, err := exec.CommandContext(ctx, "git", "-C", repo, "status", "--porcelain", "--", "cmd/authgate", "proxy", "session", "upstream", "go.mod").Output(); err == nil && len(st) > 0 {
			v += " plus uncommitted changes under cmd/authgate, proxy, session, upstream or go.mod"
		}
		info = append(info, keyValue{"authgate commit", v})
	}
	return info
}

func goVersion(ctx context.Context, repo string) string {
	cmd := exec.CommandContext(ctx, "go", "version")
	cmd.Dir = repo
	out, err := cmd.Output()
	if err != nil {
		return runtime.Version()
	}
	return strings.TrimSpace(string(out))
}

func cpuModel() string {
	for line := range strings.SplitSeq(readFileString("/proc/cpuinfo"), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func readFileString(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}

// writeReport renders a report to stdout and, with -out, to that file.
func (b *bench) writeReport(render func(io.Writer)) error {
	var md strings.Builder
	render(&md)
	fmt.Fprint(b.stdout, md.String())
	if b.cfg.out == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(b.cfg.out), 0o755); err != nil {
		return fmt.Errorf("write -out: %w", err)
	}
	if err := os.WriteFile(b.cfg.out, []byte(md.String()), 0o644); err != nil {
		return fmt.Errorf("write -out: %w", err)
	}
	return nil
}
