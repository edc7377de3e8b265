package deploy_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// update rewrites generated parts of the artefacts (the config section of
// values.schema.json) from cmd/authgate/config.go.
var update = flag.Bool("update", false, "rewrite values.schema.json's config section from cmd/authgate/config.go")

// scenarios are the documented values files (charts/authgate/ci/*-values.yaml)
// and the kinds each renders. Every file there must be listed, and the other
// way round.
var scenarios = map[string]string{
	"standalone-minimal-values.yaml":        "Deployment=1,PodDisruptionBudget=1,Secret=1,Service=1,ServiceAccount=1",
	"standalone-full-values.yaml":           "ConfigMap=2,Deployment=1,HorizontalPodAutoscaler=1,NetworkPolicy=1,PodDisruptionBudget=1,Service=1,ServiceAccount=1,ServiceMonitor=1",
	"standalone-public-client-values.yaml":  "Deployment=1,PodDisruptionBudget=1,Service=1",
	"sidecar-values.yaml":                   "Secret=1",
	"standalone-redis-sentinel-values.yaml": "Deployment=1,PodDisruptionBudget=1,Secret=1,Service=1,ServiceAccount=1",
}

func TestChartScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	if got, want := names, sortedKeys(scenarios); !slices.Equal(got, want) {
		t.Fatalf("charts/authgate/ci holds %q, the scenarios table lists %q: keep them in step", got, want)
	}
	config := configNames(t)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			valuesFile := filepath.Join(chartDir, "ci", name)
			mustHelm(t, "lint", "--strict", chartDir, "-f", valuesFile, "--kube-version", kubeNative)
			out := mustHelm(t, "template", "rel", chartDir, "-f", valuesFile, "--kube-version", kubeNative, "--namespace", "ns")
			objs := decodeObjects(t, name, out)
			if got, want := kindCounts(objs), scenarios[name]; got != want {
				t.Errorf("rendered kinds = %s, want %s", got, want)
			}
			var values map[string]any
			readYAML(t, valuesFile, &values)
			if strings.HasPrefix(name, "standalone") {
				checkStandalone(t, objs, values, config)
			}
		})
	}
}

