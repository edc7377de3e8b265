package whoami

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// fakeJWT builds an unsigned-looking compact JWS; whoami never checks the
// signature, so any third part will do.
func fakeJWT(t *testing.T, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]any{"alg": "RS256", "kid": "key-1", "typ": "JWT"}) + "." + enc(claims) + ".c2lnbmF0dXJlLW5vdC1jaGVja2Vk"
}

var testClaims = map[string]any{
	"sub": "user-alice", "email": "alice@example.com", "groups": []string{"admins", "staff"},
	"exp": 1893456000, "iat": 1893455940,
}

func serve(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestPage(t *testing.T) {
	jwt := fakeJWT(t, testClaims)
	req := httptest.NewRequest(http.MethodGet, "/some/path?a=1&b=two", nil)
	req.Header.Set("Authorization", "Bearer "+jwt)
	req.Header.Set("Cookie", "authgate_session=cookie-secret-value; other=also-secret")
	req.Header.Set("X-Forwarded-User", "alice")
	req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	rec := serve(New(Options{}), req)

	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", rec.Code)
	}
	if got := rec.Header().Get("Content-Type"); !strings.HasPrefix(got, "text/html") {
		t.Errorf("Header(%q) = %q, want text/html", "Content-Type", got)
	}
	if got := rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Header(%q) = %q, want no-store", "Cache-Control", got)
	}
	body := rec.Body.String()
	for _, want := range []string{
		"/some/path", "a=1&amp;b=two", // method, path and query
		"alice@example.com", "user-alice", `[&#34;admins&#34;,&#34;staff&#34;]`, // decoded claims
		"2030-01-01T00:00:00Z",        // exp shown as a time
		`data-exp="1893456000"`,       // the countdown's target
		"not checked",                 // the display-only warning
		"Bearer " + jwt[:12] + "… (",  // Authorization cut short
		"authgate_session=…; other=…", // cookie names only
		`href="/oauth2/sign_out"`, `href="/oauth2/userinfo"`, `href="/some/path?a=1&amp;b=two"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page does not contain %q", want)
		}
	}
	for _, secret := range []string{jwt, jwt[:40], "cookie-secret-value", "also-secret"} {
		if strings.Contains(body, secret) {
			t.Errorf("page contains the secret %.20q…", secret)
		}
	}
	// Headers are sorted by name.
	a, c, x := strings.Index(body, ">Accept<"), strings.Index(body, ">Cookie<"), strings.Index(body, ">X-Forwarded-User<")
	if a < 0 || c < 0 || x < 0 || !(a < c && c < x) {
		t.Errorf("header rows Accept, Cookie, X-Forwarded-User at %d, %d, %d; want all present and in that order", a, c, x)
	}
}

func TestRedact(t *testing.T) {
	jwt := fakeJWT(t, testClaims)
	tests := []struct {
		name, header, value, want string
	}{
		{"bearer", "Authorization", "Bearer " + jwt, "Bearer " + jwt[:12] + "… (" + strconv.Itoa(len(jwt)) + " chars)"},
		{"basic", "Authorization", "Basic dXNlcjpwYXNz", "Basic … (12 chars)"},
		{"no scheme", "Proxy-Authorization", "opaque-credential-value", "opaque-crede… (23 chars)"},
		{"cookies", "Cookie", "a=1; b=2;c=3", "a=…; b=…; c=…"},
		{"jwt in another header", "X-Id-Token", "token=" + jwt, "token=" + jwt[:12] + "… (" + strconv.Itoa(len(jwt)) + " chars)"},
		{"plain header", "X-Forwarded-Email", "alice@example.com", "alice@example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := redact(tt.header, tt.value); got != tt.want {
				t.Errorf("redact(%q, …) = %q, want %q", tt.header, got, tt.want)
			}
		})
	}
}

func TestJSON(t *testing.T) {
	jwt := fakeJWT(t, testClaims)
	tests := []struct {
		name, path, accept string
		wantJSON           bool
	}{
		{"accept json", "/", "application/json", true},
		{"accept problem+json", "/", "application/problem+json", true},
		{"path ends in .json", "/me.json", "", true},
		{"browser", "/", "text/html,application/xhtml+xml,*/*;q=0.8", false},
		{"anything", "/", "*/*", false},
		{"no accept", "/", "", false},
		{"json ranked lower", "/", "application/json;q=0.5, text/html", false},
		{"json ranked higher", "/", "text/html;q=0.4, application/json", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tt.path, nil)
			req.Header.Set("Authorization", "Bearer "+jwt)
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			rec := serve(New(Options{}), req)
			ct := rec.Header().Get("Content-Type")
			if gotJSON := ct == "application/json"; gotJSON != tt.wantJSON {
				t.Fatalf("Header(%q) = %q, want JSON %t", "Content-Type", ct, tt.wantJSON)
			}
			if !tt.wantJSON {
				return
			}
			var rep report
			if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Path != tt.path || rep.Token == nil || rep.Token.Claims["email"] != "alice@example.com" {
				t.Errorf("report path %q, token %+v; want %q and the decoded claims", rep.Path, rep.Token, tt.path)
			}
			if got := rep.Token.ExpiresAt; got == nil || got.Unix() != 1893456000 {
				t.Errorf("expires_at = %v, want 2030-01-01T00:00:00Z", got)
			}
			if strings.Contains(rec.Body.String(), jwt) {
				t.Error("JSON contains the whole token")
			}
		})
	}
}

func TestTokenCases(t *testing.T) {
	tests := []struct {
		name, authorization string
		wantToken           bool
		wantError           string
	}{
		{name: "none"},
		{name: "basic is not a bearer token", authorization: "Basic dXNlcjpwYXNz"},
		{name: "lowercase scheme", authorization: "bearer " + fakeJWT(t, testClaims), wantToken: true},
		{name: "opaque token", authorization: "Bearer abc123", wantError: "not a JWT"},
		{name: "bad base64", authorization: "Bearer a.b!.c", wantError: "not base64url"},
		{name: "not json", authorization: "Bearer bm9w.bm9w.c2ln", wantError: "not JSON objects"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header.Set("Accept", "application/json")
			if tt.authorization != "" {
				req.Header.Set("Authorization", tt.authorization)
			}
			var rep report
			if err := json.Unmarshal(serve(New(Options{}), req).Body.Bytes(), &rep); err != nil {
				t.Fatal(err)
			}
			if (rep.Token != nil) != tt.wantToken {
				t.Errorf("token decoded = %t, want %t", rep.Token != nil, tt.wantToken)
			}
			if !strings.Contains(rep.TokenError, tt.wantError) || (tt.wantError == "" && rep.TokenError != "") {
				t.Errorf("token_error = %q, want %q", rep.TokenError, tt.wantError)
			}
		})
	}
}

func TestEcho(t *testing.T) {
	req := httptest.NewRequest(http.MethodPost, "/api/echo?x=1", strings.NewReader(`{"hello":"world"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-User", "alice")
	rec := serve(New(Options{}), req)
	if got := rec.Header().Get("Content-Type"); got != "application/json" {
		t.Fatalf("Header(%q) = %q, want application/json", "Content-Type", got)
	}
	var rep report
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Method != http.MethodPost || rep.Path != "/api/echo" || rep.Query.Get("x") != "1" {
		t.Errorf("method, path, x = %q, %q, %q; want POST, /api/echo, 1", rep.Method, rep.Path, rep.Query.Get("x"))
	}
	if rep.Body == nil || *rep.Body != `{"hello":"world"}` {
		t.Errorf("body = %v, want the request body", rep.Body)
	}
	if got := rep.Headers["X-Forwarded-User"]; len(got) != 1 || got[0] != "alice" {
		t.Errorf("Header(%q) = %q, want [alice]", "X-Forwarded-User", got)
	}

	big := httptest.NewRequest(http.MethodPost, "/api/echo", strings.NewReader(strings.Repeat("x", maxEchoBody+1)))
	if got := serve(New(Options{}), big).Code; got != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: status = %d, want 413", got)
	}
}

