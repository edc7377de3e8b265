package access

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseTrustedProxiesErrors(t *testing.T) {
	for _, c := range []string{
		"", "0.0.0.0/0", "::/0", "::ffff:0.0.0.0/96", "10.0.0.1/8", "10.0.0.0/33", "fe80::1%eth0",
		"localhost", "10.0.0", "10.0.0.0/", "1.2.3.4:80",
	} {
		t.Run(c, func(t *testing.T) {
			if _, err := ParseTrustedProxies([]string{c}); err == nil {
				t.Errorf("ParseTrustedProxies([%q]) error = nil, want an error", c)
			}
		})
	}
}

func TestTrusted(t *testing.T) {
	tp, err := ParseTrustedProxies([]string{"10.0.0.0/8", "192.0.2.7", "fd00::/8", "::1", "::ffff:198.51.100.0/120"})
	if err != nil {
		t.Fatalf("ParseTrustedProxies() error = %v", err)
	}
	cases := []struct {
		remoteAddr string
		want       bool
	}{
		{"10.1.2.3:5555", true},
		{"11.1.2.3:5555", false},
		{"192.0.2.7:1", true},
		{"192.0.2.8:1", false},
		{"[::ffff:10.1.2.3]:5555", true},
		{"[fd12::1]:443", true},
		{"[fe80::1]:443", false},
		{"[::1]:8080", true},
		{"127.0.0.1:8080", false},
		{"198.51.100.9:1", true},
		{"198.51.101.9:1", false},
		{"10.1.2.3", false},
		{"", false},
		{"@", false},
		{"[fd12::1%eth0]:443", false},
	}
	for _, tc := range cases {
		t.Run(tc.remoteAddr, func(t *testing.T) {
			if got := tp.Trusted(tc.remoteAddr); got != tc.want {
				t.Errorf("Trusted(%q) = %v, want %v", tc.remoteAddr, got, tc.want)
			}
		})
	}
	for name, z := range map[string]*TrustedProxies{"nil": nil, "zero": {}} {
		t.Run(name, func(t *testing.T) {
			if z.Trusted("10.1.2.3:5555") {
				t.Errorf("Trusted(%q) = true, want false", "10.1.2.3:5555")
			}
		})
	}
}

