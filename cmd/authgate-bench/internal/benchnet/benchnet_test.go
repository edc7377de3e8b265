package benchnet

import (
	"errors"
	"testing"
)

func TestRequireLoopback(t *testing.T) {
	tests := []struct {
		name string
		url  string
		ok   bool
	}{
		{"ipv4 loopback", "http://127.0.0.1:4180/", true},
		{"other 127/8 address", "http://127.1.2.3:80/x", true},
		{"ipv6 loopback", "http://[::1]:4180/", true},
		{"name refused", "http://localhost:4180/", false},
		{"public address", "http://192.0.2.10:4180/", false},
		{"unspecified", "http://0.0.0.0:4180/", false},
		{"https refused", "https://127.0.0.1/", false},
		{"not a URL", "http://[::1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := RequireLoopbackURL(tt.url)
			if (err == nil) != tt.ok {
				t.Errorf("RequireLoopbackURL(%q) = %v, want ok=%v", tt.url, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrNotLoopback) {
				t.Errorf("RequireLoopbackURL(%q) = %v, want ErrNotLoopback", tt.url, err)
			}
		})
	}
	for addr, ok := range map[string]bool{"127.0.0.1:0": true, "[::1]:1": true, ":4180": false, "10.0.0.1:1": false, "127.0.0.1": false} {
		if err := RequireLoopbackAddr(addr); (err == nil) != ok {
			t.Errorf("RequireLoopbackAddr(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
}
