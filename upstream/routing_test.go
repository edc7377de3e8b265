package upstream

import (
	"net/http"
	"strings"
	"testing"
)

// routingSpellings are client spellings of every routing header: the
// documented one, lower and upper case, and underscores, which CGI-style
// servers fold together with dashes.
var routingSpellings = []string{
	"X-Original-URL", "x-original-url", "X_ORIGINAL_URL", "X-Original_Url",
	"X-Rewrite-URL", "x_rewrite_url", "X-REWRITE-URL",
	"X-HTTP-Method-Override", "x-http-method-override", "X_HTTP_Method_Override",
	"X-HTTP-Method", "x_http_method", "X-Http-Method",
	"X-Method-Override", "X_METHOD_OVERRIDE", "x-method_override",
}

func hasRoutingHeader(h http.Header) []string {
	var found []string
	for k := range h {
		if routingBit(k) != 0 {
			found = append(found, k)
		}
	}
	return found
}

// TestRoutingHeadersNeverReachUpstream: every spelling of every routing
// header is removed, with an identity (a session) and without (a public
// path), also when the client names it in Connection.
func TestRoutingHeadersNeverReachUpstream(t *testing.T) {
	for _, id := range []*Identity{testIdentity, nil} {
		up, got := recordingUpstream(t)
		fr := front(t, newProxy(t, Options{Target: up.URL}), id)
		for _, name := range routingSpellings {
			for _, conn := range []string{"", "keep-alive, " + name} {
				t.Run(name+"/identity="+boolString(id != nil)+"/connection="+conn, func(t *testing.T) {
					get(t, fr, "/static/x", func(h http.Header) {
						h[name] = []string{"/admin"}
						if conn != "" {
							h.Set("Connection", conn)
						}
					})
					r := receive(t, got)
					if found := hasRoutingHeader(r.header); len(found) > 0 {
						t.Errorf("upstream received %q (client sent %s)", found, name)
					}
					if r.uri != "/static/x" {
						t.Errorf("upstream URI = %q, want /static/x", r.uri)
					}
				})
			}
		}
	}
}

// TestPassRoutingHeaders: a header the operator opts back in reaches the
// upstream; the others are still removed.
func TestPassRoutingHeaders(t *testing.T) {
	up, got := recordingUpstream(t)
	fr := front(t, newProxy(t, Options{Target: up.URL, PassRoutingHeaders: []string{"x_http_method_override"}}), testIdentity)
	get(t, fr, "/", func(h http.Header) {
		h.Set("X-HTTP-Method-Override", "PATCH")
		h.Set("X-Original-URL", "/admin")
		h.Set("X-Method-Override", "DELETE")
	})
	r := receive(t, got)
	if v := r.header.Get("X-HTTP-Method-Override"); v != "PATCH" {
		t.Errorf("Header(%q) = %q, want %q", "X-HTTP-Method-Override", v, "PATCH")
	}
	for _, k := range []string{"X-Original-URL", "X-Method-Override"} {
		if v := r.header.Get(k); v != "" {
			t.Errorf("Header(%q) = %q, want it removed", k, v)
		}
	}
	// Named in Connection it is a hop-by-hop header and goes, opted in or not.
	get(t, fr, "/", func(h http.Header) {
		h.Set("X-HTTP-Method-Override", "PATCH")
		h.Set("Connection", "X-HTTP-Method-Override")
	})
	if v := receive(t, got).header.Get("X-HTTP-Method-Override"); v != "" {
		t.Errorf("Connection-nominated Header(%q) = %q, want it removed", "X-HTTP-Method-Override", v)
	}
}

func TestCheckRoutingHeaders(t *testing.T) {
	if err := CheckRoutingHeaders(RoutingHeaders()); err != nil {
		t.Errorf("CheckRoutingHeaders(RoutingHeaders()) = %v, want nil", err)
	}
	err := CheckRoutingHeaders([]string{"X-Original-URL", "X-Forwarded-User", "X-Original-URI"})
	if err == nil || !strings.Contains(err.Error(), `"X-Forwarded-User"`) || !strings.Contains(err.Error(), `"X-Original-URI"`) {
		t.Errorf("CheckRoutingHeaders(unknown names) = %v, want an error naming both", err)
	}
	if _, err := New(Options{Target: "http://127.0.0.1:1", PassRoutingHeaders: []string{"Host"}}); err == nil {
		t.Error("New with PassRoutingHeaders [Host] error = nil, want one")
	}
}
