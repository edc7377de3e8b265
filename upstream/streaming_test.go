package upstream

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The first event must reach the client while the upstream still holds the
// stream open: no buffering of text/event-stream.
func TestServerSentEventsStream(t *testing.T) {
	end := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		<-end
		io.WriteString(w, "data: last\n\n")
	}))
	defer up.Close()
	fr := front(t, newProxy(t, Options{Target: up.URL}), testIdentity)

	res, err := fr.Client().Get(fr.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	line, err := br.ReadString('\n') // blocks forever if the proxy buffers
	if err != nil {
		t.Fatalf("read first event: %v", err)
	}
	if line != "data: first\n" {
		t.Errorf("first line = %q, want %q", line, "data: first\n")
	}
	close(end) // only now may the upstream finish
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("read rest: %v", err)
	}
	if want := "\ndata: last\n\n"; string(rest) != want {
		t.Errorf("rest = %q, want %q", rest, want)
	}
}

// Same for a plain chunked response of unknown length.
func TestUnknownLengthStreams(t *testing.T) {
	end := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "part1\n")
		http.NewResponseController(w).Flush()
		<-end
	}))
	defer up.Close()
	fr := front(t, newProxy(t, Options{Target: up.URL}), nil)
	res, err := fr.Client().Get(fr.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	close(end)
	if err != nil || line != "part1\n" {
		t.Errorf("first line = %q, %v; want %q", line, err, "part1\n")
	}
}

// A raw WebSocket-style upgrade (RFC 6455 section 4) through the proxy: the
// upstream hijacks and echoes, the client talks over the same connection.
// Over https the upgrade must use HTTP/1.1 even though the upstream offers h2.
func TestWebSocketUpgradeEcho(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := "http"
		if useTLS {
			name = "https with h2 offered"
		}
		t.Run(name, func(t *testing.T) { testWebSocketUpgradeEcho(t, useTLS) })
	}
}

func testWebSocketUpgradeEcho(t *testing.T, useTLS bool) {
	gotAuth := make(chan string, 1)
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "want an upgrade", http.StatusBadRequest)
			return
		}
		gotAuth <- r.Header.Get("Authorization")
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		io.Copy(conn, brw) // echo until the client closes
	}))
	o := Options{}
	if useTLS {
		up.EnableHTTP2 = true
		up.StartTLS()
		roots := x509.NewCertPool()
		roots.AddCert(up.Certificate())
		o.TLSClientConfig = &tls.Config{RootCAs: roots}
	} else {
		up.Start()
	}
	defer up.Close()
	o.Target = up.URL
	fr := front(t, newProxy(t, o), testIdentity)

	conn, err := net.Dial("tcp", strings.TrimPrefix(fr.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read upgrade response: %v", err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status = %d, want 101", res.StatusCode)
	}
	if v := <-gotAuth; v != "Bearer "+testToken {
		t.Errorf("upgrade request Header(%q) = %q, want the bearer", "Authorization", v)
	}
	for _, msg := range []string{"ping", "second message"} {
		io.WriteString(conn, msg)
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(br, buf); err != nil {
			t.Fatalf("read echo: %v", err)
		}
		if string(buf) != msg {
			t.Errorf("echo = %q, want %q", buf, msg)
		}
	}
}
