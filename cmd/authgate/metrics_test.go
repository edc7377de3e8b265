package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// metricsGate is a gate that has served a login, with a watched secret
// file and a route, so that every metric family has series.
func metricsGate(t *testing.T) *gate {
	t.Helper()
	file := filepath.Join(t.TempDir(), "cookie_secret")
	if err := os.WriteFile(file, []byte(testCookieSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGate(t, func(env map[string]string) {
		delete(env, "AUTHGATE_COOKIE_SECRET")
		env["AUTHGATE_COOKIE_SECRET_FILE"] = file
		env["AUTHGATE_ROUTES"] = `[{match: /, allow: 'true'}]`
	})
	readBody(t, newBrowser(t).signIn(g, g.URL+"/"))
	return g
}

// TestMetricsLint: the whole metric set (authgate's, Go's and the
// process's) passes client_golang's linter: names, units, _total and
// _seconds suffixes, help texts.
func TestMetricsLint(t *testing.T) {
	g := metricsGate(t)
	problems, err := testutil.GatherAndLint(g.registry)
	if err != nil {
		t.Fatalf("GatherAndLint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	families, err := g.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(families) < 10 {
		t.Errorf("gathered %d families, want the whole set", len(families))
	}
}

// TestMetricsIdPEndpoints: a login times discovery, JWKS and token calls
// under their own endpoint names.
func TestMetricsIdPEndpoints(t *testing.T) {
	g := metricsGate(t)
	counts := map[string]uint64{}
	families, err := g.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "authgate_idp_request_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			counts[labelValue(m, "endpoint")] = m.GetHistogram().GetSampleCount()
		}
	}
	for _, e := range []string{"discovery", "jwks", "token"} {
		if counts[e] == 0 {
			t.Errorf("authgate_idp_request_duration_seconds{endpoint=%q} has no observations (all: %v)", e, counts)
		}
	}
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// dashboardFile is the Grafana dashboard the chart ships.
const dashboardFile = "../../charts/authgate/dashboards/authgate.json"

var metricNameRe = regexp.MustCompile(`\b(?:authgate|go|process)_[a-zA-Z0-9_]+`)

// TestDashboardMatchesMetrics: every metric the Grafana dashboard queries
// exists in the registry, and every authgate metric family is on the
// dashboard, so renaming or adding a metric means updating the dashboard.
func TestDashboardMatchesMetrics(t *testing.T) {
	g := metricsGate(t)
	families, err := g.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	// Series names a query may use: counters and gauges by name,
	// histograms by their _bucket, _sum and _count series.
	series := map[string]string{} // series → family
	for _, f := range families {
		name := f.GetName()
		series[name] = name
		if f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				series[name+s] = name
			}
		}
	}

	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var exprs []string
	collectExprs(dash, &exprs)
	if len(exprs) == 0 {
		t.Fatalf("%s has no queries", dashboardFile)
	}
	used := map[string]bool{}
	for _, e := range exprs {
		for _, name := range metricNameRe.FindAllString(e, -1) {
			fam, ok := series[name]
			if !ok {
				t.Errorf("dashboard queries %s, which the registry does not have (in %q)", name, e)
				continue
			}
			used[fam] = true
		}
	}
	var missing []string
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), "authgate_") && !used[f.GetName()] {
			missing = append(missing, f.GetName())
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("metric families not on the dashboard: %v", missing)
	}
}

// collectExprs gathers every "expr" string of a decoded dashboard, in
// panels, rows and templating alike ("query" of a query variable too).
func collectExprs(v any, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && (k == "expr" || k == "definition") {
				*out = append(*out, s)
				continue
			}
			collectExprs(x, out)
		}
	case []any:
		for _, x := range v {
			collectExprs(x, out)
		}
	}
}
