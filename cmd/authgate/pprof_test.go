package main

import (
	"net/http"
	"runtime"
	"strings"
	"testing"
)

// TestPprof: AUTHGATE_PPROF=true serves the profiler on the internal
// listener only; it is off by default.
func TestPprof(t *testing.T) {
	get := func(t *testing.T, url string) (int, string) {
		t.Helper()
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		return resp.StatusCode, readBody(t, resp)
	}
	for _, tc := range []struct {
		name string
		opts []gateOption
		want bool
	}{
		{"default off", nil, false},
		{"on", []gateOption{withEnv("AUTHGATE_PPROF", "true")}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := startGate(t, tc.opts...)
			code, body := get(t, "http://"+g.InternalAddr()+"/debug/pprof/")
			if got := code == http.StatusOK && strings.Contains(body, "goroutine"); got != tc.want {
				t.Errorf("internal /debug/pprof/ = %d (profile index %v), want index %v", code, got, tc.want)
			}
			if tc.want {
				code, body = get(t, "http://"+g.InternalAddr()+"/debug/pprof/cmdline")
				if code != http.StatusOK || body == "" {
					t.Errorf("internal /debug/pprof/cmdline = %d %q", code, body)
				}
			}
			// On the proxy listener the path is an ordinary protected
			// path: a login redirect, never the profiler.
			before := g.upstream.count()
			code, body = get(t, g.URL+"/debug/pprof/")
			if strings.Contains(body, "goroutine") || code == http.StatusOK {
				t.Errorf("proxy /debug/pprof/ = %d %.100q, want no profiler", code, body)
			}
			if g.upstream.count() != before {
				t.Errorf("an unauthenticated /debug/pprof/ reached the upstream")
			}
		})
	}
}

// TestSetMemProfiling: the memory profiler runs only where a heap profile
// can be read (AUTHGATE_PPROF=true).
func TestSetMemProfiling(t *testing.T) {
	saved := runtime.MemProfileRate
	t.Cleanup(func() { runtime.MemProfileRate = saved })
	for _, tt := range []struct {
		pprof string
		want  int
	}{
		{"", 0},
		{"false", 0},
		{"nonsense", 0},
		{"true", 512 * 1024},
		{"1", 512 * 1024},
	} {
		runtime.MemProfileRate = 512 * 1024
		setMemProfiling(func(k string) string {
			if k == "AUTHGATE_PPROF" {
				return tt.pprof
			}
			return ""
		})
		if runtime.MemProfileRate != tt.want {
			t.Errorf("AUTHGATE_PPROF=%q: MemProfileRate = %d, want %d", tt.pprof, runtime.MemProfileRate, tt.want)
		}
	}
}
