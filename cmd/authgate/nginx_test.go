package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const nginxBinary = "/usr/sbin/nginx"

// nginxConfig is deploy/nginx/nginx.conf with its placeholder addresses
// replaced by loopback ones and the paths nginx writes to moved into dir.
// Each replaced string must occur exactly once, so that the example and
// this test cannot drift apart unnoticed.
func nginxConfig(t *testing.T, dir, listen, gate, app string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "nginx", "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for _, r := range []struct{ old, new string }{
		{"listen 80;", "listen " + listen + ";"},
		{"server authgate:4180;", "server " + gate + ";"},
		{"server app:8080;", "server " + app + ";"},
		{"http {\n", "http {\n" + strings.Join([]string{
			"access_log " + filepath.Join(dir, "access.log") + ";",
			"client_body_temp_path " + filepath.Join(dir, "body") + ";",
			"proxy_temp_path " + filepath.Join(dir, "proxy") + ";",
			"fastcgi_temp_path " + filepath.Join(dir, "fastcgi") + ";",
			"uwsgi_temp_path " + filepath.Join(dir, "uwsgi") + ";",
			"scgi_temp_path " + filepath.Join(dir, "scgi") + ";",
		}, "\n") + "\n"},
	} {
		if n := strings.Count(conf, r.old); n != 1 {
			t.Fatalf("deploy/nginx/nginx.conf contains %q %d times, want once", r.old, n)
		}
		conf = strings.Replace(conf, r.old, r.new, 1)
	}
	return conf
}

// freeLoopbackAddr returns a loopback address that was free a moment ago,
// for a server (nginx) that must be configured before it listens.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	// Below the kernel's ephemeral range (32768–60999 by default): a port
	// from :0 could be taken, between this check and nginx's bind, by any
	// listener on :0 started meanwhile (the OP, the upstream, a parallel
	// test), and the browser would then reach that server instead.
	for range 100 {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000)))
		if err != nil {
			continue
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}
	t.Fatal("no free loopback port between 20000 and 32000")
	return ""
}

