package redisstore

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/internal/redistest"
	"github.com/authgate/authgate/session"
)

func TestLockRefreshOneWinner(t *testing.T) {
	srv := redistest.Start(t)
	clk := newClock()
	replicas := []*Store{newStore(t, storeClient(t, srv), clk.Now), newStore(t, storeClient(t, srv), clk.Now)}
	ctx := context.Background()

	const n = 16
	var wins atomic.Int32
	var unlocks = make(chan func(), n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			unlock, ok, err := replicas[i%2].LockRefresh(ctx, "sess", time.Minute)
			if err != nil {
				t.Errorf("LockRefresh = %v", err)
				return
			}
			if ok {
				wins.Add(1)
				unlocks <- unlock
			}
		})
	}
	close(start)
	wg.Wait()
	if got := wins.Load(); got != 1 {
		t.Fatalf("%d of %d concurrent LockRefresh won, want exactly 1", got, n)
	}
	unlock := <-unlocks
	unlock()
	unlock() // harmless twice

	_, ok, err := replicas[1].LockRefresh(ctx, "sess", time.Minute)
	if !ok || err != nil {
		t.Errorf("LockRefresh after unlock = %v, %v; want true, nil", ok, err)
	}
	_, ok, err = replicas[0].LockRefresh(ctx, "other-sess", time.Minute)
	if !ok || err != nil {
		t.Errorf("LockRefresh(other session) = %v, %v; want true, nil", ok, err)
	}
}

func TestUnlockKeepsOthersLock(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv)
	clk := newClock()
	a := newStore(t, storeClient(t, srv), clk.Now)
	b := newStore(t, storeClient(t, srv), clk.Now)
	ctx := context.Background()

	unlockA, ok, err := a.LockRefresh(ctx, "sess", time.Minute)
	if !ok || err != nil {
		t.Fatalf("LockRefresh(a) = %v, %v", ok, err)
	}
	if pttl := raw.PTTL(ctx, a.lockKey("sess")).Val(); pttl <= 0 || pttl > time.Minute {
		t.Errorf("lock PTTL = %v, want (0, 1m]", pttl)
	}
	// a's lock runs out (as if a stalled past the TTL) and b takes it.
	raw.Del(ctx, a.lockKey("sess"))
	if _, ok, err := b.LockRefresh(ctx, "sess", time.Minute); !ok || err != nil {
		t.Fatalf("LockRefresh(b) = %v, %v", ok, err)
	}
	unlockA()
	if n := raw.Exists(ctx, a.lockKey("sess")).Val(); n != 1 {
		t.Error("a's late unlock released b's lock")
	}
}

func TestLockRefreshErrors(t *testing.T) {
	srv := redistest.Start(t)
	st := newStore(t, storeClient(t, srv), nil)
	tests := []struct {
		name string
		id   string
		ttl  time.Duration
	}{
		{name: "empty id", ttl: time.Second},
		{name: "brace", id: "a{b", ttl: time.Second},
		{name: "zero ttl", id: "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok, err := st.LockRefresh(context.Background(), tt.id, tt.ttl); ok || err == nil {
				t.Errorf("LockRefresh(%q, %v) = %v, %v; want false and an error", tt.id, tt.ttl, ok, err)
			}
		})
	}
}

