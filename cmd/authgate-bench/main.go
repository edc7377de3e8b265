// Command authgate-bench measures authgate against a bare
// httputil.ReverseProxy with the same transport, on this machine, over
// loopback only and in bounded time.
//
// It builds the real authgate binary (go build ./cmd/authgate), starts a
// fixed-body upstream, the bare proxy and one authgate per configuration as
// processes of their own, and the demo OpenID Provider in its own process.
// It logs in once, then drives each case with wrk (or, for logins and
// refreshes, with a closed-loop Go client), alternating the targets
// A B A B … and reading CPU time and peak RSS of each process from /proc.
// It prints a Markdown report (and writes it to -out): per-run numbers,
// medians, authgate/bare ratios, the targets of issue 7 and, with -micro,
// the handler micro-benchmarks of package proxy.
//
// Usage (from the repository root):
//
//	go run ./cmd/authgate-bench -out deploy/bench/RESULTS.md
//
// Run `go run ./cmd/authgate-bench -h` for the flags. It needs wrk (Debian
// package wrk) and, for the Redis case, redis-server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// defaultRuns is -runs' default: alternations per case.
const defaultRuns = 3

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case cmdUpstream:
			return runUpstream(ctx, args[1:], stdout, stderr)
		}
	}
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "authgate-bench: %v\n", err)
		return 2
	}
	b := &bench{cfg: cfg, stdout: stdout, stderr: stderr}
	if err := b.run(ctx); err != nil {
		fmt.Fprintf(stderr, "authgate-bench: %v\n", err)
		return 1
	}
	return 0
}

// Case names, in the order they run.
const (
	caseCookie       = "cookie"
	caseRedis        = "redis"
	caseNavigation   = "navigation"
	caseAPI          = "api"
	caseOneConn      = "one-conn"
	caseLogin        = "login"
	caseRefreshGrace = "refresh-grace"
	caseRefresh      = "refresh"
)

// allCases is every case in the order they run. refresh comes last: it
// leaves authgate holding memory (10 s of refreshed sessions) that would
// show in the peak RSS of a later case on the same process.
var allCases = []string{caseCookie, caseRedis, caseNavigation, caseAPI, caseOneConn, caseLogin, caseRefreshGrace, caseRefresh}

// config is the command line of a benchmark run.
type config struct {
	duration    time.Duration // one measured load run
	warmup      time.Duration // unmeasured run per target before each case; 0 for none
	runs        int           // alternations A B per case
	connections int           // wrk -c
	threads     int           // wrk -t
	workers     int           // Go-loop workers (login, refresh)
	// refreshSessions is the pool of sessions the refresh case goes round.
	refreshSessions int
	cases           []string
	out             string // also write the report here
	repo            string // repository root; empty finds it from the working directory
	authgateBin     string // prebuilt binary; empty builds ./cmd/authgate
	rev             string // build authgate from this git revision instead of the working tree
	wrk             string
	micro           bool     // run the proxy handler micro-benchmarks
	benchtime       string   // their -benchtime
	logLevel        string   // AUTHGATE_LOG_LEVEL
	keep            bool     // keep the temporary directory (logs)
	authgateEnv     []string // extra AUTHGATE_* settings for every authgate process
	buildTags       string   // -tags of the authgate build
	peers           []string // targetOAuth2, targetApache: the peers to run when installed
	oauth2Proxy     string   // oauth2-proxy executable; empty looks in PATH and GOBIN
	apache          string   // apache2 executable; empty looks in /usr/sbin
	soak            time.Duration
	soakInterval    time.Duration
}