func TestWebSocket(t *testing.T) {
	srv := httptest.NewServer(New(Options{}))
	t.Cleanup(srv.Close)
	ws, err := websocket.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", "", srv.URL)
	if err != nil {
		t.Fatalf("websocket.Dial() error = %v", err)
	}
	defer ws.Close()

	tests := []struct {
		name string
		send any
	}{
		{"text", "hello"},
		{"binary", []byte{0, 1, 2, 255}},
		{"text again", "second message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := websocket.Message.Send(ws, tt.send); err != nil {
				t.Fatalf("Send() error = %v", err)
			}
			switch want := tt.send.(type) {
			case string:
				var got string
				if err := websocket.Message.Receive(ws, &got); err != nil {
					t.Fatal(err)
				}
				if got != want || ws.PayloadType != websocket.TextFrame {
					t.Errorf("echo = %q (frame type %d), want %q as text", got, ws.PayloadType, want)
				}
			case []byte:
				var f frame
				if err := echoCodec.Receive(ws, &f); err != nil {
					t.Fatal(err)
				}
				if string(f.data) != string(want) || f.typ != websocket.BinaryFrame {
					t.Errorf("echo = %v (frame type %d), want %v as binary", f.data, f.typ, want)
				}
			}
		})
	}

	resp, err := http.Get(srv.URL + "/ws")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired || resp.Header.Get("Upgrade") != "websocket" {
		t.Errorf("plain GET /ws = %d, Upgrade %q; want 426, websocket", resp.StatusCode, resp.Header.Get("Upgrade"))
	}
}

