// Package redisstore keeps sessions in Redis (standalone, Sentinel or
// Cluster), so that any number of authgate replicas share one truth: a
// refresh on one replica, a sign-out or a back-channel logout is seen by
// every other at its next request.
//
// The browser's cookie holds only a ticket: the session ID and a random
// per-session key, sealed with the configured keys. Redis holds the session
// sealed with that per-session key, so neither a dump of Redis nor the
// configured keys alone open a session.
//
// Keys (Prefix defaults to "authgate:"; the braces are a Cluster hash tag
// that keeps one session's keys in one slot):
//
//	authgate:{<session id>}:s     sealed session, expires with the session
//	authgate:{<session id>}:lock  refresh lock (LockRefresh)
//	authgate:sub:<hash of sub>    sorted set of session IDs by expiry
//	authgate:sid:<hash of sid>    sorted set of session IDs by expiry
//	authgate:jti:<hash of jti>    logout tokens seen (ClaimJTI)
//	authgate:revocations          shared revocations (Revocations)
//
// Subjects, IdP session IDs and token IDs are hashed in key names, so a
// dump does not list who is signed in.
package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/session"
)

// DefaultPrefix starts every key the store writes when Options.Prefix is
// empty.
const DefaultPrefix = "authgate:"

// Errors wrapping session.ErrNotFound, for the ways a ticket can point at
// nothing usable.
var (
	errGone    = fmt.Errorf("%w: session not in redis", session.ErrNotFound)
	errExpired = fmt.Errorf("%w: session expired", session.ErrNotFound)
	errTicket  = fmt.Errorf("%w: ticket does not match the session", session.ErrNotFound)
	// errDeleted is returned by Save when the session was deleted (sign-out,
	// back-channel logout) while a refresh was under way: the refresh must
	// not bring it back.
	errDeleted = fmt.Errorf("%w: session was deleted during the update", session.ErrNotFound)
)

// Options configures a Store. The zero value is not valid: Client and Keys
// are required; every other field has a default.
type Options struct {
	// Client talks to Redis; see NewClient. Required. The Store does not
	// close it.
	Client redis.UniversalClient
	// Cookie names the ticket cookie and its attributes. Its Now is
	// replaced by the store's.
	Cookie session.CookieOptions
	// Keys seal the ticket cookie; see session.NewSealer. The first key
	// seals, every key opens. Required unless Sealer is set.
	Keys [][]byte
	// Sealer, when set, seals the ticket cookie instead of a Sealer built
	// from Keys; share one whose keys rotate (session.Sealer.SetKeys).
	Sealer *session.Sealer
	// Prefix starts every Redis key; empty means DefaultPrefix. Replicas
	// that share sessions must use the same prefix.
	Prefix string
	// Now returns the current time, for expiry; nil means time.Now.
	Now func() time.Time
	// Logger receives warnings the caller cannot see otherwise (an unlock
	// that failed); nil means slog.Default().
	Logger *slog.Logger
	// CacheTTL is how long this replica reuses a session it has read or
	// written without reading Redis again, so that a burst of requests costs
	// one read; zero reads Redis on every Load. Within it, a session another
	// replica refreshed is served with its previous tokens (still valid: a
	// refresh happens before expiry). Sessions are ended by revoking them
	// (sign-out, back-channel logout), and a cached session that Feed's list
	// revokes is never served: Load reads Redis instead. The cache serves
	// and stores sessions only while Feed is healthy, and is emptied the
	// moment Feed drops, so a session ended while this replica could not
	// hear it is read from Redis again. A replica whose feed is cut off
	// without noticing may serve a session it read less than CacheTTL ago.
	// Reload always reads Redis. A CacheTTL above zero requires Feed.
	CacheTTL time.Duration
	// Feed is this replica's revocation feed (its Run must be running),
	// which gates the cache; see CacheTTL. Unused when CacheTTL is zero.
	Feed *Revocations
}

