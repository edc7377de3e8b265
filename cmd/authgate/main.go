// Command authgate is an authenticating reverse proxy: it signs browsers in
// with OpenID Connect and forwards their requests to an upstream with the
// user's access token. It is configured by environment variables only; run
// `authgate --help` for the list.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"

	"github.com/authgate/authgate/internal/memlimit"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	// First, before main allocates: the memory profiler's bookkeeping
	// stays out of processes that cannot serve a profile.
	setMemProfiling(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// setMemProfiling turns the runtime's memory profiler off unless
// AUTHGATE_PPROF=true, the only way to read a heap profile. The profiler
// samples an allocation every 512 KiB and, from its first sample, keeps a
// 1.4 MB hash table of call stacks whose pages become resident as new
// stacks are sampled: about 1 MiB of RSS under load, measured (the
// benchmark's "runtime other" 2.3 → 0.9 MiB). An invalid value is left to
// the configuration check, which refuses it.
func setMemProfiling(getenv func(string) string) {
	if on, err := strconv.ParseBool(getenv("AUTHGATE_PPROF")); err == nil && on {
		return
	}
	runtime.MemProfileRate = 0
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help", "help":
			printHelp(stdout)
			return 0
		case "--version", "version":
			fmt.Fprintln(stdout, "authgate", version)
			return 0
		case "check":
			return runCheck(ctx, stdout)
		case "healthcheck":
			return runHealthcheck(ctx, stderr)
		case "demo":
			return runDemo(ctx, args[1:], stdout, stderr)
		default:
			fmt.Fprintf(stderr, "authgate: unknown command %q (see authgate --help)\n", args[0])
			return 2
		}
	}
	cfg, err := loadConfig()
	if err != nil {
		fmt.Fprintf(stderr, "authgate: invalid configuration:\n")
		for _, e := range unjoin(err) {
			fmt.Fprintf(stderr, "  - %v\n", e)
		}
		return 2
	}
	// Before NewMain allocates: a pod's memory limit should shape the
	// garbage collector from the start.
	limit, limitErr := memlimit.FromCgroup(memlimit.Options{})
	m, err := NewMain(cfg, MainOptions{LogOutput: stderr})
	if err != nil {
		fmt.Fprintf(stderr, "authgate: %v\n", err)
		return 1
	}
	switch {
	case limitErr != nil:
		m.log.Warn("no memory limit from the cgroup", "error", limitErr)
	case limit.Limit > 0:
		m.log.Info("memory limit from the cgroup (set GOMEMLIMIT to override, GOMEMLIMIT=off for none)",
			"gomemlimit_bytes", limit.Limit, "cgroup_memory_max_bytes", limit.CgroupMax, "source", limit.Source)
	}
	if err := m.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "authgate: %v\n", err)
		return 1
	}
	return 0
}

// unjoin returns the errors joined by errors.Join, or err itself.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{errors.Unwrap(err), err}[1:]
}
