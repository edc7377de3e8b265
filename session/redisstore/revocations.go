package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/session"
)

// Timing of the revocation feed.
const (
	// feedPing is how long Run waits for a message before it pings, and
	// then for the answer before it gives the connection up: a Redis that
	// vanished without closing the connection is noticed within twice
	// this.
	feedPing = 15 * time.Second
	// feedConfirm bounds the wait for the subscription to be confirmed.
	feedConfirm = 5 * time.Second
	// Backoff between reconnection attempts, doubling with jitter.
	feedMinBackoff = 100 * time.Millisecond
	feedMaxBackoff = 5 * time.Second
	// loadBatch is how many stored revocations one read returns.
	loadBatch = 1000
)

// Revocations shares a session.RevocationList between replicas through
// Redis: sign-outs and back-channel logouts end sessions on every replica,
// whatever the store. With the Redis store, its health also gates the
// Store's local cache (Options.Feed). Each revocation is stored in a
// sorted set until its Until, so replicas that start or reconnect later
// still learn it, and is published on a channel so running replicas learn
// it at once. Both use the key "<prefix>revocations". The zero value is
// not usable: use NewRevocations. A Revocations is safe for concurrent use.
type Revocations struct {
	client  redis.UniversalClient
	list    *session.RevocationList
	key     string
	log     *slog.Logger
	now     func() time.Time
	healthy atomic.Bool

	// mu orders changes of health with the watchers they are told to.
	mu       sync.Mutex
	watchers []func(healthy bool)
}

// NewRevocations returns a Revocations that adds what it learns to list.
// An empty prefix means DefaultPrefix; a nil logger means slog.Default().
// Call Run to start receiving.
func NewRevocations(client redis.UniversalClient, list *session.RevocationList, prefix string, logger *slog.Logger) *Revocations {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Revocations{client: client, list: list, key: prefix + "revocations", log: logger, now: time.Now}
}

// wireRevocation is the JSON form of a session.Revocation, in the sorted
// set and on the channel.
type wireRevocation struct {
	SessionID    string    `json:"session_id,omitempty"`
	IDPSessionID string    `json:"idp_session_id,omitempty"`
	Subject      string    `json:"sub,omitempty"`
	IssuedBefore time.Time `json:"issued_before,omitzero"`
	Until        time.Time `json:"until"`
}

func marshalRevocation(rev session.Revocation) ([]byte, error) {
	return json.Marshal(wireRevocation{
		SessionID:    rev.SessionID,
		IDPSessionID: rev.IDPSessionID,
		Subject:      rev.Subject,
		IssuedBefore: rev.IssuedBefore.UTC(),
		Until:        rev.Until.UTC(),
	})
}

func unmarshalRevocation(b []byte) (session.Revocation, error) {
	var w wireRevocation
	if err := json.Unmarshal(b, &w); err != nil {
		return session.Revocation{}, err
	}
	return session.Revocation{
		SessionID:    w.SessionID,
		IDPSessionID: w.IDPSessionID,
		Subject:      w.Subject,
		IssuedBefore: w.IssuedBefore,
		Until:        w.Until,
	}, nil
}

// Publish adds rev to the local list at once, stores it in Redis until
// rev.Until and publishes it to every replica running Run. A revocation
// without an identifier or already past its Until is only added locally
// (where the list ignores it). An error means Redis did not take it: it
// holds here but other replicas may not learn it.
func (v *Revocations) Publish(ctx context.Context, rev session.Revocation) error {
	v.list.Add(rev)
	now := v.now()
	if (rev.SessionID == "" && rev.IDPSessionID == "" && rev.Subject == "") || !rev.Until.After(now) {
		return nil
	}
	b, err := marshalRevocation(rev)
	if err != nil {
		return fmt.Errorf("redisstore: publish revocation: %w", err)
	}
	// Store before publishing: a replica that (re)subscribes reads the
	// set after subscribing, so it cannot miss an entry in between.
	err = indexScript.Eval(ctx, v.client, []string{v.key}, string(b),
		strconv.FormatInt(rev.Until.UnixMilli(), 10), strconv.FormatInt(now.UnixMilli(), 10)).Err()
	if err != nil {
		return fmt.Errorf("redisstore: store revocation: %w", err)
	}
	if err := v.client.Publish(ctx, v.key, b).Err(); err != nil {
		return fmt.Errorf("redisstore: publish revocation: %w", err)
	}
	return nil
}

