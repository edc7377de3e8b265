package proxy

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/authgate/authgate/session"
)

func TestStreamTrackerCancelsEndedSessions(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	revs := session.NewRevocationList(clock)
	tr := newStreamTracker(revs, clock)

	live := &session.Session{ID: "live", Subject: "a", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	revoked := &session.Session{ID: "revoked", Subject: "b", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	expiring := &session.Session{ID: "expiring", Subject: "c", IssuedAt: now, ExpiresAt: now.Add(time.Minute)}
	ctxLive, doneLive := tr.track(context.Background(), live)
	ctxRevoked, doneRevoked := tr.track(context.Background(), revoked)
	ctxExpiring, doneExpiring := tr.track(context.Background(), expiring)
	defer doneLive()
	defer doneRevoked()
	defer doneExpiring()

	if n := tr.sweep(); n != 0 {
		t.Fatalf("sweep with nothing ended cancelled %d", n)
	}
	revs.Add(session.Revocation{SessionID: "revoked", Until: now.Add(time.Hour)})
	if n := tr.sweep(); n != 1 || ctxRevoked.Err() == nil || ctxLive.Err() != nil {
		t.Fatalf("after revocation: cancelled %d, revoked ctx %v, live ctx %v", n, ctxRevoked.Err(), ctxLive.Err())
	}
	now = now.Add(2 * time.Minute)
	if n := tr.sweep(); n != 1 || ctxExpiring.Err() == nil || ctxLive.Err() != nil {
		t.Fatalf("after expiry: cancelled %d", n)
	}
	doneLive()
	if tr.len() != 0 {
		t.Errorf("tracked after done: %d", tr.len())
	}
}

func TestIsLongLived(t *testing.T) {
	for _, tt := range []struct {
		header map[string]string
		want   bool
	}{
		{map[string]string{"Upgrade": "websocket", "Connection": "Upgrade"}, true},
		{map[string]string{"Accept": "text/event-stream"}, true},
		{map[string]string{"Accept": "text/html"}, false},
		{nil, false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		for k, v := range tt.header {
			r.Header.Set(k, v)
		}
		if got := isLongLived(r); got != tt.want {
			t.Errorf("isLongLived(%v) = %v, want %v", tt.header, got, tt.want)
		}
	}
}
