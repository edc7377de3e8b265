package proxy

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/authgate/authgate/session"
)

// streamCheckInterval is how often long-lived connections are checked
// against the revocation list and their session's expiry: a connection of a
// session that ends is closed within about this long.
const streamCheckInterval = time.Second

// isLongLived reports whether r may hold its connection open for long: a
// WebSocket (or other) upgrade, or an event stream. Only these are tracked,
// so that ordinary requests pay nothing for the tracking.
func isLongLived(r *http.Request) bool {
	if r.Header.Get("Upgrade") != "" {
		return true
	}
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(v, "text/event-stream") {
			return true
		}
	}
	return false
}

// streamTracker remembers the long-lived requests in flight with their
// sessions and cancels those whose session has been revoked or has expired.
// Cancelling the request context makes httputil.ReverseProxy close an
// upgraded connection and abandon a streaming response.
type streamTracker struct {
	revocations *session.RevocationList
	now         func() time.Time

	mu      sync.Mutex
	streams map[*trackedStream]struct{}
}

type trackedStream struct {
	s      *session.Session
	cancel context.CancelFunc
}

func newStreamTracker(revocations *session.RevocationList, now func() time.Time) *streamTracker {
	return &streamTracker{revocations: revocations, now: now, streams: make(map[*trackedStream]struct{})}
}

// track returns a context for r that is cancelled when s ends, and a
// function to call when the request is done.
func (t *streamTracker) track(ctx context.Context, s *session.Session) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	ts := &trackedStream{s: s, cancel: cancel}
	t.mu.Lock()
	t.streams[ts] = struct{}{}
	t.mu.Unlock()
	return ctx, func() {
		t.mu.Lock()
		delete(t.streams, ts)
		t.mu.Unlock()
		cancel()
	}
}

// sweep cancels every tracked stream whose session is revoked or expired and
// returns how many it cancelled.
func (t *streamTracker) sweep() int {
	now := t.now()
	var ended []*trackedStream
	t.mu.Lock()
	for ts := range t.streams {
		if !now.Before(ts.s.ExpiresAt) || t.revocations.Revoked(ts.s) {
			ended = append(ended, ts)
			delete(t.streams, ts)
		}
	}
	t.mu.Unlock()
	for _, ts := range ended {
		ts.cancel()
	}
	return len(ended)
}

// len reports how many streams are tracked.
func (t *streamTracker) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.streams)
}

// run sweeps every interval until ctx ends.
func (t *streamTracker) run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.sweep()
		}
	}
}
