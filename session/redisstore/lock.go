package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/session"
)

// refreshPoll is how often WaitForRefresh re-reads the session.
const refreshPoll = 50 * time.Millisecond

// unlockTimeout bounds the unlock command; if it fails the lock expires
// on its own at its TTL.
const unlockTimeout = 2 * time.Second

// ErrNotRefreshed is returned by WaitForRefresh when no other replica
// stored a refreshed session: the lock was released without one (that
// refresh failed) or the wait timed out.
var ErrNotRefreshed = errors.New("redisstore: session not refreshed")

// unlockScript deletes the lock only if it still holds our token, so a
// holder whose lock expired cannot release another replica's lock.
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`)

// LockRefresh takes the refresh lock of session sessionID for ttl, so that
// exactly one replica redeems the refresh token (a rotating IdP accepts it
// once). ok=false means another replica holds it. unlock releases the lock
// if it is still ours; it is safe to call more than once. err is a Redis
// failure.
//
// Intended use, on a session whose access token is due for refresh:
//
//	unlock, ok, err := store.LockRefresh(ctx, s.ID, 20*time.Second)
//	switch {
//	case err != nil: // Redis is down: answer 503, keep the session
//	case ok:         // refresh at the IdP, Save the result, then unlock()
//	default:         // another replica refreshes:
//		fresh, err := store.WaitForRefresh(ctx, r, s, 10*time.Second)
//		// err wrapping ErrNotRefreshed: that refresh failed or is slow;
//		// use s while its token is still valid, or try LockRefresh again.
//	}
//
// ttl should exceed the longest refresh call at the IdP: if it runs out, a
// second replica may redeem the same refresh token.
func (s *Store) LockRefresh(ctx context.Context, sessionID string, ttl time.Duration) (unlock func(), ok bool, err error) {
	switch {
	case !validID(sessionID):
		return nil, false, errors.New("redisstore: lock refresh: invalid session ID")
	case ttl <= 0:
		return nil, false, errors.New("redisstore: lock refresh: ttl must be positive")
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, false, fmt.Errorf("redisstore: lock refresh: read token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(b[:])
	key := s.lockKey(sessionID)
	ok, err = s.client.SetNX(ctx, key, token, ttl).Result()
	if err != nil {
		return nil, false, fmt.Errorf("redisstore: lock refresh: %w", err)
	}
	if !ok {
		return nil, false, nil
	}
	var once sync.Once
	unlock = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unlockTimeout)
			defer cancel()
			if err := unlockScript.Run(ctx, s.client, []string{key}, token).Err(); err != nil {
				s.log.LogAttrs(ctx, slog.LevelWarn, "release refresh lock; it expires on its own",
					slog.String(attrSessionID, sessionID), slog.String(attrError, err.Error()))
			}
		})
	}
	return unlock, true, nil
}

// WaitForRefresh waits until another replica has stored a refreshed
// version of old (a different access token, refresh token or expiry) and
// returns it. It re-reads Redis every 50 ms, up to timeout. It returns an
// error wrapping ErrNotRefreshed as soon as the refresh lock is released
// with no new session stored (the other replica's refresh failed), or at
// timeout; an error wrapping session.ErrNotFound when the session was
// deleted meanwhile (it was ended: log in again); ctx's error when ctx
// ends; and any other error when Redis cannot be read.
//
// r must carry the ticket of old: its key opens the stored session.
func (s *Store) WaitForRefresh(ctx context.Context, r *http.Request, old *session.Session, timeout time.Duration) (*session.Session, error) {
	if old == nil {
		return nil, errors.New("redisstore: wait for refresh: nil session")
	}
	t, ok := s.readTicket(r)
	if !ok || t.id != old.ID {
		return nil, session.ErrNotFound
	}
	key, lock := s.sessionKey(t.id), s.lockKey(t.id)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(refreshPoll)
	defer tick.Stop()
	for {
		// Read the lock before the session, in one round trip (both keys
		// share a hash slot). The holder saves before it unlocks, so a
		// lock already gone and a session still old means no refreshed
		// session is coming.
		var held *redis.IntCmd
		var get *redis.StringCmd
		gen := s.cache.generation()
		_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			held = p.Exists(ctx, lock)
			get = p.Get(ctx, key)
			return nil
		})
		switch {
		case ctx.Err() != nil:
			return nil, fmt.Errorf("redisstore: wait for refresh: %w", ctx.Err())
		case errors.Is(err, redis.Nil) && held.Err() == nil:
			return nil, errGone
		case err != nil:
			return nil, fmt.Errorf("redisstore: wait for refresh: %w", err)
		}
		sess, err := s.open(t, get.Val())
		if err != nil {
			return nil, err
		}
		if refreshed(old, sess) {
			s.cache.put(t, sess, gen)
			return sess, nil
		}
		if held.Val() == 0 {
			return nil, fmt.Errorf("%w: lock released without a new session", ErrNotRefreshed)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("redisstore: wait for refresh: %w", ctx.Err())
		case <-deadline.C:
			return nil, fmt.Errorf("%w: gave up after %v", ErrNotRefreshed, timeout)
		case <-tick.C:
		}
	}
}

// refreshed reports whether next carries different tokens than old.
func refreshed(old, next *session.Session) bool {
	return next.AccessToken != old.AccessToken ||
		next.RefreshToken != old.RefreshToken ||
		!next.Expiry.Equal(old.Expiry)
}
