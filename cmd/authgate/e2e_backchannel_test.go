package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/authgate/authgate/internal/redistest"
)

// streamCloseLimit is how soon after a session ends its WebSockets and
// event streams must be closed (authgate checks every second).
const streamCloseLimit = 5 * time.Second

// openWebSocket opens a WebSocket through g to whoami's echo and checks
// that a message goes there and back.
func openWebSocket(t *testing.T, g *gate, cookie string) *websocket.Conn {
	t.Helper()
	cfg, err := websocket.NewConfig("ws://"+g.ProxyAddr()+"/ws", g.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Header.Set("Cookie", cookie)
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatalf("WebSocket through %s: %v", g.URL, err)
	}
	t.Cleanup(func() { ws.Close() })
	if err := websocket.Message.Send(ws, "ping"); err != nil {
		t.Fatalf("WebSocket send: %v", err)
	}
	var got string
	if err := websocket.Message.Receive(ws, &got); err != nil || got != "ping" {
		t.Fatalf("WebSocket echo = %q, %v; want ping", got, err)
	}
	return ws
}

// drainWebSocket returns a function that reads ws until it ends.
func drainWebSocket(ws *websocket.Conn) func() {
	return func() {
		var msg string
		for websocket.Message.Receive(ws, &msg) == nil {
		}
	}
}

// openEventStream opens whoami's event stream through g, one event a
// minute (the longest interval it allows), and reads the first event.
func openEventStream(t *testing.T, g *gate, cookie string) io.ReadCloser {
	t.Helper()
	req, _ := http.NewRequest("GET", g.URL+"/events?n=100&interval=1m", nil)
	req.Header.Set("Cookie", cookie)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatalf("event stream through %s: %v", g.URL, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("event stream = %d %q, want 200 text/event-stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, "1") {
		t.Fatalf("first event line = %q, %v; want the first event", line, err)
	}
	return resp.Body
}

// logoutAnswer POSTs a logout token to g's back-channel endpoint, as the
// IdP does, and returns the status and the JSON error code.
func logoutAnswer(t *testing.T, g *gate, token string) (int, string) {
	t.Helper()
	resp, err := http.PostForm(g.URL+"/oauth2/backchannel_logout", url.Values{"logout_token": {token}})
	if err != nil {
		t.Fatalf("POST backchannel_logout: %v", err)
	}
	body := readBody(t, resp)
	var e struct{ Error string }
	if resp.StatusCode != http.StatusOK {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" || json.Unmarshal([]byte(body), &e) != nil {
			t.Errorf("back-channel logout error = %q (Content-Type %q), want a JSON body", body, ct)
		}
	}
	return resp.StatusCode, e.Error
}

