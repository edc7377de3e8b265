package proxy

import (
	"net/http"
	"testing"
)

// TestRoutingHeadersRemovedOnPublicPath: a request that passed as a public
// path cannot make the upstream serve another path or method.
func TestRoutingHeadersRemovedOnPublicPath(t *testing.T) {
	env := newTestEnvWith(t, &fakeProvider{}, func(o *Options) {
		o.PublicPaths = mustPublic(t, "GET /static/")
	})
	header := map[string]string{
		"X-Original-URL":         "/admin",
		"X_Rewrite_URL":          "/admin",
		"X-HTTP-Method-Override": "DELETE",
		"x-http-method":          "DELETE",
		"X-METHOD-OVERRIDE":      "DELETE",
	}
	resp, _ := env.raw(t, "GET", "/static/app.js", header)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /static/app.js: status %d, want 200 from the upstream", resp.StatusCode)
	}
	r := env.up.last()
	if r == nil {
		t.Fatal("upstream received nothing")
	}
	for k, v := range r.Header {
		for name := range header {
			if http.CanonicalHeaderKey(k) == http.CanonicalHeaderKey(name) {
				t.Errorf("upstream Header(%q) = %q, want it removed", k, v)
			}
		}
	}
	if r.Method != "GET" || r.URL.Path != "/static/app.js" {
		t.Errorf("upstream got %s %s, want GET /static/app.js", r.Method, r.URL.Path)
	}
}
