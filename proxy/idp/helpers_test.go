package idp_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/proxy/idp"
)

// logBuffer collects everything a Provider logs, at every level.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// assertNoSecrets fails when any of secrets appears in text.
func assertNoSecrets(t *testing.T, what, text string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s contain a token (%.12s…):\n%s", what, s, text)
		}
	}
}

// startProvider creates a Provider, runs discovery and waits for it.
func startProvider(t *testing.T, opts idp.Options) *idp.Provider {
	t.Helper()
	if opts.DiscoveryRetryMin == 0 {
		opts.DiscoveryRetryMin = time.Millisecond
		opts.DiscoveryRetryMax = 5 * time.Millisecond
	}
	p, err := idp.New(opts)
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p.Run(ctx)
	if !p.Ready() {
		t.Fatalf("Ready() = false after Run, want true")
	}
	return p
}

// noRedirects is a client that stops at the first redirect.
func noRedirects(c *http.Client) *http.Client {
	cp := *c
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}