// checkStandalone checks what holds for every standalone rendering: a hardened
// authgate container wired to its ports, secrets and probes, and selectors
// that select its pods.
func checkStandalone(t *testing.T, objs []object, values map[string]any, config map[string]bool) {
	t.Helper()
	d := only[appsv1.Deployment](t, objs)
	pod := &d.Spec.Template
	c, init := findContainer(&pod.Spec, "authgate")
	if c == nil || init {
		t.Fatalf("Deployment %s: no authgate container in containers", d.Name)
	}
	if got := len(pod.Spec.Containers); got != 1 {
		t.Errorf("Deployment: %d containers, want 1", got)
	}
	checkContainer(t, c, config)
	if pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken {
		t.Errorf("Deployment: automountServiceAccountToken = %v, want false", pod.Spec.AutomountServiceAccountToken)
	}
	if !subset(d.Spec.Selector.MatchLabels, pod.Labels) {
		t.Errorf("Deployment selector %v does not select its pod labels %v", d.Spec.Selector.MatchLabels, pod.Labels)
	}

	// The optional `authgate check` init container sees exactly the
	// proxy's configuration.
	check, init := findContainer(&pod.Spec, "authgate-check")
	enabled, _ := lookup(values, "checkInitContainer", "enabled").(bool)
	switch {
	case enabled && (check == nil || !init):
		t.Errorf("checkInitContainer.enabled: no authgate-check init container")
	case !enabled && check != nil:
		t.Errorf("authgate-check rendered although checkInitContainer.enabled is false")
	case check != nil:
		if !slices.Equal(check.Args, []string{"check"}) || check.Image != c.Image {
			t.Errorf("authgate-check: image %q args %q, want %q [check]", check.Image, check.Args, c.Image)
		}
		if !reflect.DeepEqual(check.Env, c.Env) || !reflect.DeepEqual(check.VolumeMounts, c.VolumeMounts) {
			t.Errorf("authgate-check: env or volume mounts differ from the authgate container's")
		}
		if !reflect.DeepEqual(check.SecurityContext, c.SecurityContext) {
			t.Errorf("authgate-check: securityContext differs from the authgate container's")
		}
	}

	secrets := map[string]*corev1.Secret{}
	for _, o := range objs {
		if s, ok := o.Obj.(*corev1.Secret); ok {
			secrets[s.Name] = s
		}
	}
	existing, _ := lookup(values, "secret", "existingSecret").(string)
	for _, e := range c.Env {
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			continue
		}
		ref := e.ValueFrom.SecretKeyRef
		if s, ok := secrets[ref.Name]; ok {
			if _, ok := s.Data[ref.Key]; !ok {
				t.Errorf("env %s: Secret %s has no key %q", e.Name, ref.Name, ref.Key)
			}
		} else if ref.Name != existing {
			t.Errorf("env %s: Secret %q is neither rendered nor secret.existingSecret (%q)", e.Name, ref.Name, existing)
		}
	}

	svc := only[corev1.Service](t, objs)
	if !subset(svc.Spec.Selector, pod.Labels) {
		t.Errorf("Service selector %v does not select pod labels %v", svc.Spec.Selector, pod.Labels)
	}
	for _, p := range svc.Spec.Ports {
		if !hasPortNamed(c, p.TargetPort.String()) {
			t.Errorf("Service port %s targets %q, not a port of the authgate container", p.Name, p.TargetPort.String())
		}
	}
	for _, o := range objs {
		switch v := o.Obj.(type) {
		case *policyv1.PodDisruptionBudget:
			if !subset(v.Spec.Selector.MatchLabels, pod.Labels) {
				t.Errorf("PodDisruptionBudget selector %v does not select pod labels %v", v.Spec.Selector.MatchLabels, pod.Labels)
			}
			if (v.Spec.MinAvailable == nil) == (v.Spec.MaxUnavailable == nil) {
				t.Errorf("PodDisruptionBudget: set exactly one of minAvailable (%v) and maxUnavailable (%v)", v.Spec.MinAvailable, v.Spec.MaxUnavailable)
			}
		case *autoscalingv2.HorizontalPodAutoscaler:
			if v.Spec.ScaleTargetRef.Kind != "Deployment" || v.Spec.ScaleTargetRef.Name != d.Name {
				t.Errorf("HorizontalPodAutoscaler targets %s %s, want Deployment %s", v.Spec.ScaleTargetRef.Kind, v.Spec.ScaleTargetRef.Name, d.Name)
			}
			if d.Spec.Replicas != nil {
				t.Errorf("Deployment sets replicas %d although the HorizontalPodAutoscaler owns them", *d.Spec.Replicas)
			}
		case *networkingv1.NetworkPolicy:
			if !subset(v.Spec.PodSelector.MatchLabels, pod.Labels) {
				t.Errorf("NetworkPolicy selector %v does not select pod labels %v", v.Spec.PodSelector.MatchLabels, pod.Labels)
			}
			for _, rule := range v.Spec.Ingress {
				for _, p := range rule.Ports {
					if p.Port == nil || !hasPortNamed(c, p.Port.String()) {
						t.Errorf("NetworkPolicy ingress port %v is not a named port of the authgate container", p.Port)
					}
				}
			}
		case *monitoringv1.ServiceMonitor:
			if !subset(v.Spec.Selector.MatchLabels, svc.Labels) {
				t.Errorf("ServiceMonitor selector %v does not select Service labels %v", v.Spec.Selector.MatchLabels, svc.Labels)
			}
			for _, ep := range v.Spec.Endpoints {
				if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
					t.Errorf("ServiceMonitor endpoint port %q is not a Service port", ep.Port)
				}
				if ep.Path != "/metrics" {
					t.Errorf("ServiceMonitor endpoint path = %q, want /metrics", ep.Path)
				}
			}
		}
	}
}