func TestWaitForRefresh(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv)
	clk := newClock()
	ctx := context.Background()

	type result struct {
		s   *session.Session
		err error
	}
	tests := []struct {
		name string
		// holder runs on replica a while b waits; it gets the session and
		// the ticket cookies.
		holder  func(t *testing.T, a *Store, s *session.Session, cookies []*http.Cookie, unlock func())
		timeout time.Duration
		want    func(t *testing.T, r result, s *session.Session)
	}{
		{
			name: "refreshed",
			holder: func(t *testing.T, a *Store, s *session.Session, cookies []*http.Cookie, unlock func()) {
				// Let the waiter poll twice first, so it has to notice a
				// change rather than find it on its first read.
				redistest.Eventually(t, 10*time.Second, "waiter polls twice", func() bool {
					return lockPolls(raw) >= 2
				})
				next := *s
				next.AccessToken, next.RefreshToken = "access-2", "refresh-2"
				if err := a.Save(httptest.NewRecorder(), request(cookies), &next); err != nil {
					t.Errorf("Save = %v", err)
				}
				unlock()
			},
			timeout: 10 * time.Second,
			want: func(t *testing.T, r result, s *session.Session) {
				if r.err != nil || r.s.AccessToken != "access-2" || r.s.RefreshToken != "refresh-2" {
					t.Errorf("WaitForRefresh = %+v, %v; want the refreshed session", r.s, r.err)
				}
			},
		},
		{
			name:    "holder failed",
			holder:  func(t *testing.T, a *Store, s *session.Session, cookies []*http.Cookie, unlock func()) { unlock() },
			timeout: 10 * time.Second,
			want: func(t *testing.T, r result, s *session.Session) {
				if !errors.Is(r.err, ErrNotRefreshed) {
					t.Errorf("WaitForRefresh = %v, %v; want ErrNotRefreshed", r.s, r.err)
				}
			},
		},
		{
			name:    "timeout",
			holder:  func(t *testing.T, a *Store, s *session.Session, cookies []*http.Cookie, unlock func()) {},
			timeout: 3 * refreshPoll,
			want: func(t *testing.T, r result, s *session.Session) {
				if !errors.Is(r.err, ErrNotRefreshed) {
					t.Errorf("WaitForRefresh = %v, %v; want ErrNotRefreshed", r.s, r.err)
				}
			},
		},
		{
			name: "session ended",
			holder: func(t *testing.T, a *Store, s *session.Session, cookies []*http.Cookie, unlock func()) {
				if _, err := a.DeleteByIDPSession(ctx, s.IDPSessionID); err != nil {
					t.Errorf("DeleteByIDPSession = %v", err)
				}
			},
			timeout: 10 * time.Second,
			want: func(t *testing.T, r result, s *session.Session) {
				if !errors.Is(r.err, session.ErrNotFound) {
					t.Errorf("WaitForRefresh = %v, %v; want ErrNotFound", r.s, r.err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newStore(t, storeClient(t, srv), clk.Now)
			b := newStore(t, storeClient(t, srv), clk.Now)
			raw.ConfigResetStat(ctx)
			s := testSession("w-"+tt.name[:4], clk.Now())
			cookies := save(t, a, s, nil)

			unlock, ok, err := a.LockRefresh(ctx, s.ID, time.Minute)
			if !ok || err != nil {
				t.Fatalf("LockRefresh(a) = %v, %v", ok, err)
			}
			defer unlock()
			if _, ok, _ := b.LockRefresh(ctx, s.ID, time.Minute); ok {
				t.Fatal("b took the lock a holds")
			}
			done := make(chan result, 1)
			go func() {
				fresh, err := b.WaitForRefresh(ctx, request(cookies), s, tt.timeout)
				done <- result{fresh, err}
			}()
			tt.holder(t, a, s, cookies, unlock)
			tt.want(t, <-done, s)
		})
	}
}

func TestWaitForRefreshContext(t *testing.T) {
	srv := redistest.Start(t)
	clk := newClock()
	st := newStore(t, storeClient(t, srv), clk.Now)
	s := testSession("ctx", clk.Now())
	cookies := save(t, st, s, nil)
	if _, ok, err := st.LockRefresh(context.Background(), s.ID, time.Minute); !ok || err != nil {
		t.Fatalf("LockRefresh = %v, %v", ok, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := st.WaitForRefresh(ctx, request(cookies), s, time.Minute); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitForRefresh(canceled) = %v, want context.Canceled", err)
	}
	if _, err := st.WaitForRefresh(context.Background(), request(nil), s, time.Minute); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("WaitForRefresh(no ticket) = %v, want ErrNotFound", err)
	}
}

func TestClaimJTI(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv)
	a := newStore(t, storeClient(t, srv), nil)
	b := newStore(t, storeClient(t, srv), nil)
	ctx := context.Background()

	tests := []struct {
		name      string
		st        *Store
		jti       string
		wantFresh bool
	}{
		{name: "first", st: a, jti: "jti-1", wantFresh: true},
		{name: "replay same replica", st: a, jti: "jti-1"},
		{name: "replay other replica", st: b, jti: "jti-1"},
		{name: "another token", st: b, jti: "jti-2", wantFresh: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fresh, err := tt.st.ClaimJTI(ctx, tt.jti, 2*time.Minute)
			if fresh != tt.wantFresh || err != nil {
				t.Errorf("ClaimJTI(%q) = %v, %v; want %v, nil", tt.jti, fresh, err, tt.wantFresh)
			}
		})
	}
	if ttl := raw.TTL(ctx, a.jtiKey("jti-1")).Val(); ttl <= time.Minute || ttl > 2*time.Minute {
		t.Errorf("jti TTL = %v, want about 2m", ttl)
	}
	for _, bad := range []struct {
		jti string
		ttl time.Duration
	}{{"", time.Minute}, {"x", 0}} {
		if _, err := a.ClaimJTI(ctx, bad.jti, bad.ttl); err == nil {
			t.Errorf("ClaimJTI(%q, %v) = nil error, want an error", bad.jti, bad.ttl)
		}
	}
}

// lockPolls returns how many EXISTS commands Redis has run since the last
// CONFIG RESETSTAT: WaitForRefresh checks the lock with one per poll.
func lockPolls(raw *redis.Client) int {
	info := raw.Info(context.Background(), "commandstats").Val()
	_, rest, ok := strings.Cut(info, "cmdstat_exists:calls=")
	if !ok {
		return 0
	}
	n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
	return n
}
