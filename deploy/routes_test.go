package deploy_test

import (
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/authgate/authgate/proxy/access"
)

// TestChartRoutes: routes.rules become a ConfigMap whose routes file
// authgate compiles, mounted where AUTHGATE_ROUTES_FILE points, with a
// checksum that rolls the pods when the rules change.
func TestChartRoutes(t *testing.T) {
	values := filepath.Join(chartDir, "ci", "standalone-full-values.yaml")
	render := func(extra ...string) []object {
		args := append([]string{"template", "rel", chartDir, "-f", values, "--kube-version", kubeNative, "--namespace", "ns"}, extra...)
		return decodeObjects(t, "routes", mustHelm(t, args...))
	}
	objs := render()
	// The full scenario renders the Grafana dashboard's ConfigMap too.
	var cm *corev1.ConfigMap
	for _, o := range objs {
		if c, ok := o.Obj.(*corev1.ConfigMap); ok && c.Name == "rel-authgate-routes" {
			cm = c
		}
	}
	if cm == nil {
		t.Fatal("no ConfigMap rel-authgate-routes")
	}
	specs, err := access.ParseRouteSpecs([]byte(cm.Data["routes.yaml"]))
	if err != nil {
		t.Fatalf("ConfigMap routes.yaml: %v\n%s", err, cm.Data["routes.yaml"])
	}
	routes, err := access.CompileRoutes(specs)
	if err != nil {
		t.Fatalf("ConfigMap routes.yaml does not compile: %v", err)
	}
	if got, want := strings.Join(routes.Labels(), ","), "0,admin,2,3"; got != want {
		t.Errorf("routes = %s, want %s", got, want)
	}

	d := only[appsv1.Deployment](t, objs)
	c, _ := findContainer(&d.Spec.Template.Spec, "authgate")
	var file string
	for _, e := range c.Env {
		if e.Name == "AUTHGATE_ROUTES_FILE" {
			file = e.Value
		}
	}
	if file != "/etc/authgate/routes/routes.yaml" {
		t.Errorf("AUTHGATE_ROUTES_FILE = %q, want /etc/authgate/routes/routes.yaml", file)
	}
	var mountVolume string
	for _, m := range c.VolumeMounts {
		if m.MountPath == "/etc/authgate/routes" {
			mountVolume = m.Name
		}
	}
	found := false
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == mountVolume && v.ConfigMap != nil && v.ConfigMap.Name == cm.Name {
			found = true
		}
	}
	if mountVolume == "" || !found {
		t.Errorf("no volume of ConfigMap %s mounted at /etc/authgate/routes (mount %q)", cm.Name, mountVolume)
	}
	sum := d.Spec.Template.Annotations["checksum/routes"]
	if sum == "" {
		t.Fatalf("pod annotations %v lack checksum/routes", d.Spec.Template.Annotations)
	}
	changed := only[appsv1.Deployment](t, render("--set-string", "routes.rules[0].match=GET /health"))
	if changed.Spec.Template.Annotations["checksum/routes"] == sum {
		t.Errorf("checksum/routes unchanged after a change of the rules")
	}

	// An existing ConfigMap is mounted instead, and none is rendered.
	objs = render("--set-string", "routes.existingConfigMap=my-routes", "--set-string", "routes.key=r.yaml")
	for _, o := range objs {
		if c, ok := o.Obj.(*corev1.ConfigMap); ok && strings.HasSuffix(c.Name, "-routes") {
			t.Errorf("ConfigMap %s rendered with routes.existingConfigMap", o.Name)
		}
	}
	d = only[appsv1.Deployment](t, objs)
	c, _ = findContainer(&d.Spec.Template.Spec, "authgate")
	for _, e := range c.Env {
		if e.Name == "AUTHGATE_ROUTES_FILE" && e.Value != "/etc/authgate/routes/r.yaml" {
			t.Errorf("AUTHGATE_ROUTES_FILE = %q, want /etc/authgate/routes/r.yaml", e.Value)
		}
	}

	for _, set := range []string{"config.AUTHGATE_ROUTES_FILE=/x.yaml", "config.AUTHGATE_ROUTES=[]"} {
		if _, err := runHelm(t, "template", "rel", chartDir, "-f", values, "--kube-version", kubeNative, "--set-string", set); err == nil ||
			!strings.Contains(err.Error(), "not both") {
			t.Errorf("helm template with routes.rules and %s: error = %v, want one saying not both", set, err)
		}
	}
	if _, err := runHelm(t, "template", "rel", chartDir, "-f", values, "--kube-version", kubeNative, "--set", "routes.rules[0].alow=true"); err == nil {
		t.Errorf("helm template accepted a misspelt route key")
	}
}