func TestForwarded(t *testing.T) {
	tp, err := ParseTrustedProxies([]string{"10.0.0.0/8", "192.0.2.7"})
	if err != nil {
		t.Fatalf("ParseTrustedProxies() error = %v", err)
	}
	spoof := http.Header{
		"X-Forwarded-Method": {"GET"},
		"X-Forwarded-Host":   {"app.example.com"},
		"X-Forwarded-Uri":    {"/public/x"},
		"X-Forwarded-Proto":  {"https"},
		"X-Forwarded-For":    {"203.0.113.9"},
	}
	own := Forwarded{Method: "POST", Host: "auth.example.com", URI: "/oauth2/auth?x=1", Proto: "http", For: "198.51.100.2"}
	cases := []struct {
		name        string
		remoteAddr  string
		header      http.Header
		want        Forwarded
		wantTrusted bool
	}{
		{"untrusted peer: every header ignored (GHSA-7x63-xv5r-3p2x)", "198.51.100.2:4000", spoof, own, false},
		{"untrusted loopback peer", "127.0.0.1:4000", spoof, Forwarded{Method: "POST", Host: "auth.example.com", URI: "/oauth2/auth?x=1", Proto: "http", For: "127.0.0.1"}, false},
		{"trusted peer: headers used", "10.0.0.5:4000", spoof,
			Forwarded{Method: "GET", Host: "app.example.com", URI: "/public/x", Proto: "https", For: "203.0.113.9"}, true},
		{"trusted peer without headers: own values", "10.0.0.5:4000", http.Header{},
			Forwarded{Method: "POST", Host: "auth.example.com", URI: "/oauth2/auth?x=1", Proto: "http", For: "10.0.0.5"}, true},
		{"nginx X-Original-URI and X-Original-Method", "10.0.0.5:4000",
			http.Header{"X-Original-Uri": {"/app/page?q=1"}, "X-Original-Method": {"DELETE"}},
			Forwarded{Method: "DELETE", Host: "auth.example.com", URI: "/app/page?q=1", Proto: "http", For: "10.0.0.5"}, true},
		{"X-Forwarded-Uri and X-Original-URI agree", "10.0.0.5:4000",
			http.Header{"X-Forwarded-Uri": {"/a"}, "X-Original-Uri": {"/a"}},
			Forwarded{Method: "POST", Host: "auth.example.com", URI: "/a", Proto: "http", For: "10.0.0.5"}, true},
		{"X-Forwarded-Uri and X-Original-URI disagree", "10.0.0.5:4000",
			http.Header{"X-Forwarded-Uri": {"/public/x"}, "X-Original-Uri": {"/admin"}},
			Forwarded{Method: "POST", Host: "auth.example.com", URI: "/oauth2/auth?x=1", Proto: "http", For: "10.0.0.5"}, true},
		{"repeated X-Forwarded-Uri lines", "10.0.0.5:4000",
			http.Header{"X-Forwarded-Uri": {"/public/x", "/admin"}},
			Forwarded{Method: "POST", Host: "auth.example.com", URI: "/oauth2/auth?x=1", Proto: "http", For: "10.0.0.5"}, true},
		{"URI with comma kept", "10.0.0.5:4000",
			http.Header{"X-Forwarded-Uri": {"/a,b?x=1,2"}},
			Forwarded{Method: "POST", Host: "auth.example.com", URI: "/a,b?x=1,2", Proto: "http", For: "10.0.0.5"}, true},
		{"invalid values fall back", "10.0.0.5:4000",
			http.Header{
				"X-Forwarded-Method": {"get"},
				"X-Forwarded-Host":   {"evil.com@app.example.com"},
				"X-Forwarded-Uri":    {"https://evil.com/"},
				"X-Forwarded-Proto":  {"javascript"},
			},
			Forwarded{Method: "POST", Host: "auth.example.com", URI: "/oauth2/auth?x=1", Proto: "http", For: "10.0.0.5"}, true},
		{"URI with fragment refused (GHSA-pxq7-h93f-9jrg)", "10.0.0.5:4000",
			http.Header{"X-Forwarded-Uri": {"/public/#/../admin"}},
			Forwarded{Method: "POST", Host: "auth.example.com", URI: "/oauth2/auth?x=1", Proto: "http", For: "10.0.0.5"}, true},
		{"URI with backslash refused", "10.0.0.5:4000",
			http.Header{"X-Forwarded-Uri": {`/public/..\admin`}},
			Forwarded{Method: "POST", Host: "auth.example.com", URI: "/oauth2/auth?x=1", Proto: "http", For: "10.0.0.5"}, true},
		{"URI with space refused", "10.0.0.5:4000",
			http.Header{"X-Forwarded-Uri": {"/a b"}},
			Forwarded{Method: "POST", Host: "auth.example.com", URI: "/oauth2/auth?x=1", Proto: "http", For: "10.0.0.5"}, true},
		{"host list refused", "10.0.0.5:4000",
			http.Header{"X-Forwarded-Host": {"evil.com, app.example.com"}},
			Forwarded{Method: "POST", Host: "auth.example.com", URI: "/oauth2/auth?x=1", Proto: "http", For: "10.0.0.5"}, true},
		{"proto list refused", "10.0.0.5:4000",
			http.Header{"X-Forwarded-Proto": {"https,http"}},
			Forwarded{Method: "POST", Host: "auth.example.com", URI: "/oauth2/auth?x=1", Proto: "http", For: "10.0.0.5"}, true},
		{"host canonicalised", "10.0.0.5:4000",
			http.Header{"X-Forwarded-Host": {"App.Example.COM:8443"}, "X-Forwarded-Proto": {"HTTPS"}},
			Forwarded{Method: "POST", Host: "app.example.com:8443", URI: "/oauth2/auth?x=1", Proto: "https", For: "10.0.0.5"}, true},
		{"XFF: rightmost untrusted is the client", "10.0.0.5:4000",
			http.Header{"X-Forwarded-For": {"1.1.1.1, 203.0.113.9, 10.0.0.9"}},
			Forwarded{Method: "POST", Host: "auth.example.com", URI: "/oauth2/auth?x=1", Proto: "http", For: "203.0.113.9"}, true},
		{"XFF: spoofed leftmost entry ignored", "10.0.0.5:4000",
			http.Header{"X-Forwarded-For": {"10.0.0.1", "203.0.113.9"}},
			Forwarded{Method: "POST", Host: "auth.example.com", URI: "/oauth2/auth?x=1", Proto: "http", For: "203.0.113.9"}, true},
		{"XFF: all trusted gives leftmost", "10.0.0.5:4000",
			http.Header{"X-Forwarded-For": {"10.0.0.8, 192.0.2.7"}},
			Forwarded{Method: "POST", Host: "auth.example.com", URI: "/oauth2/auth?x=1", Proto: "http", For: "10.0.0.8"}, true},
		{"XFF: garbage stops the walk", "10.0.0.5:4000",
			http.Header{"X-Forwarded-For": {"203.0.113.9, unknown, 10.0.0.9"}},
			Forwarded{Method: "POST", Host: "auth.example.com", URI: "/oauth2/auth?x=1", Proto: "http", For: "10.0.0.9"}, true},
		{"XFF: IPv4-mapped unmapped", "10.0.0.5:4000",
			http.Header{"X-Forwarded-For": {"::ffff:203.0.113.9"}},
			Forwarded{Method: "POST", Host: "auth.example.com", URI: "/oauth2/auth?x=1", Proto: "http", For: "203.0.113.9"}, true},
		{"RFC 7239 Forwarded header not read", "10.0.0.5:4000",
			http.Header{"Forwarded": {`for=203.0.113.9;host=app.example.com;proto=https`}},
			Forwarded{Method: "POST", Host: "auth.example.com", URI: "/oauth2/auth?x=1", Proto: "http", For: "10.0.0.5"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "http://auth.example.com/oauth2/auth?x=1", nil)
			r.RemoteAddr = tc.remoteAddr
			r.Header = tc.header.Clone()
			got, trusted := tp.Forwarded(r)
			if got != tc.want || trusted != tc.wantTrusted {
				t.Errorf("Forwarded() = %+v, %v, want %+v, %v", got, trusted, tc.want, tc.wantTrusted)
			}
		})
	}
}

