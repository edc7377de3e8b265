package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestUnixSocketUpstream(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "up.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan received, 1)
	up := httptest.NewUnstartedServer(recordingHandler(got))
	up.Listener = l
	up.Start()
	defer up.Close()

	fr := front(t, newProxy(t, Options{Target: "unix://" + sock}), testIdentity)
	res, body := get(t, fr, "/a?b=c", nil)
	if res.StatusCode != http.StatusOK || body != "ok" {
		t.Fatalf("response = %d %q, want 200 \"ok\"", res.StatusCode, body)
	}
	r := receive(t, got)
	if want := strings.TrimPrefix(fr.URL, "http://"); r.host != want {
		t.Errorf("Host = %q, want the client's %q", r.host, want)
	}
	if r.uri != "/a?b=c" {
		t.Errorf("RequestURI = %q, want %q", r.uri, "/a?b=c")
	}
	if v := r.header.Get("Authorization"); v != "Bearer "+testToken {
		t.Errorf("Header(%q) = %q, want the bearer", "Authorization", v)
	}
}

func TestH2CUpstream(t *testing.T) {
	got := make(chan received, 1)
	up := httptest.NewUnstartedServer(recordingHandler(got))
	up.Config.Protocols = new(http.Protocols)
	up.Config.Protocols.SetHTTP1(true)
	up.Config.Protocols.SetUnencryptedHTTP2(true)
	up.Start()
	defer up.Close()

	fr := front(t, newProxy(t, Options{Target: "h2c://" + up.Listener.Addr().String()}), testIdentity)
	res, body := get(t, fr, "/grpc.Service/Method", nil)
	if res.StatusCode != http.StatusOK || body != "ok" {
		t.Fatalf("response = %d %q, want 200 \"ok\"", res.StatusCode, body)
	}
	r := receive(t, got)
	if r.protoMajor != 2 {
		t.Errorf("upstream ProtoMajor = %d, want 2", r.protoMajor)
	}
	if v := r.header.Get("X-Forwarded-User"); v != testIdentity.User {
		t.Errorf("Header(%q) = %q, want %q", "X-Forwarded-User", v, testIdentity.User)
	}
}

func TestHTTPSUpstreamNegotiatesHTTP2(t *testing.T) {
	got := make(chan received, 1)
	up := httptest.NewUnstartedServer(recordingHandler(got))
	up.EnableHTTP2 = true
	up.StartTLS()
	defer up.Close()
	roots := x509.NewCertPool()
	roots.AddCert(up.Certificate())

	fr := front(t, newProxy(t, Options{Target: up.URL, TLSClientConfig: &tls.Config{RootCAs: roots}}), testIdentity)
	res, _ := get(t, fr, "/", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200", res.StatusCode)
	}
	if r := receive(t, got); r.protoMajor != 2 {
		t.Errorf("upstream ProtoMajor = %d, want 2 (ALPN h2)", r.protoMajor)
	}
}

func TestHTTPSUpstreamUntrusted(t *testing.T) {
	up := httptest.NewTLSServer(http.NotFoundHandler())
	defer up.Close()
	logger, _ := captureLogs()
	fr := front(t, newProxy(t, Options{Target: up.URL, Logger: logger}), nil)
	if res, _ := get(t, fr, "/", nil); res.StatusCode != http.StatusBadGateway {
		t.Errorf("status = %d, want 502 for an unknown CA", res.StatusCode)
	}
}

// transportSettings is the part of an http.Transport that Options sets.
type transportSettings struct {
	idlePerHost   int
	idle, header  time.Duration
	tlsHandshake  time.Duration
	noKeepAlives  bool
	forceHTTP2    bool
	noCompression bool
	envProxy      bool
}

func settingsOf(tr *http.Transport) transportSettings {
	return transportSettings{
		idlePerHost:   tr.MaxIdleConnsPerHost,
		idle:          tr.IdleConnTimeout,
		header:        tr.ResponseHeaderTimeout,
		tlsHandshake:  tr.TLSHandshakeTimeout,
		noKeepAlives:  tr.DisableKeepAlives,
		forceHTTP2:    tr.ForceAttemptHTTP2,
		noCompression: tr.DisableCompression,
		envProxy:      tr.Proxy != nil,
	}
}

func TestTransportSettings(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want transportSettings
	}{
		{"defaults", Options{}, transportSettings{
			idlePerHost: 128, idle: 90 * time.Second, header: 60 * time.Second, tlsHandshake: 5 * time.Second,
			forceHTTP2: true, noCompression: true,
		}},
		{"set", Options{MaxIdleConnsPerHost: 7, IdleConnTimeout: time.Second, ResponseHeaderTimeout: 2 * time.Second, DialTimeout: 3 * time.Second}, transportSettings{
			idlePerHost: 7, idle: time.Second, header: 2 * time.Second, tlsHandshake: 3 * time.Second,
			forceHTTP2: true, noCompression: true,
		}},
		{"negative disables", Options{MaxIdleConnsPerHost: -1, IdleConnTimeout: -1, ResponseHeaderTimeout: -1, DialTimeout: -1}, transportSettings{
			idlePerHost: -1, noKeepAlives: true, forceHTTP2: true, noCompression: true,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := settingsOf(newTransport(tt.o, target{})); got != tt.want {
				t.Errorf("transport settings = %+v, want %+v", got, tt.want)
			}
		})
	}
}
