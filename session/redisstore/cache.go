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
type localCache struct {
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[string]cachedSession
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

// get returns a copy of the cached session for t, if fresh.
func (c *localCache) get(t ticket) (*session.Session, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	e, ok := c.m[t.id]
	c.mu.Unlock()
	if !ok || e.key != t.key || !c.now().Before(e.until) {
		return nil, false
	}
	cp := *e.sess
	return &cp, true
}

// put remembers sess, opened or sealed with t's key. When the cache is full
// of fresh entries the session is not cached: a cache miss costs one read.
func (c *localCache) put(t ticket, sess *session.Session) {
	if c == nil {
		return
	}
	now := c.now()
	cp := *sess
	c.mu.Lock()
	defer c.mu.Unlock()
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