func TestForwardedOwnValues(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "https://App.Example.com:8443/a%2Fb?q=1", nil)
	r.TLS = &tls.ConnectionState{}
	r.RemoteAddr = "[2001:db8::1]:5555"
	var tp *TrustedProxies
	got, trusted := tp.Forwarded(r)
	want := Forwarded{Method: "GET", Host: "app.example.com:8443", URI: "/a%2Fb?q=1", Proto: "https", For: "2001:db8::1"}
	if got != want || trusted {
		t.Errorf("Forwarded() = %+v, %v, want %+v, false", got, trusted, want)
	}
	r.Host = "evil.com/x"
	if got, _ := tp.Forwarded(r); got.Host != "" {
		t.Errorf("Forwarded().Host = %q for invalid Host header, want \"\"", got.Host)
	}
}

// TestForwardedOverHTTP sends real requests through a real server, so
// RemoteAddr is what net/http sets: a spoofing client on loopback is not
// believed unless loopback is configured as a trusted proxy.
func TestForwardedOverHTTP(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []string
		wantURI string
	}{
		{"loopback not trusted", []string{"10.0.0.0/8"}, "/protected"},
		{"loopback trusted", []string{"127.0.0.1", "::1"}, "/public/x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp, err := ParseTrustedProxies(tc.trusted)
			if err != nil {
				t.Fatalf("ParseTrustedProxies() error = %v", err)
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				f, _ := tp.Forwarded(r)
				io.WriteString(w, f.URI)
			}))
			defer srv.Close()
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/protected", nil)
			if err != nil {
				t.Fatalf("NewRequest() error = %v", err)
			}
			req.Header.Set("X-Forwarded-Uri", "/public/x")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatalf("Do() error = %v", err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("ReadAll() error = %v", err)
			}
			if got := strings.TrimSpace(string(body)); got != tc.wantURI {
				t.Errorf("Forwarded().URI = %q, want %q", got, tc.wantURI)
			}
		})
	}
}