// maxGraceRun bounds -duration plus -warmup for the refresh-grace case: its
// wrk run must end inside authgate's 10s refresh grace window.
const maxGraceRun = 9 * time.Second

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("authgate-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "length of each measured load run (whole seconds)")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured load per target before each case (whole seconds; 0 for none)")
	fs.IntVar(&c.runs, "runs", defaultRuns, "alternations A B per case; medians are taken over them")
	fs.IntVar(&c.connections, "connections", 64, "wrk keep-alive connections (-c)")
	fs.IntVar(&c.threads, "threads", 2, "wrk threads (-t)")
	fs.IntVar(&c.workers, "workers", 8, "closed-loop Go clients for the login and refresh cases")
	fs.IntVar(&c.refreshSessions, "refresh-sessions", 512, "sessions the refresh case goes round; each is due for a refresh about 1s after its last one, so this bounds the refresh rate it can show (~512/s)")
	cases := fs.String("cases", strings.Join(allCases, ","), "comma-separated cases to run: "+strings.Join(allCases, ", "))
	fs.StringVar(&c.out, "out", "", "also write the Markdown report to this file (e.g. deploy/bench/RESULTS.md)")
	fs.StringVar(&c.repo, "repo", "", "repository root (default: found from the working directory)")
	fs.StringVar(&c.authgateBin, "authgate", "", "use this authgate binary instead of building ./cmd/authgate")
	fs.StringVar(&c.rev, "rev", "", "build authgate from this git revision (git archive) instead of the working tree")
	fs.StringVar(&c.wrk, "wrk", "wrk", "wrk executable")
	fs.BoolVar(&c.micro, "micro", true, "also run the handler micro-benchmarks of ./proxy (go test -bench)")
	fs.StringVar(&c.benchtime, "benchtime", "1s", "-benchtime of the micro-benchmarks")
	fs.StringVar(&c.logLevel, "log-level", "info", "AUTHGATE_LOG_LEVEL of the authgate processes (their logs go to files)")
	fs.BoolVar(&c.keep, "keep", false, "keep the temporary directory with the process logs")
	fs.Func("authgate-env", "extra KEY=VALUE for every authgate process (repeatable): AUTHGATE_* or GOMEMLIMIT/GOGC/GODEBUG, e.g. AUTHGATE_REDIS_CACHE_TTL=1s", func(v string) error {
		name, _, ok := strings.Cut(v, "=")
		if !ok || !(strings.HasPrefix(name, "AUTHGATE_") || name == "GOMEMLIMIT" || name == "GOGC" || name == "GODEBUG") {
			return fmt.Errorf("%q is not AUTHGATE_NAME=value, GOMEMLIMIT=value, GOGC=value or GODEBUG=value", v)
		}
		c.authgateEnv = append(c.authgateEnv, v)
		return nil
	})
	fs.StringVar(&c.buildTags, "build-tags", "nodemo", "build tags of the authgate binary (the container image's: nodemo)")
	peers := fs.String("peers", targetOAuth2+","+targetApache, "comma-separated peers to run beside authgate when installed: "+targetOAuth2+", "+targetApache+" (empty for none)")
	fs.StringVar(&c.oauth2Proxy, "oauth2-proxy", "", "oauth2-proxy executable (default: oauth2-proxy in PATH, then in GOBIN or ~/go/bin)")
	fs.StringVar(&c.apache, "apache", "", "Apache httpd executable (default /usr/sbin/apache2)")
	fs.DurationVar(&c.soak, "soak", 0, "instead of the cases, run mixed traffic against authgate for this long (e.g. 10m) and report memory and goroutines over time")
	fs.DurationVar(&c.soakInterval, "soak-interval", 10*time.Second, "how often the soak samples authgate")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var problems []error
	for name := range strings.SplitSeq(*peers, ",") {
		name = strings.TrimSpace(name)
		switch {
		case name == "":
		case name != targetOAuth2 && name != targetApache:
			problems = append(problems, fmt.Errorf("-peers: unknown peer %q (want %s or %s)", name, targetOAuth2, targetApache))
		case !slices.Contains(c.peers, name):
			c.peers = append(c.peers, name)
		}
	}
	if c.soak != 0 && (c.soak < time.Minute || c.soak > time.Hour) {
		problems = append(problems, fmt.Errorf("-soak %s: want 1m to 1h", c.soak))
	}
	if c.soakInterval < time.Second || (c.soak != 0 && c.soakInterval*4 > c.soak) {
		problems = append(problems, fmt.Errorf("-soak-interval %s: want at least 1s and a quarter of -soak at most", c.soakInterval))
	}
	if c.duration < time.Second || c.duration%time.Second != 0 {
		problems = append(problems, fmt.Errorf("-duration %s: want whole seconds, at least 1s (wrk's unit)", c.duration))
	}
	if c.warmup < 0 || c.warmup%time.Second != 0 {
		problems = append(problems, fmt.Errorf("-warmup %s: want whole seconds", c.warmup))
	}
	if c.runs < 1 || c.runs > 50 {
		problems = append(problems, fmt.Errorf("-runs %d: want 1 to 50", c.runs))
	}
	if c.connections < 1 || c.connections > 10000 {
		problems = append(problems, fmt.Errorf("-connections %d: want 1 to 10000", c.connections))
	}
	if c.threads < 1 || c.threads > c.connections {
		problems = append(problems, fmt.Errorf("-threads %d: want 1 to -connections (%d)", c.threads, c.connections))
	}
	if c.workers < 1 || c.workers > 256 {
		problems = append(problems, fmt.Errorf("-workers %d: want 1 to 256", c.workers))
	}
	if c.refreshSessions < c.workers || c.refreshSessions > 10000 {
		problems = append(problems, fmt.Errorf("-refresh-sessions %d: want -workers (%d) to 10000", c.refreshSessions, c.workers))
	}
	if c.rev != "" && c.authgateBin != "" {
		problems = append(problems, errors.New("-rev and -authgate: set one, not both"))
	}
	seen := make(map[string]bool)
	for name := range strings.SplitSeq(*cases, ",") {
		name = strings.TrimSpace(name)
		switch {
		case name == "":
		case !slices.Contains(allCases, name):
			problems = append(problems, fmt.Errorf("-cases: unknown case %q (want some of %s)", name, strings.Join(allCases, ", ")))
		case !seen[name]:
			seen[name] = true
		}
	}
	for _, name := range allCases { // run in the documented order
		if seen[name] {
			c.cases = append(c.cases, name)
		}
	}
	if len(c.cases) == 0 && len(problems) == 0 {
		problems = append(problems, errors.New("-cases: none selected"))
	}
	if c.soak > 0 {
		// The soak needs authgate-refresh (its setup) and no peer.
		c.cases, c.peers = []string{caseRefresh}, nil
	}
	if seen[caseRefreshGrace] && c.duration+c.warmup > maxGraceRun {
		problems = append(problems, fmt.Errorf("-duration plus -warmup must be at most %s with case %s (the 10s refresh grace window)", maxGraceRun, caseRefreshGrace))
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	return c, nil
}

// plannedLoad is the load time the run will take: every case × target ×
// (warm-up + runs × duration). Setup, builds and micro-benchmarks come on
// top.
func (c *config) plannedLoad() time.Duration {
	var total time.Duration
	for _, name := range c.cases {
		targets := 3 + len(c.peers) // authgate, both bare proxies, peers
		switch name {
		case caseLogin:
			targets = 1 + len(c.peers)
		case caseRedis, caseRefreshGrace:
			targets = 3
		}
		total += time.Duration(targets) * (c.warmup + time.Duration(c.runs)*c.duration)
	}
	return total
}

// has reports whether case name was selected.
func (c *config) has(names ...string) bool {
	for _, n := range names {
		if slices.Contains(c.cases, n) {
			return true
		}
	}
	return false
}
