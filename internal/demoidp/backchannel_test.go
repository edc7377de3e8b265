package demoidp

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// logoutReceiver is a relying party's back-channel logout endpoint: it
// records every POST and answers with status.
type logoutReceiver struct {
	srv    *httptest.Server
	status atomic.Int64

	mu  sync.Mutex
	got []receivedLogout
}

type receivedLogout struct {
	contentType string
	token       string
}

func startLogoutReceiver(t *testing.T) *logoutReceiver {
	t.Helper()
	lr := &logoutReceiver{}
	lr.status.Store(http.StatusOK)
	lr.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/backchannel" {
			http.Error(w, "unexpected request", http.StatusTeapot)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		lr.mu.Lock()
		lr.got = append(lr.got, receivedLogout{contentType: r.Header.Get("Content-Type"), token: r.PostForm.Get("logout_token")})
		lr.mu.Unlock()
		w.WriteHeader(int(lr.status.Load()))
	}))
	t.Cleanup(lr.srv.Close)
	return lr
}

func (lr *logoutReceiver) received() []receivedLogout {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return slices.Clone(lr.got)
}

// sentLogout is one call of Options.OnBackchannelLogout.
type sentLogout struct {
	clientID, token string
	status          int
}

type sentLogouts struct {
	mu   sync.Mutex
	list []sentLogout
}

func (s *sentLogouts) record(clientID, token string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, sentLogout{clientID, token, status})
}

func (s *sentLogouts) all() []sentLogout {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.list)
}

// newBackchannelEnv is newEnv with both clients registered for
// back-channel logout at uri; the public client "cli" never signs in, so
// it must never receive a logout token.
func newBackchannelEnv(t *testing.T, uri string) (*env, *sentLogouts) {
	t.Helper()
	sent := &sentLogouts{}
	e := newEnv(t, func(o *Options) {
		for i := range o.Clients {
			o.Clients[i].BackchannelLogoutURI = uri
		}
		o.OnBackchannelLogout = sent.record
	})
	return e, sent
}

type logoutClaims struct {
	Issuer   string                     `json:"iss"`
	Subject  string                     `json:"sub"`
	SID      string                     `json:"sid"`
	JTI      string                     `json:"jti"`
	IssuedAt int64                      `json:"iat"`
	Expiry   int64                      `json:"exp"`
	Events   map[string]json.RawMessage `json:"events"`
	Nonce    *string                    `json:"nonce"`
}

// verifyLogoutToken checks a logout token as a relying party must (Back-
// Channel Logout 1.0, section 2.6): signature against the provider's JWKS,
// iss, aud and exp with go-oidc; typ, iat, jti, events and no nonce here.
func (e *env) verifyLogoutToken(t *testing.T, raw, clientID string) logoutClaims {
	t.Helper()
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("ParseSignedCompact(logout token) error = %v", err)
	}
	if typ := jws.Signatures[0].Header.ExtraHeaders[jose.HeaderType]; typ != "logout+jwt" {
		t.Errorf("logout token header typ = %v, want logout+jwt", typ)
	}
	idt, err := e.rp.Verifier(&oidc.Config{ClientID: clientID}).Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("Verify(logout token) error = %v", err)
	}
	var c logoutClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if c.Issuer != e.issuer {
		t.Errorf("iss = %q, want %q", c.Issuer, e.issuer)
	}
	if c.JTI == "" {
		t.Error("logout token has no jti")
	}
	if c.Nonce != nil {
		t.Errorf("logout token has a nonce %q, want none", *c.Nonce)
	}
	if c.IssuedAt == 0 || c.Expiry-c.IssuedAt != 120 {
		t.Errorf("iat, exp = %d, %d; want exp two minutes after iat", c.IssuedAt, c.Expiry)
	}
	if ev, ok := c.Events["http://schemas.openid.net/event/backchannel-logout"]; !ok || string(ev) != "{}" {
		t.Errorf("events = %v, want the back-channel logout event with {}", c.Events)
	}
	return c
}

func TestBackchannelLogoutAtEndSession(t *testing.T) {
	lr := startLogoutReceiver(t)
	e, sent := newBackchannelEnv(t, lr.srv.URL+"/backchannel")
	b := e.browser(t)
	tok, _ := e.signIn(t, b, "alice", "alice-pw")
	_, id := e.verifyIDToken(t, tok)
	idToken, _ := tok.Extra("id_token").(string)

	b.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	pg := get(t, b, e.issuer+"end_session?"+url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {signedOutURL}}.Encode())
	if pg.status != http.StatusFound || pg.location != signedOutURL {
		t.Fatalf("end_session = %d, Location %q; want 302 to %q", pg.status, pg.location, signedOutURL)
	}

	// Delivered before end_session answered: the relying party has ended
	// its session by the time the browser is back.
	got := lr.received()
	if len(got) != 1 {
		t.Fatalf("back-channel POSTs = %d, want 1", len(got))
	}
	if got[0].contentType != "application/x-www-form-urlencoded" {
		t.Errorf("Header(%q) = %q, want %q", "Content-Type", got[0].contentType, "application/x-www-form-urlencoded")
	}
	c := e.verifyLogoutToken(t, got[0].token, "app")
	if c.Subject != "user-alice" || c.SID != id.SID || c.SID == "" {
		t.Errorf("logout token sub, sid = %q, %q; want user-alice, %q", c.Subject, c.SID, id.SID)
	}
	if calls := sent.all(); !slices.Equal(calls, []sentLogout{{clientID: "app", token: got[0].token, status: http.StatusOK}}) {
		t.Errorf("OnBackchannelLogout calls = %d, want one for app with the token sent and status 200", len(calls))
	}
	// The token is for "app" only.
	if _, err := e.rp.Verifier(&oidc.Config{ClientID: "cli"}).Verify(context.Background(), got[0].token); err == nil {
		t.Error("logout token verifies with audience cli, want it for app only")
	}
	if logs := e.logs.String(); strings.Contains(logs, got[0].token) || !strings.Contains(logs, "back-channel logout sent") {
		t.Errorf("logs hold the token = %t, mention the delivery = %t; want false, true",
			strings.Contains(logs, got[0].token), strings.Contains(logs, "back-channel logout sent"))
	}
}