// checkContainer checks the authgate container itself, wherever it runs.
func checkContainer(t *testing.T, c *corev1.Container, config map[string]bool) {
	t.Helper()
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		if _, dup := env[e.Name]; dup {
			t.Errorf("env %s set twice", e.Name)
		}
		env[e.Name] = e
		if strings.HasPrefix(e.Name, "AUTHGATE_") && !config[e.Name] {
			t.Errorf("env %s is not a variable of cmd/authgate/config.go", e.Name)
		}
	}
	for _, name := range []string{"AUTHGATE_UPSTREAM", "AUTHGATE_OIDC_ISSUER_URL", "AUTHGATE_CLIENT_ID", "AUTHGATE_REDIRECT_URL", "AUTHGATE_COOKIE_SECRET"} {
		if _, ok := env[name]; !ok {
			t.Errorf("env %s missing (required by authgate)", name)
		}
	}
	if e := env["AUTHGATE_COOKIE_SECRET"]; e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		t.Errorf("AUTHGATE_COOKIE_SECRET does not come from a Secret: %+v", e)
	}
	listen := portOf(t, env["AUTHGATE_LISTEN_ADDR"].Value)
	internal := portOf(t, env["AUTHGATE_INTERNAL_ADDR"].Value)
	if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == listen }) {
		t.Errorf("AUTHGATE_LISTEN_ADDR port %d is not a container port (%v)", listen, c.Ports)
	}
	for name, probe := range map[string]*corev1.Probe{"startupProbe": c.StartupProbe, "livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe} {
		if probe == nil || probe.HTTPGet == nil {
			t.Errorf("%s: missing or not httpGet", name)
			continue
		}
		if got := containerPort(c, probe.HTTPGet.Port.String()); got != internal {
			t.Errorf("%s port %q = %d, want the internal port %d (AUTHGATE_INTERNAL_ADDR)", name, probe.HTTPGet.Port.String(), got, internal)
		}
		want := "/healthz"
		if name == "readinessProbe" {
			want = "/readyz"
		}
		if probe.HTTPGet.Path != want {
			t.Errorf("%s path = %q, want %q", name, probe.HTTPGet.Path, want)
		}
	}
	sc := c.SecurityContext
	if sc == nil {
		t.Fatal("authgate container has no securityContext")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("securityContext.readOnlyRootFilesystem = %v, want true", sc.ReadOnlyRootFilesystem)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("securityContext.allowPrivilegeEscalation = %v, want false", sc.AllowPrivilegeEscalation)
	}
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("securityContext.runAsNonRoot = %v, want true", sc.RunAsNonRoot)
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("securityContext.capabilities = %+v, want drop ALL", sc.Capabilities)
	}
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources = %v, want memory requests and limits", c.Resources)
	}
}

func portOf(t *testing.T, addr string) int32 {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Errorf("address %q: %v", addr, err)
		return 0
	}
	n, err := strconv.ParseInt(port, 10, 32)
	if err != nil {
		t.Errorf("address %q: port: %v", addr, err)
	}
	return int32(n)
}

func containerPort(c *corev1.Container, nameOrNumber string) int32 {
	for _, p := range c.Ports {
		if p.Name == nameOrNumber || strconv.Itoa(int(p.ContainerPort)) == nameOrNumber {
			return p.ContainerPort
		}
	}
	return 0
}

func hasPortNamed(c *corev1.Container, name string) bool {
	return slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == name })
}

func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func lookup(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[p]
	}
	return v
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestChartRejectsWrongValues: values.schema.json makes a wrong value fail at
// install (helm template runs the same validation).
func TestChartRejectsWrongValues(t *testing.T) {
	base := filepath.Join(chartDir, "ci", "standalone-minimal-values.yaml")
	// set holds --set-string (values as strings, as the environment has
	// them) unless the case is about a YAML type.
	tests := []struct {
		name, flag, set, want string
	}{
		{name: "misspelt variable", set: "config.AUTHGATE_UPSTREM=http://x", want: "AUTHGATE_UPSTREM"},
		{name: "variable the chart sets itself", set: "config.AUTHGATE_LISTEN_ADDR=:80", want: "AUTHGATE_LISTEN_ADDR"},
		{name: "secret as plain config", set: "config.AUTHGATE_COOKIE_SECRET=abc", want: "AUTHGATE_COOKIE_SECRET"},
		{name: "malformed duration", set: "config.AUTHGATE_SESSION_TTL=7days", want: "AUTHGATE_SESSION_TTL"},
		{name: "malformed boolean", set: "config.AUTHGATE_COOKIE_SECURE=yes", want: "AUTHGATE_COOKIE_SECURE"},
		{name: "malformed integer", set: "config.AUTHGATE_UPSTREAM_MAX_IDLE_CONNS=many", want: "AUTHGATE_UPSTREAM_MAX_IDLE_CONNS"},
		{name: "missing required variable", set: "config.AUTHGATE_UPSTREAM=", want: "AUTHGATE_UPSTREAM"},
		{name: "unknown mode", set: "mode=sidecars", want: "/mode"},
		{name: "port as string", set: "listenPort=http", want: "/listenPort"},
		{name: "misspelt top-level key", flag: "--set", set: "replicas=3", want: "replicas"},
		{name: "misspelt nested key", flag: "--set", set: "autoscaling.enable=true", want: "enable"},
		{name: "port name too long", set: "portNames.internal=authgate-internal", want: "/portNames/internal"},
		{name: "bad native switch", set: "sidecar.native=maybe", want: "/sidecar/native"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flag := tt.flag
			if flag == "" {
				flag = "--set-string"
			}
			_, err := runHelm(t, "template", "rel", chartDir, "-f", base, "--kube-version", kubeNative, flag, tt.set)
			if err == nil {
				t.Fatalf("helm template %s %s succeeded, want a schema error mentioning %q", flag, tt.set, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("helm template %s %s: error = %v, want it to mention %q", flag, tt.set, err, tt.want)
			}
		})
	}
}

