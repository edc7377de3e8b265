package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Bounds of one DeleteBySubject or DeleteByIDPSession: sessions are read
// from the index in batches, and the loop stops after maxDeleteBatches so
// a hostile or corrupt index cannot keep it running forever.
const (
	deleteBatch      = 256
	maxDeleteBatches = 1024
)

// DeleteBySubject deletes every session of the user sub (OpenID Connect
// Back-Channel Logout 1.0 §2.4, a logout token with only "sub") and
// returns how many existed. Sessions saved while it runs may survive; a
// logout token ends the sessions that existed when it was issued.
func (s *Store) DeleteBySubject(ctx context.Context, sub string) (int, error) {
	if sub == "" {
		return 0, errors.New("redisstore: delete by subject: empty subject")
	}
	n, err := s.deleteIndexed(ctx, s.subjectKey(sub))
	if err != nil {
		return n, fmt.Errorf("redisstore: delete by subject: %w", err)
	}
	return n, nil
}

// DeleteByIDPSession deletes every session created in the IdP session sid
// (the logout token's "sid" claim, Back-Channel Logout 1.0 §2.4) and
// returns how many existed.
func (s *Store) DeleteByIDPSession(ctx context.Context, sid string) (int, error) {
	if sid == "" {
		return 0, errors.New("redisstore: delete by idp session: empty sid")
	}
	n, err := s.deleteIndexed(ctx, s.idpSessionKey(sid))
	if err != nil {
		return n, fmt.Errorf("redisstore: delete by idp session: %w", err)
	}
	return n, nil
}

// deleteIndexed deletes the sessions listed in the index idx, a batch at a
// time, removing from idx exactly the members it has handled (never the
// whole key: a session indexed meanwhile must stay findable). Each command
// touches one key, so it works in Cluster, where a session's key and its
// index entries live in different slots.
func (s *Store) deleteIndexed(ctx context.Context, idx string) (int, error) {
	deleted := 0
	for range maxDeleteBatches {
		ids, err := s.client.ZRange(ctx, idx, 0, deleteBatch-1).Result()
		if err != nil {
			return deleted, fmt.Errorf("read index: %w", err)
		}
		if len(ids) == 0 {
			return deleted, nil
		}
		dels := make([]*redis.IntCmd, 0, len(ids))
		members := make([]any, 0, len(ids))
		_, err = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			s.cache.remove(ids...)
			for _, id := range ids {
				members = append(members, id)
				if validID(id) {
					dels = append(dels, p.Del(ctx, s.sessionKey(id)))
				}
			}
			return nil
		})
		if err != nil {
			return deleted, fmt.Errorf("delete sessions: %w", err)
		}
		for _, c := range dels {
			deleted += int(c.Val())
		}
		if err := s.client.ZRem(ctx, idx, members...).Err(); err != nil {
			return deleted, fmt.Errorf("remove index entries: %w", err)
		}
	}
	return deleted, fmt.Errorf("index still not empty after %d batches", maxDeleteBatches)
}

// ClaimJTI records the logout token ID jti for ttl and reports whether it
// was new. A token whose jti was already claimed, by this replica or any
// other, is a replay (Back-Channel Logout 1.0 §2.6 lets the receiver
// reject it). ttl should cover the token's lifetime: after it a replay
// fails the "iat"/"exp" checks instead.
func (s *Store) ClaimJTI(ctx context.Context, jti string, ttl time.Duration) (fresh bool, err error) {
	switch {
	case jti == "":
		return false, errors.New("redisstore: claim jti: empty jti")
	case ttl <= 0:
		return false, errors.New("redisstore: claim jti: ttl must be positive")
	}
	fresh, err = s.client.SetNX(ctx, s.jtiKey(jti), 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("redisstore: claim jti: %w", err)
	}
	return fresh, nil
}