// Healthy reports whether Run is subscribed and has loaded the stored
// revocations since it last (re)subscribed: while false, revocations
// published elsewhere may not have reached this replica yet, and a Store
// with this feed serves nothing from its cache.
func (v *Revocations) Healthy() bool { return v.healthy.Load() }

// setHealthy records the feed's health and, when it changed, tells every
// watcher before returning: a Store's cache is emptied before anything
// else can happen on this feed.
func (v *Revocations) setHealthy(healthy bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.healthy.Load() == healthy {
		return
	}
	v.healthy.Store(healthy)
	for _, w := range v.watchers {
		w(healthy)
	}
}

// watch calls f with the current health now and with every change later.
func (v *Revocations) watch(f func(healthy bool)) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.watchers = append(v.watchers, f)
	f(v.healthy.Load())
}

// Run receives revocations until ctx ends. It subscribes, then loads every
// stored revocation into the list (in that order, so none published in
// between is missed), then adds each published one. When Redis fails it
// resubscribes with backoff (100 ms doubling to 5 s) and reloads the
// stored revocations, so none published during the outage is lost.
func (v *Revocations) Run(ctx context.Context) {
	backoff := feedMinBackoff
	for {
		synced, err := v.follow(ctx)
		v.setHealthy(false)
		if ctx.Err() != nil {
			return
		}
		if synced {
			backoff = feedMinBackoff
		}
		// Full jitter keeps replicas from reconnecting in lockstep.
		wait := backoff/2 + rand.N(backoff/2+1)
		v.log.LogAttrs(ctx, slog.LevelWarn, "revocation feed interrupted; retrying",
			slog.String(attrError, err.Error()), slog.Duration(attrRetryIn, wait))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, feedMaxBackoff)
	}
}

// follow runs one subscription until it fails. synced reports whether it
// got as far as loading the stored revocations.
func (v *Revocations) follow(ctx context.Context) (synced bool, err error) {
	ps := v.client.Subscribe(ctx, v.key)
	defer ps.Close()
	// Closing the subscription is what interrupts a blocked receive.
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	defer stop()

	msg, err := ps.ReceiveTimeout(ctx, feedConfirm)
	if err != nil {
		return false, fmt.Errorf("subscribe: %w", err)
	}
	if _, ok := msg.(*redis.Subscription); !ok {
		return false, fmt.Errorf("subscribe: unexpected %T", msg)
	}
	if err := v.load(ctx); err != nil {
		return false, err
	}
	v.setHealthy(true)

	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, feedPing)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !pinged && ctx.Err() == nil {
				if err := ps.Ping(ctx); err != nil {
					return true, fmt.Errorf("ping: %w", err)
				}
				pinged = true
				continue
			}
			return true, fmt.Errorf("receive: %w", err)
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Message:
			rev, err := unmarshalRevocation([]byte(m.Payload))
			if err != nil {
				v.log.LogAttrs(ctx, slog.LevelWarn, "ignore malformed revocation message", slog.String(attrError, err.Error()))
				continue
			}
			v.list.Add(rev)
		case *redis.Subscription:
			// go-redis resubscribed on a new connection by itself (it
			// does so after a failed read, or when the server hands the
			// connection over): messages sent meanwhile were lost. Not
			// healthy until they are read back.
			if m.Kind == "subscribe" {
				v.setHealthy(false)
				if err := v.load(ctx); err != nil {
					return true, err
				}
				v.setHealthy(true)
			}
		}
	}
}

// load adds every stored revocation still in force to the list.
func (v *Revocations) load(ctx context.Context) error {
	from := strconv.FormatInt(v.now().UnixMilli(), 10)
	n := 0
	for offset := int64(0); ; offset += loadBatch {
		vals, err := v.client.ZRangeArgs(ctx, redis.ZRangeArgs{
			Key: v.key, ByScore: true, Start: "(" + from, Stop: "+inf", Offset: offset, Count: loadBatch,
		}).Result()
		if err != nil {
			return fmt.Errorf("load revocations: %w", err)
		}
		for _, s := range vals {
			rev, err := unmarshalRevocation([]byte(s))
			if err != nil {
				v.log.LogAttrs(ctx, slog.LevelWarn, "ignore malformed stored revocation", slog.String(attrError, err.Error()))
				continue
			}
			v.list.Add(rev)
			n++
		}
		if len(vals) < loadBatch {
			v.log.LogAttrs(ctx, slog.LevelDebug, "revocations loaded", slog.Int(attrLoaded, n))
			return nil
		}
	}
}
