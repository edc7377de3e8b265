// Package providertest holds what the real third-party OpenID Providers
// used by authgate's tests share: finding a tool that a script builds or
// installs outside authgate's module and caches between runs. The
// providers themselves are in the subpackages hydra and nodeop.
package providertest

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// Tool runs script (build.sh or install.sh of a provider package), which
// prints the path of a cached tool, building or installing it first when it
// is missing. On CI (CI=true) the tool must already be there, put there by
// .ci/test: a missing one fails the test rather than spending minutes
// building it inside go test's timeout, and never skips it. envVar, when
// set in the environment, names the tool's path and skips the script.
func Tool(t testing.TB, envVar, script string) string {
	t.Helper()
	if p := os.Getenv(envVar); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s: %v", envVar, err)
		}
		return p
	}
	args := []string{script}
	if os.Getenv("CI") == "true" {
		args = append(args, "--check")
	}
	cmd := exec.Command("bash", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v (on CI, .ci/test installs it; locally the script builds it once and caches it)\n%s", script, err, lastLines(stderr.String(), 30))
	}
	return strings.TrimSpace(string(out))
}

// FreePort returns a loopback TCP port nobody listens on right now. A
// process told to listen on it may still lose a race for it; callers retry.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// SyncBuffer is a log sink safe for concurrent writes, for a provider
// process's output.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