// fakeTicks is the event stream's clock: each wait blocks until the test
// sends a tick, and records the interval asked for.
type fakeTicks struct {
	ch chan time.Time
	mu sync.Mutex
	d  []time.Duration
}

func (f *fakeTicks) after(d time.Duration) <-chan time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.d = append(f.d, d)
	return f.ch
}

func TestEventsStream(t *testing.T) {
	ticks := &fakeTicks{ch: make(chan time.Time)}
	done := make(chan struct{})
	h := newHandler(Options{}, ticks.after)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if r.URL.Path == "/events" {
			close(done)
		}
	}))
	t.Cleanup(srv.Close)

	// A watchdog bounds the first response and event: without streaming,
	// the client waiting for them and the handler waiting for a tick would
	// block each other forever.
	type first struct {
		resp *http.Response
		br   *bufio.Reader
		ev   string
		err  error
	}
	ch := make(chan first, 1)
	go func() {
		// t.Context ends the request when the test fails, so the server can close.
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/events?n=3&interval=100ms", nil)
		if err != nil {
			ch <- first{err: err}
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			ch <- first{err: err}
			return
		}
		br := bufio.NewReader(resp.Body)
		ev, err := readEvent(br)
		ch <- first{resp, br, ev, err}
	}()
	var f first
	select {
	case f = <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no first event within 10s: the stream is not flushed")
	}
	if f.err != nil {
		t.Fatalf("first event: %v", f.err)
	}
	defer f.resp.Body.Close()
	if got := f.resp.Header.Get("Content-Type"); got != "text/event-stream" {
		t.Errorf("Header(%q) = %q, want text/event-stream", "Content-Type", got)
	}
	// The handler is parked waiting for the next tick, so the first event
	// reached the client before the stream ended.
	select {
	case <-done:
		t.Fatal("the handler finished before the first event was read")
	default:
	}
	br := f.br
	for i := 1; i <= 3; i++ {
		got := f.ev
		if i > 1 {
			ticks.ch <- time.Now()
			if got, f.err = readEvent(br); f.err != nil {
				t.Fatalf("event %d: %v", i, f.err)
			}
		}
		if want := "id: " + strconv.Itoa(i) + "\ndata: " + strconv.Itoa(i) + "\n"; got != want {
			t.Fatalf("event %d = %q, want %q", i, got, want)
		}
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("after the last event: %q, %v; want the stream to end", rest, err)
	}
	<-done
	ticks.mu.Lock()
	defer ticks.mu.Unlock()
	if len(ticks.d) != 2 || ticks.d[0] != 100*time.Millisecond {
		t.Errorf("waits = %v, want two of 100ms", ticks.d)
	}
}

func readEvent(br *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return b.String(), err
		}
		if line == "\n" {
			return b.String(), nil
		}
		b.WriteString(line)
	}
}

func TestEventsParams(t *testing.T) {
	immediate := func(time.Duration) <-chan time.Time {
		ch := make(chan time.Time, 1)
		ch <- time.Time{}
		return ch
	}
	tests := []struct {
		name, query, lastEventID string
		wantStatus               int
		wantIDs                  string
	}{
		{name: "defaults", wantStatus: http.StatusOK, wantIDs: "1,2,3,4,5"},
		{name: "n=2", query: "n=2&interval=0s", wantStatus: http.StatusOK, wantIDs: "1,2"},
		{name: "resume after Last-Event-ID", query: "n=3", lastEventID: "1", wantStatus: http.StatusOK, wantIDs: "2,3"},
		{name: "all sent: stop reconnecting", query: "n=3", lastEventID: "3", wantStatus: http.StatusNoContent},
		{name: "n=0", query: "n=0", wantStatus: http.StatusBadRequest},
		{name: "n too large", query: "n=1001", wantStatus: http.StatusBadRequest},
		{name: "bad interval", query: "interval=soon", wantStatus: http.StatusBadRequest},
		{name: "negative interval", query: "interval=-1s", wantStatus: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/events?"+tt.query, nil)
			if tt.lastEventID != "" {
				req.Header.Set("Last-Event-ID", tt.lastEventID)
			}
			rec := serve(newHandler(Options{}, immediate), req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			var ids []string
			for _, line := range strings.Split(rec.Body.String(), "\n") {
				if id, ok := strings.CutPrefix(line, "id: "); ok {
					ids = append(ids, id)
				}
			}
			if got := strings.Join(ids, ","); got != tt.wantIDs {
				t.Errorf("event ids = %q, want %q", got, tt.wantIDs)
			}
		})
	}
}