// Store is a session.Store in Redis. Load reads Redis unless the session is
// in the short local cache (Options.CacheTTL); Reload always reads it. The
// zero value is not usable: use New. A Store is safe for concurrent use.
type Store struct {
	client  redis.UniversalClient
	cache   *localCache
	revoked func(*session.Session) bool // Feed's list, for cache hits
	cookies *session.Cookies
	sealer  *session.Sealer
	prefix  string
	now     func() time.Time
	log     *slog.Logger
}

var _ session.Store = (*Store)(nil)

// New returns a Store for o, or an error when the client is missing or the
// cookie options or keys are invalid. It does not contact Redis.
func New(o Options) (*Store, error) {
	if o.Client == nil {
		return nil, errors.New("redisstore: Options.Client is required")
	}
	if err := o.Cookie.Validate(); err != nil {
		return nil, fmt.Errorf("check cookie options: %w", err)
	}
	sealer := o.Sealer
	if sealer == nil {
		var err error
		if sealer, err = session.NewSealer(o.Keys); err != nil {
			return nil, fmt.Errorf("create ticket sealer: %w", err)
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.CacheTTL > 0 && o.Feed == nil {
		return nil, errors.New("redisstore: Options.CacheTTL needs Options.Feed: the cache is only safe while revocations arrive")
	}
	o.Cookie.Now = o.Now
	s := &Store{
		client:  o.Client,
		cache:   newLocalCache(o.CacheTTL, o.Now),
		cookies: session.NewCookies(o.Cookie),
		sealer:  sealer,
		prefix:  o.Prefix,
		now:     o.Now,
		log:     o.Logger,
	}
	if s.cache != nil {
		s.revoked = o.Feed.list.Revoked
		o.Feed.watch(s.cache.setLive)
	}
	return s, nil
}

// Cookies returns the ticket cookie, so the proxy can strip it from
// requests sent upstream.
func (s *Store) Cookies() *session.Cookies { return s.cookies }

// Load returns the session r's ticket points at, read from Redis. A
// missing, tampered or expired ticket, a session Redis no longer holds and
// a value that does not open all return errors wrapping
// session.ErrNotFound. Any other error means Redis could not answer
// (refused, timed out, failing over): the caller should answer 503 and
// keep the cookie, because the session is probably still there.
func (s *Store) Load(r *http.Request) (*session.Session, error) {
	t, ok := s.readTicket(r)
	if !ok {
		return nil, session.ErrNotFound
	}
	if t.expires <= s.now().Unix() {
		return nil, errExpired
	}
	if sess, ok := s.cache.get(t); ok {
		if !s.revoked(sess) {
			return sess, nil
		}
		// Ended elsewhere: Redis has the truth (usually: gone).
		s.cache.remove(t.id)
	}
	return s.fetch(r, t)
}

// Reload is Load without the local cache: it always reads Redis. The
// refresh path uses it once it holds the session's lock, to see whether
// another replica has refreshed already.
func (s *Store) Reload(r *http.Request) (*session.Session, error) {
	t, ok := s.readTicket(r)
	if !ok {
		return nil, session.ErrNotFound
	}
	if t.expires <= s.now().Unix() {
		return nil, errExpired
	}
	return s.fetch(r, t)
}

// fetch reads and opens the session t names, and caches it.
func (s *Store) fetch(r *http.Request, t ticket) (*session.Session, error) {
	gen := s.cache.generation()
	v, err := s.client.Get(r.Context(), s.sessionKey(t.id)).Result()
	if errors.Is(err, redis.Nil) {
		s.cache.remove(t.id)
		return nil, errGone
	}
	if err != nil {
		return nil, fmt.Errorf("redisstore: load session: %w", err)
	}
	sess, err := s.open(t, v)
	if err != nil {
		return nil, err
	}
	s.cache.put(t, sess, gen)
	return sess, nil
}

// Save writes sess to Redis, sealed with its ticket's key, to expire at
// sess.ExpiresAt. When r already carries a ticket for sess.ID (a refresh),
// its key is kept and no cookie is written unless ExpiresAt moved; the
// update then only applies if the session still exists, so a refresh
// racing a sign-out or back-channel logout cannot bring the session back
// (that case returns an error wrapping session.ErrNotFound). Otherwise a
// new ticket with a fresh key is written to w. A session already expired
// is deleted instead.
//
// The session's entries in the subject and IdP-session indexes are written
// before the session, so every session in Redis can be found by
// DeleteBySubject and DeleteByIDPSession. Save runs to completion even if
// the client goes away: the refreshed tokens may be the only valid ones.
func (s *Store) Save(w http.ResponseWriter, r *http.Request, sess *session.Session) error {
	switch {
	case sess == nil:
		return errors.New("redisstore: save nil session")
	case sess.ExpiresAt.IsZero():
		return errors.New("redisstore: save session without ExpiresAt")
	case !validID(sess.ID):
		return errors.New("redisstore: save session: ID must be 1 to 256 bytes without braces")
	}
	now := s.now()
	ttl := sess.ExpiresAt.Sub(now)
	if ttl < time.Millisecond { // SET PX needs at least 1
		return s.Delete(w, r, sess)
	}
	ctx := context.WithoutCancel(r.Context())

	// update: r carries this session's ticket, so the session exists (or
	// existed) and its key is kept. writeCookie: the browser needs a new
	// ticket, because the key is new or the expiry moved.
	t, update := s.readTicket(r)
	update = update && t.id == sess.ID
	writeCookie := !update || t.expires != sess.ExpiresAt.Unix()
	if update {
		t.expires = sess.ExpiresAt.Unix()
	} else {
		var err error
		if t, err = newTicket(sess.ID, sess.ExpiresAt); err != nil {
			return fmt.Errorf("redisstore: save session: %w", err)
		}
	}
	gen := s.cache.generation()
	if err := s.index(ctx, sess, now); err != nil {
		return fmt.Errorf("redisstore: save session: %w", err)
	}
	key := s.sessionKey(sess.ID)
	sealer, err := session.NewSealer([][]byte{t.key[:]})
	if err != nil {
		return fmt.Errorf("redisstore: save session: %w", err)
	}
	value, err := sealer.Seal(key, session.Encode(sess))
	if err != nil {
		return fmt.Errorf("redisstore: save session: %w", err)
	}
	if update {
		ok, err := s.client.SetXX(ctx, key, value, ttl).Result()
		if err != nil {
			return fmt.Errorf("redisstore: save session: %w", err)
		}
		if !ok {
			return fmt.Errorf("redisstore: save session: %w", errDeleted)
		}
	} else if err := s.client.Set(ctx, key, value, ttl).Err(); err != nil {
		return fmt.Errorf("redisstore: save session: %w", err)
	}
	s.cache.put(t, sess, gen)
	if !writeCookie {
		return nil
	}
	cookie, err := s.sealer.Seal(s.cookies.Name(), t.marshal())
	if err != nil {
		return fmt.Errorf("redisstore: seal ticket: %w", err)
	}
	if err := s.cookies.Write(w, r, cookie, sess.ExpiresAt); err != nil {
		return fmt.Errorf("redisstore: write ticket: %w", err)
	}
	return nil
}

// Delete clears the ticket cookie, then deletes the session and its index
// entries from Redis. sess may be nil: then the session the ticket names
// is deleted. The cookie is cleared even when Redis fails; the error is
// returned so the caller can log it (the session then lives until its
// expiry, but the browser no longer has its ticket).
func (s *Store) Delete(w http.ResponseWriter, r *http.Request, sess *session.Session) error {
	s.cookies.Clear(w, r)
	var id, sub, sid string
	if sess != nil {
		id, sub, sid = sess.ID, sess.Subject, sess.IDPSessionID
	} else if t, ok := s.readTicket(r); ok {
		id = t.id
	}
	if !validID(id) {
		return nil
	}
	s.cache.remove(id)
	ctx := context.WithoutCancel(r.Context())
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.sessionKey(id))
		if sub != "" {
			p.ZRem(ctx, s.subjectKey(sub), id)
		}
		if sid != "" {
			p.ZRem(ctx, s.idpSessionKey(sid), id)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redisstore: delete session: %w", err)
	}
	return nil
}

// Ping reports whether Redis answers, for a readiness probe. With Cluster
// every master must answer: a session may live on any of them.
func (s *Store) Ping(ctx context.Context) error {
	var err error
	if c, ok := s.client.(*redis.ClusterClient); ok {
		err = c.ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error {
			return c.Ping(ctx).Err()
		})
	} else {
		err = s.client.Ping(ctx).Err()
	}
	if err != nil {
		return fmt.Errorf("redisstore: ping: %w", err)
	}
	return nil
}

