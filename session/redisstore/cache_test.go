package redisstore

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/internal/redistest"
	"github.com/authgate/authgate/session"
)

// getCounter is a go-redis hook that counts GET commands: a Load that
// does not add one was served from the cache.
type getCounter struct{ n atomic.Int64 }

func (h *getCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *getCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "get" {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h *getCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// cachingReplica is one authgate process with the cache on: a Store and
// its revocation feed on one client, as cmd/authgate wires them.
type cachingReplica struct {
	st   *Store
	feed *Revocations
	list *session.RevocationList
	gets *getCounter
}

// startCachingReplica runs a replica on a client made from o until the
// test ends, and waits until its feed is healthy.
func startCachingReplica(t testing.TB, o ClientOptions, now func() time.Time, ttl time.Duration) *cachingReplica {
	t.Helper()
	c, err := NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	r := &cachingReplica{list: session.NewRevocationList(nil), gets: &getCounter{}}
	c.AddHook(r.gets)
	r.feed = NewRevocations(c, r.list, "", nil)
	if r.st, err = New(Options{Client: c, Keys: testKeys, Now: now, CacheTTL: ttl, Feed: r.feed}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.feed.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		c.Close()
	})
	redistest.Eventually(t, feedWait, "revocation feed healthy", r.feed.Healthy)
	return r
}

// loadCounting loads the session the cookies name and reports whether it
// read Redis to do so.
func (r *cachingReplica) loadCounting(cookies []*http.Cookie) (sess *session.Session, readRedis bool, err error) {
	before := r.gets.n.Load()
	sess, err = load(r.st, cookies)
	return sess, r.gets.n.Load() != before, err
}

// idOf names a session in a failure message without its tokens.
func idOf(s *session.Session) string {
	if s == nil {
		return "<nil>"
	}
	return s.ID
}

// TestLocalCache: within CacheTTL a replica serves a session without
// reading Redis; Reload always reads it; after the TTL Load reads again and
// sees another replica's refresh; a delete on this replica is seen at once;
// while Redis is down (the feed with it) nothing is served from the cache,
// and once Redis and the feed are back the cache is used again.
func TestLocalCache(t *testing.T) {
	srv := redistest.Start(t)
	clk := newClock()
	cached := startCachingReplica(t, ClientOptions{URL: srv.URL()}, clk.Now, time.Second)
	other := newStore(t, storeClient(t, srv), clk.Now)
	s := testSession("c1", clk.Now())
	cookies := save(t, other, s, nil)
	if _, read, err := cached.loadCounting(cookies); err != nil || !read {
		t.Fatalf("first Load = %v, read Redis %v; want a read", err, read)
	}
	if _, read, err := cached.loadCounting(cookies); err != nil || read {
		t.Fatalf("second Load = %v, read Redis %v; want the cached session", err, read)
	}

	// Another replica refreshes: within the TTL the cache serves the
	// previous tokens, Reload the new ones, and after the TTL Load too.
	next := *s
	next.AccessToken, next.RefreshToken = "access-token-2", "refresh-token-2"
	save(t, other, &next, cookies)
	got, err := load(cached.st, cookies)
	if err != nil || got.AccessToken != s.AccessToken {
		t.Fatalf("Load within the TTL = %v; want the cached session (same access token: %v)", err, got != nil && got.AccessToken == s.AccessToken)
	}
	got, err = cached.st.Reload(request(cookies))
	if err != nil || got.AccessToken != "access-token-2" {
		t.Fatalf("Reload = %v; want the refreshed session (got it: %v)", err, got != nil && got.AccessToken == "access-token-2")
	}
	clk.Add(1100 * time.Millisecond)
	got, read, err := cached.loadCounting(cookies)
	if err != nil || !read || got.AccessToken != "access-token-2" {
		t.Fatalf("Load after the TTL = %v, read Redis %v, refreshed %v; want the refreshed session, read", err, read, got != nil && got.AccessToken == "access-token-2")
	}

	// Redis goes away, and the feed with it: the cache is emptied at once,
	// so Load reports the outage instead of serving what it cached.
	srv.Kill()
	redistest.Eventually(t, feedWait, "feed notices Redis is gone", func() bool { return !cached.feed.Healthy() })
	if got, err := load(cached.st, cookies); err == nil || errors.Is(err, session.ErrNotFound) {
		t.Errorf("Load within the TTL with Redis down = session %s, %v; want an outage error, not the cached session", idOf(got), err)
	}
	srv.Restart()
	redistest.Eventually(t, feedWait, "feed back after the restart", cached.feed.Healthy)

	// A delete through the caching replica is seen at once; the cache is
	// in use again.
	s2 := testSession("c2", clk.Now())
	cookies2 := save(t, cached.st, s2, nil)
	if _, read, err := cached.loadCounting(cookies2); err != nil || read {
		t.Fatalf("Load after Save = %v, read Redis %v; want the cached session", err, read)
	}
	if err := cached.st.Delete(httptest.NewRecorder(), request(cookies2), s2); err != nil {
		t.Fatal(err)
	}
	if _, err := load(cached.st, cookies2); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Load after Delete = %v, want ErrNotFound", err)
	}
}