// TestChartAcceptsTypedValues: YAML booleans and integers are as good as
// their strings.
func TestChartAcceptsTypedValues(t *testing.T) {
	base := filepath.Join(chartDir, "ci", "standalone-minimal-values.yaml")
	out := mustHelm(t, "template", "rel", chartDir, "-f", base, "--kube-version", kubeNative,
		"--set", "config.AUTHGATE_COOKIE_SECURE=false", "--set", "config.AUTHGATE_UPSTREAM_MAX_IDLE_CONNS=64",
		"--set", "config.AUTHGATE_SESSION_TTL=1h30m")
	c, _ := findContainer(&only[appsv1.Deployment](t, decodeObjects(t, "typed", out)).Spec.Template.Spec, "authgate")
	want := map[string]string{"AUTHGATE_COOKIE_SECURE": "false", "AUTHGATE_UPSTREAM_MAX_IDLE_CONNS": "64", "AUTHGATE_SESSION_TTL": "1h30m"}
	for _, e := range c.Env {
		if w, ok := want[e.Name]; ok {
			if e.Value != w {
				t.Errorf("env %s = %q, want %q", e.Name, e.Value, w)
			}
			delete(want, e.Name)
		}
	}
	for name := range want {
		t.Errorf("env %s missing", name)
	}
}

// chartManaged are the variables the chart's templates set from other values
// (listenPort, internalPort, tls); config.go's secrets and their _FILE
// variants are added by chartManagedVars. None of them may appear in config.
var chartManaged = []string{"AUTHGATE_LISTEN_ADDR", "AUTHGATE_INTERNAL_ADDR", "AUTHGATE_TLS_CERT_FILE", "AUTHGATE_TLS_KEY_FILE"}

func chartManagedVars(vars []configVar) map[string]bool {
	managed := map[string]bool{}
	for _, name := range chartManaged {
		managed[name] = true
	}
	for _, v := range vars {
		if v.Secret {
			managed[v.Name] = true
			managed[v.Name+"_FILE"] = true
		}
	}
	return managed
}

const durationPattern = `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$|^0$`