// readTicket opens r's ticket cookie.
func (s *Store) readTicket(r *http.Request) (ticket, bool) {
	v, ok := s.cookies.Read(r)
	if !ok {
		return ticket{}, false
	}
	pt, err := s.sealer.Open(s.cookies.Name(), v)
	if err != nil {
		return ticket{}, false
	}
	return unmarshalTicket(pt)
}

// open unseals and decodes the value stored for t. Every failure wraps
// session.ErrNotFound: a value that does not open under the ticket's key
// was not written for this ticket.
func (s *Store) open(t ticket, value string) (*session.Session, error) {
	sealer, err := session.NewSealer([][]byte{t.key[:]})
	if err != nil {
		return nil, fmt.Errorf("redisstore: open session: %w", err)
	}
	pt, err := sealer.Open(s.sessionKey(t.id), value)
	if err != nil {
		return nil, err
	}
	sess, err := session.Decode(pt)
	if err != nil {
		return nil, err
	}
	if sess.ID != t.id {
		return nil, errTicket
	}
	if !sess.ExpiresAt.After(s.now()) {
		return nil, errExpired
	}
	return sess, nil
}

// indexScript adds a session to one index (a sorted set scored by session
// expiry in Unix milliseconds), drops members already expired, and lets
// the set expire with its longest-lived member. One key, so it runs in
// Cluster.
//
// KEYS[1] index; ARGV[1] session ID; ARGV[2] expiry ms; ARGV[3] now ms.
var indexScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local ttl = tonumber(top[2]) - tonumber(ARGV[3])
if ttl < 1 then ttl = 1 end
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
`)

// index records sess under its subject and IdP session.
func (s *Store) index(ctx context.Context, sess *session.Session, now time.Time) error {
	var keys []string
	if sess.Subject != "" {
		keys = append(keys, s.subjectKey(sess.Subject))
	}
	if sess.IDPSessionID != "" {
		keys = append(keys, s.idpSessionKey(sess.IDPSessionID))
	}
	if len(keys) == 0 {
		return nil
	}
	exp := strconv.FormatInt(sess.ExpiresAt.UnixMilli(), 10)
	nowMs := strconv.FormatInt(now.UnixMilli(), 10)
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			indexScript.Eval(ctx, p, []string{k}, sess.ID, exp, nowMs)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index session: %w", err)
	}
	return nil
}

func (s *Store) sessionKey(id string) string { return s.prefix + "{" + id + "}:s" }
func (s *Store) lockKey(id string) string    { return s.prefix + "{" + id + "}:lock" }
func (s *Store) subjectKey(sub string) string {
	return s.prefix + "sub:" + hashName("sub", sub)
}
func (s *Store) idpSessionKey(sid string) string {
	return s.prefix + "sid:" + hashName("sid", sid)
}
func (s *Store) jtiKey(jti string) string { return s.prefix + "jti:" + hashName("jti", jti) }

// hashName returns base64url(SHA-256(kind, 0, v)): a fixed-length key part
// that names v without showing it.
func hashName(kind, v string) string {
	h := sha256.New()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(v))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}