func TestEndSessions(t *testing.T) {
	lr := startLogoutReceiver(t)
	e, sent := newBackchannelEnv(t, lr.srv.URL+"/backchannel")
	var sids []string
	var toks []string
	for range 2 { // two browsers, two login sessions
		tok, _ := e.signIn(t, e.browser(t), "alice", "alice-pw")
		_, id := e.verifyIDToken(t, tok)
		sids = append(sids, id.SID)
		toks = append(toks, tok.RefreshToken)
	}
	bobTok, _ := e.signIn(t, e.browser(t), "bob", "bob-pw")

	if n := e.p.EndSessions("user-alice"); n != 2 {
		t.Fatalf("EndSessions(user-alice) = %d, want 2", n)
	}
	got := lr.received()
	if len(got) != 2 {
		t.Fatalf("back-channel POSTs = %d, want 2", len(got))
	}
	var gotSIDs, jtis []string
	for _, r := range got {
		c := e.verifyLogoutToken(t, r.token, "app")
		if c.Subject != "user-alice" {
			t.Errorf("logout token sub = %q, want user-alice", c.Subject)
		}
		gotSIDs, jtis = append(gotSIDs, c.SID), append(jtis, c.JTI)
	}
	slices.Sort(gotSIDs)
	slices.Sort(sids)
	if !slices.Equal(gotSIDs, sids) {
		t.Errorf("logout token sids = %q, want %q", gotSIDs, sids)
	}
	if jtis[0] == jtis[1] {
		t.Error("two logout tokens share a jti")
	}
	for _, s := range sent.all() {
		if s.clientID != "app" || s.status != http.StatusOK {
			t.Errorf("OnBackchannelLogout(%q, _, %d), want only app with 200", s.clientID, s.status)
		}
	}
	for i, rt := range toks {
		if _, err := refresh(e.app, rt); errorCode(err) != "invalid_grant" {
			t.Errorf("refresh in ended session %d: %v, want invalid_grant", i, err)
		}
	}
	if _, err := refresh(e.app, bobTok.RefreshToken); err != nil {
		t.Errorf("bob's refresh after alice's sessions ended: %v, want success", err)
	}
	if n := e.p.EndSessions("user-alice"); n != 0 || len(lr.received()) != 2 {
		t.Errorf("EndSessions again = %d with %d POSTs in all, want 0 and still 2", n, len(lr.received()))
	}
}

// Signing in again in the same browser ends the browser's earlier login
// session, and the client hears of it.
func TestBackchannelLogoutOnNewSignIn(t *testing.T) {
	lr := startLogoutReceiver(t)
	e, _ := newBackchannelEnv(t, lr.srv.URL+"/backchannel")
	b := e.browser(t)
	tok, _ := e.signIn(t, b, "alice", "alice-pw")
	_, first := e.verifyIDToken(t, tok)

	f := newFlow(e.app, oauth2.SetAuthURLParam("prompt", "login"))
	e.submitLogin(t, b, get(t, b, f.authURL), "bob", "bob-pw")
	got := lr.received()
	if len(got) != 1 {
		t.Fatalf("back-channel POSTs = %d, want 1", len(got))
	}
	if c := e.verifyLogoutToken(t, got[0].token, "app"); c.Subject != "user-alice" || c.SID != first.SID {
		t.Errorf("logout token sub, sid = %q, %q; want user-alice, %q", c.Subject, c.SID, first.SID)
	}
}

func TestBackchannelLogoutDeliveryFailures(t *testing.T) {
	refusing := startLogoutReceiver(t)
	refusing.status.Store(http.StatusBadRequest)
	gone := startLogoutReceiver(t)
	gone.srv.Close()
	tests := []struct {
		name       string
		uri        string
		wantStatus int
	}{
		{name: "client answers 400", uri: refusing.srv.URL + "/backchannel", wantStatus: http.StatusBadRequest},
		{name: "client unreachable", uri: gone.srv.URL + "/backchannel", wantStatus: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, sent := newBackchannelEnv(t, tt.uri)
			b := e.browser(t)
			tok, _ := e.signIn(t, b, "alice", "alice-pw")
			idToken, _ := tok.Extra("id_token").(string)
			b.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			pg := get(t, b, e.issuer+"end_session?"+url.Values{"id_token_hint": {idToken}}.Encode())
			if pg.status != http.StatusFound {
				t.Errorf("end_session = %d, want 302 whatever the client answered", pg.status)
			}
			if got := sent.all(); len(got) != 1 || got[0].status != tt.wantStatus || got[0].clientID != "app" {
				t.Fatalf("OnBackchannelLogout calls = %d, want one for app with status %d", len(got), tt.wantStatus)
			}
			if _, err := refresh(e.app, tok.RefreshToken); errorCode(err) != "invalid_grant" {
				t.Errorf("refresh after end_session: %v, want invalid_grant", err)
			}
			if logs := e.logs.String(); !strings.Contains(logs, "level=WARN") {
				t.Errorf("logs = %q, want a warning about the failed delivery", logs)
			}
		})
	}
}
