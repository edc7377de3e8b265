package deploy_test

import (
	"bytes"
	"go/build"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// chartDir is the authgate chart.
var chartDir = filepath.Join(repoRoot, "charts", "authgate")

// kubeVersions: the newest Kubernetes the chart is rendered for, and one
// before native sidecars (1.29), for the fallback. `helm template` otherwise
// assumes v1.20 when helm was built with go install.
const (
	kubeNative   = "1.33.0"
	kubePreNativ = "1.28.0"
)

// helmBinary finds helm on PATH or where `go install` puts it. The tests fail,
// not skip, without it: deploy/check.sh installs it.
func helmBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		gopath = build.Default.GOPATH
	}
	for _, dir := range filepath.SplitList(gopath) {
		p := filepath.Join(dir, "bin", "helm")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("helm not found on PATH or in $GOPATH/bin: run deploy/check.sh, or go install helm.sh/helm/v3/cmd/helm@v3.22.0")
	return ""
}

// runHelm runs helm with args and returns its standard output, or its
// standard error as the error text.
func runHelm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helmBinary(t), args...)
	// No repositories, cache or config of the machine's user.
	home := t.TempDir()
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), &helmError{args: args, stderr: strings.TrimSpace(stderr.String()), err: err}
	}
	return stdout.String(), nil
}

type helmError struct {
	args   []string
	stderr string
	err    error
}

func (e *helmError) Error() string {
	return "helm " + strings.Join(e.args, " ") + ": " + e.err.Error() + ": " + e.stderr
}

// mustHelm is runHelm that fails the test on error.
func mustHelm(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runHelm(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// exampleChart assembles charts/authgate/examples/NAME the way `helm
// dependency build` would, in a temporary directory: the authgate chart
// (without its examples) copied into its charts/. It returns the chart path.
func exampleChart(t *testing.T, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	copyTree(t, filepath.Join(chartDir, "examples", name), dst, nil)
	copyTree(t, chartDir, filepath.Join(dst, "charts", "authgate"), func(rel string) bool {
		return rel == "examples"
	})
	return dst
}

// copyTree copies directory src to dst, leaving out the paths (relative to
// src) for which skip reports true.
func copyTree(t *testing.T, src, dst string, skip func(rel string) bool) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if skip != nil && rel != "." && skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatalf("copy %s to %s: %v", src, dst, err)
	}
}
