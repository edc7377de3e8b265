package upstream

import (
	"net/http"
	"testing"
)

// TestForwardedFromTrustedProxies: with a Forwarded hook, the upstream gets
// what the trusted proxies reported; without one, or when the hook says the
// peer is untrusted, it gets this hop's view, never the client's headers.
func TestForwardedFromTrustedProxies(t *testing.T) {
	spoof := func(h http.Header) {
		h.Set("X-Forwarded-For", "198.51.100.9")
		h.Set("X-Forwarded-Host", "evil.example")
		h.Set("X-Forwarded-Proto", "https")
	}
	tests := []struct {
		name      string
		forwarded func(*http.Request) (string, string, string, bool)
		wantFor   string
		wantHost  string // "" means the front server's own host
		wantProto string
	}{
		{name: "no hook", wantFor: "127.0.0.1", wantProto: "http"},
		{
			name:      "trusted peer",
			forwarded: func(*http.Request) (string, string, string, bool) { return "203.0.113.7", "app.example", "https", true },
			wantFor:   "203.0.113.7", wantHost: "app.example", wantProto: "https",
		},
		{
			name: "untrusted peer",
			forwarded: func(*http.Request) (string, string, string, bool) {
				return "203.0.113.7", "app.example", "https", false
			},
			wantFor: "127.0.0.1", wantProto: "http",
		},
		{
			name:      "incomplete answer",
			forwarded: func(*http.Request) (string, string, string, bool) { return "", "app.example", "https", true },
			wantFor:   "127.0.0.1", wantProto: "http",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, got := recordingUpstream(t)
			p := newProxy(t, Options{Target: up.URL, Forwarded: tt.forwarded})
			s := front(t, p, nil)
			get(t, s, "/", spoof)
			r := receive(t, got)
			wantHost := tt.wantHost
			if wantHost == "" {
				wantHost = s.Listener.Addr().String()
			}
			for k, want := range map[string]string{"X-Forwarded-For": tt.wantFor, "X-Forwarded-Host": wantHost, "X-Forwarded-Proto": tt.wantProto} {
				if got := r.header.Values(k); len(got) != 1 || got[0] != want {
					t.Errorf("upstream Header(%q) = %q, want %q", k, got, want)
				}
			}
		})
	}
}