// TestBackchannelLogoutAcrossReplicas: the IdP's logout token reaches
// replica b; the session, logged in on a, ends on both, its WebSockets and
// event streams on both are closed within seconds, and the token replayed
// to either replica is refused. With the Redis store b deletes the session
// itself; with the cookie store the revocation travels over Redis.
func TestBackchannelLogoutAcrossReplicas(t *testing.T) {
	tests := []struct {
		name string
		env  func(srv *redistest.Server) map[string]string
		// deleted: a sees the end at its very next request (the session
		// is gone from Redis), not after the revocation reaches it.
		deleted bool
	}{
		{name: "redis store", env: redisEnv, deleted: true},
		{name: "cookie store with shared revocations", env: func(srv *redistest.Server) map[string]string {
			return map[string]string{"AUTHGATE_REDIS_URL": srv.URL()}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := redistest.Start(t)
			r := startReplicas(t, replicaOptions{env: tt.env(srv)})
			_, cookie := r.signIn(r.a)
			type stream struct {
				what  string
				c     io.Closer
				drain func()
			}
			var streams []stream
			for _, g := range []*gate{r.a, r.b} {
				if code, _, _ := send(t, "GET", g.URL+"/before", cookie, apiHeader); code != http.StatusOK {
					t.Fatalf("GET %s/before = %d, want 200", g.URL, code)
				}
				ws := openWebSocket(t, g, cookie)
				streams = append(streams, stream{"WebSocket on " + g.URL, ws, drainWebSocket(ws)})
				events := openEventStream(t, g, cookie)
				streams = append(streams, stream{"event stream on " + g.URL, events, func() { io.Copy(io.Discard, events) }})
			}

			if n := r.idp.EndSessions("user-alice"); n != 1 {
				t.Fatalf("EndSessions = %d, want 1", n)
			}
			ended := time.Now()
			sent := r.logouts.all()
			if len(sent) != 1 || sent[0].status != http.StatusOK {
				t.Fatalf("back-channel deliveries = %d (status %v), want one answered 200", len(sent), sent)
			}
			token := sent[0].token

			if code, _, _ := send(t, "GET", r.b.URL+"/after", cookie, apiHeader); code != http.StatusUnauthorized {
				t.Errorf("GET b/after = %d, want 401 at once on the replica that got the logout", code)
			}
			if tt.deleted {
				if code, _, _ := send(t, "GET", r.a.URL+"/after", cookie, apiHeader); code != http.StatusUnauthorized {
					t.Errorf("GET a/after = %d, want 401 at once: the session is gone from Redis", code)
				}
				if keys := redisSessions(t, srv); len(keys) != 0 {
					t.Errorf("sessions in Redis after the logout = %d, want 0", len(keys))
				}
			} else {
				redistest.Eventually(t, streamCloseLimit, "session ended on a", func() bool {
					code, _, _ := send(t, "GET", r.a.URL+"/after", cookie, apiHeader)
					return code == http.StatusUnauthorized
				})
			}
			// Without Fetch Metadata, so that the answer is the 302 itself
			// rather than the deep-link page that leads to it.
			resp := rawRequest(t, "GET", r.a.URL+"/after", cookie, map[string]string{"Accept": "text/html"})
			readBody(t, resp)
			if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, r.issuer+"authorize?") {
				t.Errorf("navigation on a after the logout = %d Location %q, want 302 to the provider's login", resp.StatusCode, loc)
			}

			for _, s := range streams {
				took := endsWithin(t, s.what, ended, streamCloseLimit, s.c, s.drain)
				t.Logf("%s closed %v after the logout", s.what, took.Round(time.Millisecond))
			}

			// Replayed, to the replica that took it and to the other one,
			// which never saw it: the jti is shared through Redis.
			for _, g := range []*gate{r.b, r.a} {
				if code, errCode := logoutAnswer(t, g, token); code != http.StatusBadRequest || errCode != "invalid_request" {
					t.Errorf("replayed logout token to %s = %d %q, want 400 invalid_request", g.URL, code, errCode)
				}
				if logs := g.logs.String(); !strings.Contains(logs, "jti seen before") {
					t.Errorf("logs of %s do not say the logout token was replayed", g.URL)
				}
			}
		})
	}
}

// TestBackchannelLogoutAtSignOut: the RP-initiated logout round trip. The
// user signs out on a; a sends the browser to the provider's end_session,
// which ends its login session and tells b over the back channel.
func TestBackchannelLogoutAtSignOut(t *testing.T) {
	srv := redistest.Start(t)
	r := startReplicas(t, replicaOptions{env: redisEnv(srv)})
	b, cookie := r.signIn(r.a)
	// a → end_session → back to a's "/" without a session → login, and
	// the provider asks for the password again: its session ended too.
	resp := b.navigateFrom(r.a.URL+"/oauth2/sign_out", "same-origin")
	page := readBody(t, resp)
	if resp.StatusCode != http.StatusOK || !demoLoginIDRe.MatchString(page) {
		t.Errorf("after sign-out: %d at %s, want the provider's login page", resp.StatusCode, resp.Request.URL)
	}
	sent := r.logouts.all()
	if len(sent) != 1 || sent[0].status != http.StatusOK || sent[0].clientID != browserClientID {
		t.Fatalf("back-channel deliveries after sign-out = %d, want one to %s answered 200", len(sent), browserClientID)
	}
	if code, _, _ := send(t, "GET", r.b.URL+"/x", cookie, apiHeader); code != http.StatusUnauthorized {
		t.Errorf("ticket on b after sign-out = %d, want 401", code)
	}
}
