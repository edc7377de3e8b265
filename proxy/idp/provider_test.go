package idp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/proxy/idp"
	"github.com/authgate/authgate/proxy/idp/idptest"
)

func TestNewValidates(t *testing.T) {
	valid := idp.Options{IssuerURL: "https://idp.example", ClientID: "c", RedirectURL: "https://app.example/cb"}
	tests := []struct {
		name    string
		edit    func(*idp.Options)
		wantErr string // substring; empty means valid
	}{
		{name: "valid", edit: func(*idp.Options) {}},
		{name: "no issuer", edit: func(o *idp.Options) { o.IssuerURL = "" }, wantErr: "issuer URL: empty"},
		{name: "relative issuer", edit: func(o *idp.Options) { o.IssuerURL = "idp.example" }, wantErr: "issuer URL"},
		{name: "ftp issuer", edit: func(o *idp.Options) { o.IssuerURL = "ftp://idp.example" }, wantErr: "issuer URL"},
		{name: "no client ID", edit: func(o *idp.Options) { o.ClientID = "" }, wantErr: "client ID is empty"},
		{name: "no redirect", edit: func(o *idp.Options) { o.RedirectURL = "/cb" }, wantErr: "redirect URL"},
		{name: "scopes without openid", edit: func(o *idp.Options) { o.Scopes = []string{"email"} }, wantErr: `lack "openid"`},
		{name: "retry min above max", edit: func(o *idp.Options) { o.DiscoveryRetryMin, o.DiscoveryRetryMax = time.Second, time.Millisecond }, wantErr: "exceeds max"},
		{name: "negative retry", edit: func(o *idp.Options) { o.DiscoveryRetryMin = -time.Second }, wantErr: "negative"},
		{name: "every problem at once", edit: func(o *idp.Options) { *o = idp.Options{} }, wantErr: "client ID is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := valid
			tt.edit(&opts)
			p, err := idp.New(opts)
			if tt.wantErr == "" {
				if err != nil || p == nil {
					t.Fatalf("New() = %v, %v, want a Provider", p, err)
				}
				if p.Ready() {
					t.Errorf("Ready() = true before Run, want false")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New() error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestNotReady(t *testing.T) {
	p, err := idp.New(idp.Options{IssuerURL: "http://127.0.0.1:1", ClientID: "c", RedirectURL: "http://127.0.0.1:1/cb"})
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	ctx := context.Background()
	if _, err := p.NewAuthRequest(); !errors.Is(err, idp.ErrNotReady) {
		t.Errorf("NewAuthRequest() error = %v, want ErrNotReady", err)
	}
	if _, _, err := p.Exchange(ctx, "code", "verifier", "nonce"); !errors.Is(err, idp.ErrNotReady) {
		t.Errorf("Exchange() error = %v, want ErrNotReady", err)
	}
	if _, err := p.Refresh(ctx, "rt", "sub"); !errors.Is(err, idp.ErrNotReady) {
		t.Errorf("Refresh() error = %v, want ErrNotReady", err)
	}
	if err := p.Revoke(ctx, "rt"); !errors.Is(err, idp.ErrNotReady) {
		t.Errorf("Revoke() error = %v, want ErrNotReady", err)
	}
	if u, ok := p.EndSessionURL("h", "", ""); ok || u != "" {
		t.Errorf("EndSessionURL() = %q, %t, want \"\", false", u, ok)
	}
}

// recordHandler passes records to a channel as well as to a text log.
type recordHandler struct {
	slog.Handler
	records chan<- slog.Record
}

// Handle never blocks: Run keeps logging while a test is not reading.
func (h recordHandler) Handle(ctx context.Context, r slog.Record) error {
	select {
	case h.records <- r.Clone():
	default:
	}
	return h.Handler.Handle(ctx, r)
}

func attrs(r slog.Record) map[string]string {
	m := map[string]string{}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.String()
		return true
	})
	return m
}

// TestDiscoveryDownThenUp: while discovery fails Ready stays false and each
// failure is logged with its attempt and next retry; once the provider
// answers, Run returns and Ready is true.
func TestDiscoveryDownThenUp(t *testing.T) {
	s := idptest.New(t, idptest.Options{DiscoveryFailures: 1 << 30})
	records := make(chan slog.Record, 1000)
	logs := &logBuffer{}
	p, err := idp.New(idp.Options{
		IssuerURL:         s.URL,
		ClientID:          s.ClientID,
		RedirectURL:       testRedirectURL,
		Logger:            slog.New(recordHandler{Handler: slog.NewTextHandler(logs, nil), records: records}),
		DiscoveryRetryMin: time.Millisecond,
		DiscoveryRetryMax: 4 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		p.Run(ctx)
		close(done)
	}()

	for attempt := 1; attempt <= 3; attempt++ {
		r := <-records
		a := attrs(r)
		if r.Level != slog.LevelWarn || a["attempt"] != fmt.Sprint(attempt) || !strings.Contains(a["error"], "503") {
			t.Fatalf("log %d = %s %q %v, want Warn with attempt=%d and the 503", attempt, r.Level, r.Message, a, attempt)
		}
		wait, err := time.ParseDuration(a["retry_in"])
		if err != nil || wait < time.Millisecond || wait > 4*time.Millisecond {
			t.Errorf("retry_in = %q, want within [1ms, 4ms]", a["retry_in"])
		}
		if p.Ready() {
			t.Fatalf("Ready() = true while discovery fails, want false")
		}
	}
	s.SetDiscoveryFailures(0)
	<-done
	if !p.Ready() {
		t.Fatalf("Ready() = false after the provider came up, want true")
	}
	var info string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "level=INFO") {
			info = line
		}
	}
	for _, want := range []string{
		"issuer=" + s.URL,
		"end_session_endpoint=true",
		"revocation_endpoint=true",
		"backchannel_logout_supported=true",
		"backchannel_logout_session_supported=true",
	} {
		if !strings.Contains(info, want) {
			t.Errorf("discovery log = %q, want it to contain %q", info, want)
		}
	}
	if _, err := p.NewAuthRequest(); err != nil {
		t.Errorf("NewAuthRequest() after discovery error = %v", err)
	}
}

// TestRunStopsWithContext: with the issuer unreachable, Run keeps retrying
// until its context ends, then returns with Ready false.
func TestRunStopsWithContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens here any more: connections are refused
	records := make(chan slog.Record, 1000)
	p, err := idp.New(idp.Options{
		IssuerURL:         "http://" + addr,
		ClientID:          "c",
		RedirectURL:       testRedirectURL,
		Logger:            slog.New(recordHandler{Handler: slog.NewTextHandler(io.Discard, nil), records: records}),
		DiscoveryRetryMin: time.Millisecond,
		DiscoveryRetryMax: 2 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		p.Run(ctx)
		close(done)
	}()
	for range 2 {
		if r := <-records; r.Level != slog.LevelWarn {
			t.Fatalf("log = %s %q, want a Warn about the failed discovery", r.Level, r.Message)
		}
	}
	cancel()
	<-done
	if p.Ready() {
		t.Errorf("Ready() = true with the issuer down, want false")
	}
}

func TestTokensRedacted(t *testing.T) {
	tok := idp.Tokens{AccessToken: "AT-secret", RefreshToken: "RT-secret", IDToken: "ID-secret", Expiry: time.Unix(0, 0)}
	logs := &logBuffer{}
	l := logs.logger()
	l.Info("value", "tokens", tok)
	l.Info("pointer", "tokens", &tok)
	printed := fmt.Sprintf("%v %+v %#v %s %v", tok, tok, tok, &tok, &tok)
	secrets := []string{tok.AccessToken, tok.RefreshToken, tok.IDToken}
	assertNoSecrets(t, "logs", logs.String(), secrets)
	assertNoSecrets(t, "fmt output", printed, secrets)
	if !strings.Contains(logs.String(), "tokens.access_token=true") {
		t.Errorf("logs = %q, want tokens.access_token=true", logs.String())
	}
}