// startNginx runs Debian's nginx in the foreground with conf and stops it
// when the test ends.
func startNginx(t *testing.T, dir, conf, addr string) {
	t.Helper()
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	errorLog := filepath.Join(dir, "error.log")
	args := []string{"-p", dir, "-c", path, "-e", errorLog,
		"-g", fmt.Sprintf("daemon off; master_process off; pid %s; error_log %s info;", filepath.Join(dir, "nginx.pid"), errorLog)}
	if out, err := exec.Command(nginxBinary, append([]string{"-t"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	cmd := exec.Command(nginxBinary, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(errorLog)
			t.Logf("nginx error.log:\n%s", lastLines(string(b), 40))
		}
	})
	// Wait for the listener: a condition with a deadline, not a sleep.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(errorLog)
			t.Fatalf("nginx exited: %v\n%s", err, lastLines(string(b), 40))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("nginx not listening within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// rawHTTP sends the request line and headers exactly as given (no client
// cleans the path) from the local address from ("" for any) and returns the
// response with its body read.
func rawHTTP(t *testing.T, from, addr, method, target string, header map[string]string) (*http.Response, string) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, from, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, addr)
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// nginxSetup is nginx (deploy/nginx/nginx.conf) in front of the recording
// upstream, asking authgate (forward-auth) about every request, with the
// zitadel example OP as the IdP.
type nginxSetup struct {
	URL  string // nginx, as the browser sees it
	addr string
	gate *gate
}

func startNginxSetup(t *testing.T, opts ...gateOption) *nginxSetup {
	t.Helper()
	return startNginxSetupOn(t, "", opts...)
}

// startNginxSetupOn is startNginxSetup with authgate's callback on the
// host name callbackHost ("" for nginx's loopback address), which the
// test's browser must resolve to nginx (browserVia).
func startNginxSetupOn(t *testing.T, callbackHost string, opts ...gateOption) *nginxSetup {
	t.Helper()
	if _, err := os.Stat(nginxBinary); err != nil {
		t.Fatalf("nginx is needed (apt-get install nginx; .ci/test installs it): %v", err)
	}
	addr := freeLoopbackAddr(t)
	base := "http://" + addr
	if callbackHost != "" {
		_, port, _ := net.SplitHostPort(addr)
		base = "http://" + net.JoinHostPort(callbackHost, port)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	op, clientID, secret := startOP(t, base+"/oauth2/callback")
	up := startUpstream(t)
	// nginx (on loopback) is the trusted proxy in front of authgate.
	opts = append([]gateOption{withEnv("AUTHGATE_TRUSTED_PROXIES", "127.0.0.1/32"), withEnv("AUTHGATE_PUBLIC_PATHS", "GET /static/,/healthz")}, opts...)
	env := gateEnv(base, op, clientID, secret, up, opts...)
	g := startGateWith(t, ln, env, op, up)
	dir := t.TempDir()
	startNginx(t, dir, nginxConfig(t, dir, addr, g.ProxyAddr(), strings.TrimPrefix(up.srv.URL, "http://")), addr)
	return &nginxSetup{URL: base, addr: addr, gate: g}
}

// browserVia returns a browser that reaches every host under suffix at
// nginx's address, as DNS would in a real deployment.
func (n *nginxSetup) browserVia(t *testing.T, suffix string) *browser {
	b := newBrowser(t)
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, _, err := net.SplitHostPort(addr); err == nil && strings.HasSuffix(host, suffix) {
			addr = n.addr
		}
		return d.DialContext(ctx, network, addr)
	}
	t.Cleanup(tr.CloseIdleConnections)
	b.Client.Transport = tr
	return b
}

// TestNginxForwardAuth walks a login through Debian's nginx configured with
// deploy/nginx/nginx.conf, and checks what the application behind nginx
// receives with and without a session.
func TestNginxForwardAuth(t *testing.T) {
	n := startNginxSetup(t)
	g, up := n.gate, n.gate.upstream

	t.Run("API client without a session", func(t *testing.T) {
		resp, body := rawHTTP(t, "", n.addr, "GET", "/api/items", map[string]string{"Accept": "application/json"})
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"error":"unauthenticated"`) {
			t.Errorf("status %d body %q, want authgate's 401 JSON", resp.StatusCode, body)
		}
		if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer ") {
			t.Errorf("Header(%q) = %q, want a Bearer challenge", "WWW-Authenticate", got)
		}
	})
	if up.count() != 0 {
		t.Fatalf("the application received %d request(s) without a session", up.count())
	}

	t.Run("public path, spoofed identity stripped", func(t *testing.T) {
		resp, body := rawHTTP(t, "", n.addr, "GET", "/static/app.js", map[string]string{
			"X-Forwarded-User": "admin", "X-Forwarded-Email": "admin@evil.example", "Authorization": "Bearer forged",
			"X-Auth-Request-User": "admin", "X_Forwarded_User": "admin",
		})
		if resp.StatusCode != http.StatusOK || body != "upstream /static/app.js" {
			t.Fatalf("status %d body %q, want the application's page", resp.StatusCode, body)
		}
		seen := up.last()
		for _, h := range []string{"Authorization", "X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Auth-Request-User", "X_Forwarded_User"} {
			if v := seen.Header.Get(h); v != "" {
				t.Errorf("application Header(%q) = %q on a public path, want none", h, v)
			}
		}
	})

	t.Run("path tricks out of a public path", func(t *testing.T) {
		before := up.count()
		for target, want := range map[string]int{
			"/static/../admin":           http.StatusUnauthorized,
			"/static/%2e%2e/admin":       http.StatusUnauthorized,
			"/static/%2E%2E/admin":       http.StatusUnauthorized,
			"/static//../admin":          http.StatusUnauthorized,
			"/static//app.js":            http.StatusUnauthorized, // not canonical: the application would see "//"
			"/static/..;/admin":          http.StatusBadRequest,
			"/static/..%2fadmin":         http.StatusBadRequest,
			"/static/..%5cadmin":         http.StatusBadRequest,
			"/static/x%23/../../admin":   http.StatusBadRequest,
			"/static/%252e%252e/admin":   http.StatusBadRequest,
			"/admin?/static/":            http.StatusUnauthorized,
			"/admin?x=/static/app.js":    http.StatusUnauthorized,
			"/static%2fapp.js":           http.StatusBadRequest,
			"/static/%c0%ae%c0%ae/admin": http.StatusBadRequest,
		} {
			resp, body := rawHTTP(t, "", n.addr, "GET", target, map[string]string{"Accept": "application/json"})
			if resp.StatusCode != want {
				t.Errorf("GET %s: status %d, want %d (%.120q)", target, resp.StatusCode, want, body)
			}
		}
		if got := up.count(); got != before {
			t.Errorf("the application received %d of the tricks", got-before)
		}
	})

	b := newBrowser(t)
	t.Run("login through nginx", func(t *testing.T) {
		resp := b.login(b.navigate(n.URL+"/deep/page?x=1"), g.opUser())
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusOK || body != "upstream /deep/page?x=1" {
			t.Fatalf("after login: %d %q, want the deep link through nginx", resp.StatusCode, body)
		}
		if resp.Request.URL.Host != n.addr {
			t.Errorf("landed on host %q, want nginx %q", resp.Request.URL.Host, n.addr)
		}
		seen := up.last()
		if auth := seen.Header.Get("Authorization"); !strings.HasPrefix(auth, "Bearer ") || len(auth) < 20 {
			t.Errorf("application Header(%q) = %q, want the user's access token", "Authorization", auth)
		}
		for h, want := range map[string]string{"X-Forwarded-Email": "test-user@zitadel.ch", "X-Forwarded-Preferred-Username": g.opUser()} {
			if got := seen.Header.Get(h); got != want {
				t.Errorf("application Header(%q) = %q, want %q", h, got, want)
			}
		}
		if seen.Header.Get("X-Forwarded-User") == "" {
			t.Errorf("application Header(%q) is empty, want the subject", "X-Forwarded-User")
		}
	})
	token := up.last().Header.Get("Authorization")
	cookies := b.cookieHeader(g)

	t.Run("session: spoofed identity replaced", func(t *testing.T) {
		resp, _ := rawHTTP(t, "", n.addr, "GET", "/next", map[string]string{
			"Cookie": cookies, "X-Forwarded-User": "admin", "X-Forwarded-Email": "admin@evil.example",
			"Authorization": "Bearer forged", "X-Original-URI": "/static/x", "X-Auth-Request-Email": "admin@evil.example",
		})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		seen := up.last()
		if seen.Header.Get("Authorization") != token {
			t.Errorf("application Header(%q) is not the session's token", "Authorization")
		}
		for h, want := range map[string]string{"X-Forwarded-Email": "test-user@zitadel.ch", "X-Auth-Request-Email": ""} {
			if got := seen.Header.Get(h); got != want {
				t.Errorf("application Header(%q) = %q, want %q", h, got, want)
			}
		}
		if got := seen.Header.Values("X-Forwarded-User"); len(got) != 1 || got[0] == "admin" {
			t.Errorf("application Header(%q) = %q, want the subject only", "X-Forwarded-User", got)
		}
	})

	t.Run("forward-auth headers from an untrusted address", func(t *testing.T) {
		// Straight to authgate from 127.0.0.2, which AUTHGATE_TRUSTED_PROXIES
		// does not list: the claimed original request is ignored.
		resp, _ := rawHTTP(t, "127.0.0.2", g.ProxyAddr(), "GET", "/oauth2/auth", map[string]string{
			"X-Original-URI": "/static/app.js", "X-Forwarded-Uri": "/static/app.js", "X-Original-Method": "GET",
			"X-Forwarded-Host": n.addr, "Accept": "application/json",
		})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("untrusted peer claiming a public path: %d, want 401", resp.StatusCode)
		}
		// The same claim from nginx's address is believed.
		resp, _ = rawHTTP(t, "127.0.0.1", g.ProxyAddr(), "GET", "/oauth2/auth", map[string]string{
			"X-Original-URI": "/static/app.js", "X-Original-Method": "GET", "Accept": "application/json",
		})
		if resp.StatusCode != http.StatusAccepted {
			t.Errorf("trusted peer claiming a public path: %d, want 202", resp.StatusCode)
		}
	})

	t.Run("refresh through nginx sets the new cookie", func(t *testing.T) {
		// The example OP's access tokens live 5 minutes; 4m30s later the
		// token is inside the 60s refresh skew.
		g.clock.Advance(4*time.Minute + 30*time.Second)
		before := g.op.grantCount("refresh_token")
		resp := b.navigate(n.URL + "/after-refresh")
		if body := readBody(t, resp); resp.StatusCode != http.StatusOK || body != "upstream /after-refresh" {
			t.Fatalf("status %d body %q", resp.StatusCode, body)
		}
		if got := g.op.grantCount("refresh_token"); got != before+1 {
			t.Fatalf("refresh calls = %d, want %d", got, before+1)
		}
		refreshed := up.last().Header.Get("Authorization")
		if refreshed == token {
			t.Fatal("the application still received the old token")
		}
		// The browser stored the refreshed session. x/oauth2 dates the new
		// token from the real clock, so set the test clock back to it: the
		// old cookie's token is then still valid too, and only the new
		// cookie carries the refreshed one.
		g.clock.Advance(-(4*time.Minute + 30*time.Second))
		resp = b.navigate(n.URL + "/again")
		readBody(t, resp)
		if resp.StatusCode != http.StatusOK || up.last().Header.Get("Authorization") != refreshed {
			t.Errorf("with the refreshed cookie: %d, token changed %v", resp.StatusCode, up.last().Header.Get("Authorization") != refreshed)
		}
		if got := g.op.grantCount("refresh_token"); got != before+1 {
			t.Errorf("refresh calls = %d, want %d: the refreshed cookie did not reach the browser", got, before+1)
		}
	})
}

// TestNginxPolicy: a signed-in user the policy refuses sees authgate's 403
// page through nginx after the login, and the application sees nothing.
func TestNginxPolicy(t *testing.T) {
	n := startNginxSetup(t, withEnv("AUTHGATE_ALLOWED_EMAILS", "test-user2@zitadel.ch"))
	b := newBrowser(t)
	resp := b.login(b.navigate(n.URL+"/private"), n.gate.opUser())
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "may not use this application") {
		t.Fatalf("refused user after login: %d %.200q, want authgate's 403 page", resp.StatusCode, body)
	}
	resp = b.navigate(n.URL + "/private")
	readBody(t, resp)
	if resp.StatusCode != http.StatusForbidden || resp.Request.URL.Host != n.addr {
		t.Errorf("next navigation: %d on %s, want 403 without another login", resp.StatusCode, resp.Request.URL.Host)
	}
	if n.gate.upstream.count() != 0 {
		t.Errorf("the application received %d request(s) of a refused user", n.gate.upstream.count())
	}
}

// TestNginxForwardAuthAcrossHosts: nginx fronts app.test.example and
// auth.test.example (authgate's callback) with one login shared through
// AUTHGATE_COOKIE_DOMAIN. A login started on the app host returns there,
// because AUTHGATE_ALLOWED_REDIRECT_HOSTS lists it; a login started on a
// host that is not listed never returns to that host.
func TestNginxForwardAuthAcrossHosts(t *testing.T) {
	// The port is only known once nginx's address is picked, so the
	// redirect-host entry is filled in by the option at start.
	n := startNginxSetupOn(t, "auth.test.example", func(env map[string]string) {
		u, _ := url.Parse(env["AUTHGATE_REDIRECT_URL"])
		env["AUTHGATE_COOKIE_DOMAIN"] = "test.example"
		env["AUTHGATE_ALLOWED_REDIRECT_HOSTS"] = "app.test.example:" + u.Port()
	})
	_, port, _ := net.SplitHostPort(n.addr)
	b := n.browserVia(t, ".example")

	resp := b.login(b.navigate("http://app.test.example:"+port+"/deep?x=1"), n.gate.opUser())
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK || body != "upstream /deep?x=1" {
		t.Fatalf("after login: %d %q", resp.StatusCode, body)
	}
	if got := resp.Request.URL.Host; got != "app.test.example:"+port {
		t.Errorf("landed on %q, want the app host it started from", got)
	}
	if seen := n.gate.upstream.last(); seen.Header.Get("X-Forwarded-Email") != "test-user@zitadel.ch" || seen.Host != "app.test.example:"+port {
		t.Errorf("application saw Host %q, email %q", seen.Host, seen.Header.Get("X-Forwarded-Email"))
	}

	// A host outside the list: the login still works (same cookie domain),
	// but it returns to authgate's own host, never to the unlisted one.
	b2 := n.browserVia(t, ".example")
	resp = b2.login(b2.navigate("http://evil.test.example:"+port+"/x"), n.gate.opUser())
	readBody(t, resp)
	if got := resp.Request.URL.Host; got != "auth.test.example:"+port || resp.Request.URL.Path != "/x" {
		t.Errorf("login from an unlisted host landed on %s, want auth.test.example:%s/x", resp.Request.URL, port)
	}
}
