package redisstore

import (
	"sync"
	"time"

	"github.com/authgate/authgate/session"
)

// maxCachedSessions bounds the local cache: sessions are a few KB each, so
// the cache stays under about 4 MB.
const maxCachedSessions = 1024

// localCache keeps sessions this replica read or wrote for a short while,
// so that a browser's burst of requests (a page and its assets) costs one
// Redis read instead of one per request. Entries are keyed by session id
// and bound to the ticket key that opened them.
//
// The cache is only as safe as the revocation feed that tells this replica
// about sessions ended elsewhere, so it follows the feed's health (see
// Revocations.watch): while the feed is down it is empty, serves nothing
// and stores nothing. Each change of health starts a new generation; an
// entry is stored only if it was read within the current one, so a read
// that straddles an outage cannot land in the cache afterwards.
type localCache struct {
	ttl time.Duration
	now func() time.Time

	mu   sync.Mutex
	live bool   // the feed is subscribed and caught up
	gen  uint64 // incremented at every change of live
	m    map[string]cachedSession
}

type cachedSession struct {
	key   [32]byte
	sess  *session.Session
	until time.Time
}

func newLocalCache(ttl time.Duration, now func() time.Time) *localCache {
	if ttl <= 0 {
		return nil
	}
	return &localCache{ttl: ttl, now: now, m: make(map[string]cachedSession)}
}

// setLive is called by the revocation feed when its health changes. Either
// way the cache is emptied: on the way down because revocations may now be
// missed, on the way up because nothing from the outage may be reused.
func (c *localCache) setLive(live bool) {
	c.mu.Lock()
	c.live = live
	c.gen++
	clear(c.m)
	c.mu.Unlock()
}

// generation returns the current generation, to pass to put for a session
// about to be read or written.
func (c *localCache) generation() uint64 {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// get returns a copy of the cached session for t, if fresh and the feed is
// healthy.
func (c *localCache) get(t ticket) (*session.Session, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	e, ok := c.m[t.id]
	live := c.live
	c.mu.Unlock()
	if !live || !ok || e.key != t.key || !c.now().Before(e.until) {
		return nil, false
	}
	cp := *e.sess
	return &cp, true
}

// put remembers sess, opened or sealed with t's key, if the feed is healthy
// and has stayed so since gen (from generation, taken before Redis was
// asked). When the cache is full of fresh entries the session is not
// cached: a cache miss costs one read.
func (c *localCache) put(t ticket, sess *session.Session, gen uint64) {
	if c == nil {
		return
	}
	now := c.now()
	cp := *sess
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live || gen != c.gen {
		return
	}
	if _, present := c.m[t.id]; !present && len(c.m) >= maxCachedSessions {
		for id, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, id)
			}
		}
		if len(c.m) >= maxCachedSessions {
			return
		}
	}
	c.m[t.id] = cachedSession{key: t.key, sess: &cp, until: now.Add(c.ttl)}
}

// remove forgets the sessions with the given ids.
func (c *localCache) remove(ids ...string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	for _, id := range ids {
		delete(c.m, id)
	}
	c.mu.Unlock()
}
