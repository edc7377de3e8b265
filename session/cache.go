package session

import (
	"hash/maphash"
	"slices"
	"strings"
	"sync"
)

// Bounds of openCache. A typical session cookie (three JWT-sized tokens) is
// about 3 KB and its decoded session about 2.3 KB, so 1 MiB holds roughly
// 200 recently seen sessions; a 40 KB ten-chunk cookie costs ~70 KB. The
// bound is kept small because the garbage collector lets the heap grow to
// about twice what is live, and authgate aims at a 24 MiB resident size
// (issue 12). A miss costs one AES-GCM open and a decode, a few µs.
const (
	cacheMaxBytes   = 1 << 20
	cacheMaxEntries = 4096
)

// openCache remembers sessions recently opened from exact cookie values, so
// a browser's burst of requests pays for base64, AES-GCM and decoding once.
// It holds at most cacheMaxEntries entries and cacheMaxBytes of cookie
// values plus decoded sessions, evicting arbitrary entries when full.
//
// Entries are found by a randomly seeded maphash of the cookie value and
// confirmed by comparing the whole value, so a hash collision can never
// return another browser's session. Cached sessions are never handed out:
// get returns a copy.
type openCache struct {
	seed maphash.Seed

	mu    sync.RWMutex
	m     map[uint64]cacheEntry
	bytes int
}

type cacheEntry struct {
	value string
	keys  *keySet // the key set that opened value
	sess  *Session
	size  int
}

func newOpenCache() *openCache {
	return &openCache{seed: maphash.MakeSeed(), m: make(map[uint64]cacheEntry)}
}

// get returns the session opened from value under the key set ks.
func (c *openCache) get(value string, ks *keySet) (*Session, bool) {
	h := maphash.String(c.seed, value)
	c.mu.RLock()
	e, ok := c.m[h]
	c.mu.RUnlock()
	if !ok || e.value != value || e.keys != ks {
		return nil, false
	}
	return e.sess, true
}

// put caches sess, opened from value under ks; size is the bytes sess
// refers to.
func (c *openCache) put(value string, ks *keySet, sess *Session, size int) {
	size += len(value)
	if size > cacheMaxBytes/16 {
		return // one huge cookie must not flush everyone else
	}
	h := maphash.String(c.seed, value)
	e := cacheEntry{value: strings.Clone(value), keys: ks, sess: sess, size: size}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[h]; ok {
		c.bytes -= old.size
		delete(c.m, h)
	}
	for k, old := range c.m { // map order is random: random eviction
		if c.bytes+size <= cacheMaxBytes && len(c.m) < cacheMaxEntries {
			break
		}
		c.bytes -= old.size
		delete(c.m, k)
	}
	c.m[h] = e
	c.bytes += size
}

func (c *openCache) remove(value string) {
	h := maphash.String(c.seed, value)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[h]; ok && e.value == value {
		c.bytes -= e.size
		delete(c.m, h)
	}
}

// clone returns a deep copy of s that shares only its (immutable) strings.
func (s *Session) clone() *Session {
	a := &sessionAlloc{s: *s}
	if s.EmailVerified != nil {
		a.emailVerified = *s.EmailVerified
		a.s.EmailVerified = &a.emailVerified
	}
	a.s.Groups = slices.Clone(s.Groups)
	return &a.s
}
