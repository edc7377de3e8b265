package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// runMicro runs the handler micro-benchmarks of package proxy and returns
// their output, or the reason they could not run.
func runMicro(ctx context.Context, repo, benchtime string) (out, failure string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", microPattern, "-benchmem", "-benchtime", benchtime, "./proxy/")
	cmd.Dir = repo
	b, err := cmd.CombinedOutput()
	out = keepBenchLines(string(b))
	if err != nil {
		return out, fmt.Sprintf("go test -bench: %v: %s", err, lastLines(string(b), 5))
	}
	return out, ""
}

// keepBenchLines drops the PASS/ok noise of go test, keeping the header
// (goos, goarch, pkg, cpu) and the benchmark lines.
func keepBenchLines(out string) string {
	var keep []string
	for line := range strings.SplitSeq(out, "\n") {
		switch {
		case strings.HasPrefix(line, "Benchmark"),
			strings.HasPrefix(line, "goos:"), strings.HasPrefix(line, "goarch:"),
			strings.HasPrefix(line, "pkg:"), strings.HasPrefix(line, "cpu:"):
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}
