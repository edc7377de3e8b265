package redisstore

import (
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/redistest"
	"github.com/authgate/authgate/session"
)

// TestLocalCache: within CacheTTL a replica serves a session without
// reading Redis; Reload always reads it; after the TTL Load reads again and
// sees another replica's refresh; a delete on this replica is seen at once.
func TestLocalCache(t *testing.T) {
	srv := redistest.Start(t)
	clk := newClock()
	cached, err := New(Options{Client: storeClient(t, srv), Keys: testKeys, Now: clk.Now, CacheTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	other := newStore(t, storeClient(t, srv), clk.Now)
	s := testSession("c1", clk.Now())
	cookies := save(t, other, s, nil)
	if _, err := load(cached, cookies); err != nil {
		t.Fatalf("Load = %v", err)
	}

	// Another replica refreshes: within the TTL the cache serves the
	// previous tokens, Reload the new ones.
	next := *s
	next.AccessToken, next.RefreshToken = "access-token-2", "refresh-token-2"
	save(t, other, &next, cookies)
	got, err := load(cached, cookies)
	if err != nil || got.AccessToken != s.AccessToken {
		t.Fatalf("Load within the TTL = %v, %v; want the cached session", got, err)
	}
	got, err = cached.Reload(request(cookies))
	if err != nil || got.AccessToken != "access-token-2" {
		t.Fatalf("Reload = %v, %v; want the refreshed session", got, err)
	}

	// Redis goes away: Load answers from the cache until the TTL ends.
	srv.Kill()
	if _, err := load(cached, cookies); err != nil {
		t.Errorf("Load within the TTL with Redis down = %v, want the cached session", err)
	}
	clk.Add(2 * time.Second)
	if _, err := load(cached, cookies); err == nil || errors.Is(err, session.ErrNotFound) {
		t.Errorf("Load after the TTL with Redis down = %v, want an outage error", err)
	}
	srv.Restart()

	// A delete through the caching replica is seen at once.
	s2 := testSession("c2", clk.Now())
	cookies2 := save(t, cached, s2, nil)
	if _, err := load(cached, cookies2); err != nil {
		t.Fatalf("Load = %v", err)
	}
	if err := cached.Delete(httptest.NewRecorder(), request(cookies2), s2); err != nil {
		t.Fatal(err)
	}
	if _, err := load(cached, cookies2); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Load after Delete = %v, want ErrNotFound", err)
	}
}

// TestLocalCacheBound: the cache never holds more than maxCachedSessions.
func TestLocalCacheBound(t *testing.T) {
	now := time.Now()
	c := newLocalCache(time.Minute, func() time.Time { return now })
	for i := range 2 * maxCachedSessions {
		tk, err := newTicket(string(rune('a'+i%26))+time.Duration(i).String(), now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		c.put(tk, &session.Session{ID: tk.id})
	}
	if n := len(c.m); n > maxCachedSessions {
		t.Errorf("cache holds %d sessions, bound %d", n, maxCachedSessions)
	}
}