// TestCacheRefusesRevoked: with the default TTL (1s), a session another
// replica signs out of, or its IdP ends by back-channel logout, is not
// served from this replica's cache on the next Load, although the TTL has
// not run out (the test clock stands still).
func TestCacheRefusesRevoked(t *testing.T) {
	srv := redistest.Start(t)
	clk := newClock()
	a := startCachingReplica(t, ClientOptions{URL: srv.URL()}, clk.Now, time.Second)
	b := startCachingReplica(t, ClientOptions{URL: srv.URL()}, clk.Now, time.Second)
	ctx := context.Background()
	until := time.Now().Add(time.Hour)

	tests := []struct {
		name string
		id   string
		rev  func(s *session.Session) session.Revocation
	}{
		{name: "sign-out", id: "r1", rev: func(s *session.Session) session.Revocation {
			return session.Revocation{SessionID: s.ID, Until: until}
		}},
		{name: "back-channel logout by sid", id: "r2", rev: func(s *session.Session) session.Revocation {
			return session.Revocation{IDPSessionID: s.IDPSessionID, Until: until}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSession(tt.id, clk.Now())
			s.IDPSessionID = "idp-" + tt.id
			cookies := save(t, b.st, s, nil)
			load(a.st, cookies)
			if _, read, err := a.loadCounting(cookies); err != nil || read {
				t.Fatalf("Load = %v, read Redis %v; want the cached session", err, read)
			}
			// What the proxy does on replica b: revoke, then delete.
			rev := tt.rev(s)
			if err := b.feed.Publish(ctx, rev); err != nil {
				t.Fatal(err)
			}
			if err := b.st.Delete(httptest.NewRecorder(), request(cookies), s); err != nil {
				t.Fatal(err)
			}
			redistest.Eventually(t, feedWait, "revocation reaches a", func() bool { return a.list.Revoked(s) })
			if got, err := load(a.st, cookies); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("Load after the revocation = session %s, %v; want ErrNotFound", idOf(got), err)
			}
		})
	}
}

