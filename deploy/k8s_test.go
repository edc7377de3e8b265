package deploy_test

import (
	"fmt"
	"os"
	"regexp"
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

// kinds maps apiVersion/kind to a new value of its Go type: the kinds the
// chart and the plain manifests may contain. Anything else fails decoding.
var kinds = map[string]func() any{
	"v1/Secret":                               func() any { return new(corev1.Secret) },
	"v1/Service":                              func() any { return new(corev1.Service) },
	"v1/ServiceAccount":                       func() any { return new(corev1.ServiceAccount) },
	"v1/ConfigMap":                            func() any { return new(corev1.ConfigMap) },
	"apps/v1/Deployment":                      func() any { return new(appsv1.Deployment) },
	"policy/v1/PodDisruptionBudget":           func() any { return new(policyv1.PodDisruptionBudget) },
	"autoscaling/v2/HorizontalPodAutoscaler":  func() any { return new(autoscalingv2.HorizontalPodAutoscaler) },
	"networking.k8s.io/v1/NetworkPolicy":      func() any { return new(networkingv1.NetworkPolicy) },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return new(monitoringv1.ServiceMonitor) },
}

// object is one decoded Kubernetes object.
type object struct {
	Kind string // apiVersion/kind
	Name string
	Obj  any // pointer to the k8s.io/api (or monitoring/v1) type
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decodeObjects splits a multi-document YAML stream and decodes each
// document strictly into its Go type: an unknown or misspelt field, a
// duplicate key or a value of the wrong type is an error.
func decodeObjects(t *testing.T, source, text string) []object {
	t.Helper()
	var objs []object
	for i, doc := range docSeparator.Split(text, -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("%s: document %d: %v", source, i, err)
		}
		key := meta.APIVersion + "/" + meta.Kind
		newObj, ok := kinds[key]
		if !ok {
			t.Fatalf("%s: document %d: kind %q is not one the tests know (add it to kinds)", source, i, key)
		}
		obj := newObj()
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s: %s %q: %v", source, key, meta.Metadata.Name, err)
		}
		if meta.Metadata.Name == "" {
			t.Errorf("%s: %s without metadata.name", source, key)
		}
		objs = append(objs, object{Kind: key, Name: meta.Metadata.Name, Obj: obj})
	}
	return objs
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

func decodeFile(t *testing.T, path string) []object {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return decodeObjects(t, path, string(b))
}

// only returns the single object of Go type T, failing unless there is
// exactly one.
func only[T any](t *testing.T, objs []object) *T {
	t.Helper()
	var found []*T
	for _, o := range objs {
		if v, ok := o.Obj.(*T); ok {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		var zero T
		t.Fatalf("found %d objects of type %T, want 1", len(found), zero)
	}
	return found[0]
}

// kindCounts lists the kinds of objs as "Kind=count" in a stable order.
func kindCounts(objs []object) string {
	counts := map[string]int{}
	for _, o := range objs {
		counts[o.Kind[strings.LastIndex(o.Kind, "/")+1:]]++
	}
	var parts []string
	for _, k := range sortedKeys(counts) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, counts[k]))
	}
	return strings.Join(parts, ",")
}

// podSpecOf returns the pod spec of a workload object, or nil.
func podSpecOf(o object) *corev1.PodSpec {
	if d, ok := o.Obj.(*appsv1.Deployment); ok {
		return &d.Spec.Template.Spec
	}
	return nil
}

// findContainer returns the container named name among the pod's containers
// and init containers, and whether it is an init container.
func findContainer(spec *corev1.PodSpec, name string) (c *corev1.Container, init bool) {
	for i := range spec.InitContainers {
		if spec.InitContainers[i].Name == name {
			return &spec.InitContainers[i], true
		}
	}
	for i := range spec.Containers {
		if spec.Containers[i].Name == name {
			return &spec.Containers[i], false
		}
	}
	return nil, false
}

func TestDecodeObjectsRejectsMisspeltField(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{
			name: "unknown field",
			doc:  "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  selectr: {a: b}\n",
			want: `unknown field "selectr"`,
		},
		{
			name: "wrong type",
			doc:  "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replicas: two\n",
			want: "replicas",
		},
		{
			name: "misspelt ServiceMonitor field",
			doc:  "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: x\nspec:\n  selector: {}\n  endpoints:\n    - prot: internal\n",
			want: `unknown field "prot"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var meta struct {
				Kind string `json:"kind"`
			}
			if err := yaml.Unmarshal([]byte(tt.doc), &meta); err != nil {
				t.Fatal(err)
			}
			var obj any
			for key, newObj := range kinds {
				if strings.HasSuffix(key, "/"+meta.Kind) {
					obj = newObj()
				}
			}
			err := yaml.UnmarshalStrict([]byte(tt.doc), obj)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("UnmarshalStrict(%q) error = %v, want it to contain %q", tt.doc, err, tt.want)
			}
		})
	}
}