// configSchema is the schema of values.config generated from config.go: one
// property per variable the chart does not set itself, typed by its Go type;
// "(required)" in the description makes it required.
func configSchema(t *testing.T, vars []configVar) map[string]any {
	t.Helper()
	managed := chartManagedVars(vars)
	props := map[string]any{}
	var required []any
	for _, v := range vars {
		if managed[v.Name] {
			continue
		}
		desc := v.Desc
		if v.Default != "" {
			desc += " (default " + v.Default + ")"
		}
		p := map[string]any{"description": desc}
		switch v.GoType {
		case "string", "[]string":
			p["type"] = "string"
		case "bool":
			p["type"] = []any{"boolean", "string"}
			p["enum"] = []any{true, false, "true", "false"}
		case "int", "int64", "uint", "uint64":
			p["type"] = []any{"integer", "string"}
			p["pattern"] = "^-?[0-9]+$"
		case "time.Duration":
			p["type"] = "string"
			p["pattern"] = durationPattern
		default:
			t.Errorf("config.go: %s has type %s, which configSchema does not map to a JSON schema type", v.Name, v.GoType)
			continue
		}
		if strings.Contains(v.Desc, "(required)") {
			required = append(required, v.Name)
			if p["type"] == "string" {
				p["minLength"] = 1
			}
		}
		props[v.Name] = p
	}
	s := map[string]any{
		"type":                 "object",
		"description":          "authgate's settings by environment variable name (generated from cmd/authgate/config.go: go test ./deploy -run TestChartSchemaMatchesConfig -update)",
		"additionalProperties": false,
		"properties":           props,
	}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

// TestChartSchemaMatchesConfig: values.config accepts exactly config.go's
// variables (less those the chart sets itself), with their types.
func TestChartSchemaMatchesConfig(t *testing.T) {
	vars := readConfigVars(t)
	path := filepath.Join(chartDir, "values.schema.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	props, _ := schema["properties"].(map[string]any)
	if props == nil {
		t.Fatalf("%s: no properties", path)
	}
	want := normalizeJSON(t, configSchema(t, vars))
	got := props["config"]
	if *update {
		props["config"] = want
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(schema); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s", path)
		return
	}
	if !reflect.DeepEqual(got, want) {
		gotProps, _ := lookup(map[string]any{"c": got}, "c", "properties").(map[string]any)
		wantProps := want.(map[string]any)["properties"].(map[string]any)
		for _, name := range sortedKeys(wantProps) {
			if !reflect.DeepEqual(gotProps[name], wantProps[name]) {
				t.Errorf("values.schema.json config.%s = %v, want %v", name, gotProps[name], wantProps[name])
			}
		}
		for _, name := range sortedKeys(gotProps) {
			if _, ok := wantProps[name]; !ok {
				t.Errorf("values.schema.json config.%s: not a variable of cmd/authgate/config.go (or set by the chart itself)", name)
			}
		}
		t.Errorf("values.schema.json's config section is out of date: go test ./deploy -run TestChartSchemaMatchesConfig -update")
	}

	// The variables the chart sets itself must really be set by its templates.
	helpers, err := os.ReadFile(filepath.Join(chartDir, "templates", "_helpers.tpl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range sortedKeys(chartManagedVars(vars)) {
		if strings.HasSuffix(name, "_FILE") && !strings.HasPrefix(name, "AUTHGATE_TLS_") {
			continue // the Secret's value is set instead
		}
		if !strings.Contains(string(helpers), "name: "+name+"\n") {
			t.Errorf("templates/_helpers.tpl does not set %s, which the chart keeps out of config", name)
		}
	}
}

func normalizeJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestChartVersions(t *testing.T) {
	var chart struct {
		Version    string `json:"version"`
		AppVersion string `json:"appVersion"`
	}
	readYAML(t, filepath.Join(chartDir, "Chart.yaml"), &chart)
	var values map[string]any
	readYAML(t, filepath.Join(chartDir, "values.yaml"), &values)
	if got := lookup(values, "image", "tag"); got != chart.AppVersion {
		t.Errorf("values.yaml image.tag = %v, want the appVersion %q", got, chart.AppVersion)
	}
	var example struct {
		Dependencies []struct {
			Name, Version string
		} `json:"dependencies"`
	}
	readYAML(t, filepath.Join(chartDir, "examples", "my-app", "Chart.yaml"), &example)
	if len(example.Dependencies) != 1 || example.Dependencies[0].Name != "authgate" || example.Dependencies[0].Version != chart.Version {
		t.Errorf("examples/my-app dependencies = %+v, want authgate %s", example.Dependencies, chart.Version)
	}
}

// TestSidecarExample renders the example user chart that includes the
// sidecar templates, for a cluster with native sidecars and one without, and
// checks it against the plain manifests of deploy/kubernetes, which must be
// the same objects.
func TestSidecarExample(t *testing.T) {
	chart := exampleChart(t, "my-app")
	mustHelm(t, "lint", "--strict", chart, "--kube-version", kubeNative)
	config := configNames(t)
	tests := []struct {
		name       string
		args       []string
		wantInit   bool
		plainFiles []string
	}{
		{name: "native", args: []string{"--kube-version", kubeNative}, wantInit: true, plainFiles: []string{"deployment.yaml", "service.yaml"}},
		{name: "before 1.29", args: []string{"--kube-version", kubePreNativ}, wantInit: false, plainFiles: []string{"deployment-pre-1.29.yaml", "service.yaml"}},
		{name: "forced fallback", args: []string{"--kube-version", kubeNative, "--set", "authgate.sidecar.native=false"}, wantInit: false, plainFiles: []string{"deployment-pre-1.29.yaml", "service.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := mustHelm(t, append([]string{"template", "my-app", chart}, tt.args...)...)
			objs := decodeObjects(t, "examples/my-app", out)
			if got, want := kindCounts(objs), "Deployment=1,PodDisruptionBudget=1,Service=1"; got != want {
				t.Errorf("rendered kinds = %s, want %s", got, want)
			}
			d := only[appsv1.Deployment](t, objs)
			c, init := findContainer(&d.Spec.Template.Spec, "authgate")
			if c == nil {
				t.Fatal("no authgate container in the pod")
			}
			if init != tt.wantInit {
				t.Errorf("authgate is an init container: %v, want %v", init, tt.wantInit)
			}
			if native := c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways; native != tt.wantInit {
				t.Errorf("authgate restartPolicy = %v, want Always only as a native sidecar", c.RestartPolicy)
			}
			if init && d.Spec.Template.Spec.InitContainers[0].Name != "authgate" {
				t.Errorf("authgate is not the first init container: %v", d.Spec.Template.Spec.InitContainers)
			}
			checkContainer(t, c, config)
			if got := portOf(t, envValue(c, "AUTHGATE_LISTEN_ADDR")); got != 8080 {
				t.Errorf("AUTHGATE_LISTEN_ADDR port = %d, want the pod's public port 8080", got)
			}
			if got := envValue(c, "AUTHGATE_UPSTREAM"); !strings.HasPrefix(got, "http://127.0.0.1:") {
				t.Errorf("AUTHGATE_UPSTREAM = %q, want the app on loopback", got)
			}

			var plain []object
			for _, f := range tt.plainFiles {
				plain = append(plain, decodeFile(t, filepath.Join(repoRoot, "deploy", "kubernetes", f))...)
			}
			compareObjects(t, objs, plain)
		})
	}
}

func envValue(c *corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// compareObjects fails unless rendered and plain hold the same objects.
func compareObjects(t *testing.T, rendered, plain []object) {
	t.Helper()
	index := map[string]any{}
	for _, o := range plain {
		index[o.Kind+" "+o.Name] = o.Obj
	}
	for _, o := range rendered {
		key := o.Kind + " " + o.Name
		p, ok := index[key]
		if !ok {
			t.Errorf("%s: rendered by the chart but not in deploy/kubernetes", key)
			continue
		}
		delete(index, key)
		if !reflect.DeepEqual(o.Obj, p) {
			a, _ := json.MarshalIndent(o.Obj, "", " ")
			b, _ := json.MarshalIndent(p, "", " ")
			t.Errorf("%s: deploy/kubernetes differs from the chart's rendering:\n%s", key, lineDiff(string(a), string(b)))
		}
	}
	for _, key := range sortedKeys(index) {
		t.Errorf("%s: in deploy/kubernetes but not rendered by the chart", key)
	}
}

// lineDiff shows the lines of want (chart) and got (plain) that differ, in
// order; enough to find a drift between two JSON renderings.
func lineDiff(chart, plain string) string {
	a, b := strings.Split(chart, "\n"), strings.Split(plain, "\n")
	var out []string
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			out = append(out, "chart: "+x, "plain: "+y)
			if len(out) > 20 {
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// TestChartREADMEDocumentsValues: every value of values.yaml, and every key
// of the values whose schema is closed, appears in the chart's README.
func TestChartREADMEDocumentsValues(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(readme)
	var values map[string]any
	readYAML(t, filepath.Join(chartDir, "values.yaml"), &values)
	var schema struct {
		Properties map[string]struct {
			AdditionalProperties *bool                      `json:"additionalProperties"`
			Properties           map[string]json.RawMessage `json:"properties"`
		} `json:"properties"`
	}
	raw, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	for _, key := range sortedKeys(values) {
		if !strings.Contains(doc, "`"+key) {
			t.Errorf("charts/authgate/README.md does not document value %s", key)
		}
		p := schema.Properties[key]
		// config is documented in the repository README; the probes and
		// resources are Kubernetes' own types.
		if key == "config" || key == "resources" || strings.HasSuffix(key, "Probe") || p.AdditionalProperties == nil || *p.AdditionalProperties {
			continue
		}
		for _, sub := range sortedKeys(p.Properties) {
			if !strings.Contains(doc, "`"+key+"."+sub) && !strings.Contains(doc, "`."+sub) {
				t.Errorf("charts/authgate/README.md does not document value %s.%s", key, sub)
			}
		}
	}
	for _, key := range sortedKeys(schema.Properties) {
		if _, ok := values[key]; !ok && key != "global" {
			t.Errorf("values.schema.json has %s, which values.yaml lacks", key)
		}
	}
}