// TestCacheBypassedWhileFeedDown: when a replica's revocation feed is cut
// (here Redis drops its subscription: its user lost the channel
// permission) the cache is emptied at once and every Load reads Redis, so a
// session ended meanwhile, whose revocation this replica cannot hear, is
// not served; once the feed has resubscribed and caught up, the cache is
// used again.
func TestCacheBypassedWhileFeedDown(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv)
	ctx := context.Background()
	acl := func(rules ...any) {
		t.Helper()
		if err := raw.Do(ctx, append([]any{"ACL", "SETUSER", "replica-a"}, rules...)...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	acl("on", ">pw", "~*", "&*", "+@all")
	clk := newClock()
	a := startCachingReplica(t, ClientOptions{URL: "redis://replica-a:pw@" + srv.Addr()}, clk.Now, time.Second)
	b := startCachingReplica(t, ClientOptions{URL: srv.URL()}, clk.Now, time.Second)

	s1, s2 := testSession("f1", clk.Now()), testSession("f2", clk.Now())
	c1, c2 := save(t, b.st, s1, nil), save(t, b.st, s2, nil)
	for _, c := range [][]*http.Cookie{c1, c2} {
		load(a.st, c)
		if _, read, err := a.loadCounting(c); err != nil || read {
			t.Fatalf("Load before the cut = %v, read Redis %v; want the cached session", err, read)
		}
	}

	// Redis closes a's subscription and refuses new ones.
	acl("resetchannels")
	redistest.Eventually(t, feedWait, "a's feed notices the cut", func() bool { return !a.feed.Healthy() })
	for range 2 {
		if _, read, err := a.loadCounting(c1); err != nil || !read {
			t.Fatalf("Load with the feed down = %v, read Redis %v; want a read every time", err, read)
		}
	}
	// b ends s2: a does not hear the revocation, but does not serve s2.
	if err := b.feed.Publish(ctx, session.Revocation{SessionID: s2.ID, Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := b.st.Delete(httptest.NewRecorder(), request(c2), s2); err != nil {
		t.Fatal(err)
	}
	if a.list.Revoked(s2) {
		t.Fatal("a heard the revocation through a cut feed")
	}
	if got, err := load(a.st, c2); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Load of a session ended while the feed was down = session %s, %v; want ErrNotFound", idOf(got), err)
	}

	// The feed comes back, loads what it missed, and the cache serves again.
	acl("allchannels")
	redistest.Eventually(t, feedWait, "a's feed resubscribed", a.feed.Healthy)
	if !a.list.Revoked(s2) {
		t.Error("a did not load the revocation it missed")
	}
	if _, read, err := a.loadCounting(c1); err != nil || !read {
		t.Fatalf("first Load after the feed is back = %v, read Redis %v; want a read", err, read)
	}
	if _, read, err := a.loadCounting(c1); err != nil || read {
		t.Fatalf("second Load after the feed is back = %v, read Redis %v; want the cached session", err, read)
	}
}

// TestLocalCacheGenerations: a session read before the feed went down and
// came back is not cached afterwards, and nothing is cached or served
// while the feed is down.
func TestLocalCacheGenerations(t *testing.T) {
	now := time.Now()
	c := newLocalCache(time.Minute, func() time.Time { return now })
	tk, err := newTicket("g", now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	s := &session.Session{ID: "g"}
	c.put(tk, s, c.generation())
	if _, ok := c.get(tk); ok {
		t.Error("cached before the feed was ever healthy")
	}
	c.setLive(true)
	gen := c.generation()
	c.setLive(false)
	c.setLive(true)
	c.put(tk, s, gen)
	if _, ok := c.get(tk); ok {
		t.Error("a read that straddled an outage was cached")
	}
	c.put(tk, s, c.generation())
	if _, ok := c.get(tk); !ok {
		t.Fatal("not cached while healthy")
	}
	c.setLive(false)
	if _, ok := c.get(tk); ok || len(c.m) != 0 {
		t.Errorf("served or kept %d entries after the feed went down", len(c.m))
	}
}

// TestLocalCacheBound: the cache never holds more than maxCachedSessions.
func TestLocalCacheBound(t *testing.T) {
	now := time.Now()
	c := newLocalCache(time.Minute, func() time.Time { return now })
	c.setLive(true)
	for i := range 2 * maxCachedSessions {
		tk, err := newTicket(string(rune('a'+i%26))+time.Duration(i).String(), now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		c.put(tk, &session.Session{ID: tk.id}, c.generation())
	}
	if n := len(c.m); n > maxCachedSessions {
		t.Errorf("cache holds %d sessions, bound %d", n, maxCachedSessions)
	}
}
