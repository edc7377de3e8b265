package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/internal/redistest"
	"github.com/authgate/authgate/session"
)

func TestCluster(t *testing.T) {
	nodes := redistest.StartCluster(t, 3)
	ctx := context.Background()
	clk := newClock()
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.Addr())
	}
	newClusterStore := func(o ClientOptions) *Store {
		c, err := NewClient(o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, ok := c.(*redis.ClusterClient); !ok {
			t.Fatalf("NewClient = %T, want *redis.ClusterClient", c)
		}
		return newStore(t, c, clk.Now)
	}
	a := newClusterStore(ClientOptions{Addrs: addrs, Cluster: true})
	b := newClusterStore(ClientOptions{URL: "redis://" + addrs[1], Cluster: true}) // one seed node

	if err := a.Ping(ctx); err != nil {
		t.Fatalf("Ping = %v", err)
	}

	// Sessions of one user spread over every node; the index is one key.
	const n = 24
	cookies := make([][]*http.Cookie, n)
	sessions := make([]*session.Session, n)
	for i := range n {
		s := testSession(fmt.Sprintf("c%02d", i), clk.Now())
		s.Subject = "carol"
		s.IDPSessionID = fmt.Sprintf("sid-%d", i%3)
		sessions[i] = s
		cookies[i] = save(t, a, s, nil)
	}
	for _, node := range nodes {
		if k := rawClient(t, node).DBSize(ctx).Val(); k == 0 {
			t.Errorf("node %s holds no keys, want sessions spread over every node", node.Addr())
		}
	}
	for i, s := range sessions {
		got, err := load(b, cookies[i])
		if err != nil {
			t.Fatalf("Load(%s) on other replica = %v", s.ID, err)
		}
		sameSession(t, got, s)
	}

	// Refresh lock and waiting, in one slot per session.
	s := sessions[0]
	unlock, ok, err := a.LockRefresh(ctx, s.ID, time.Minute)
	if !ok || err != nil {
		t.Fatalf("LockRefresh = %v, %v", ok, err)
	}
	if _, ok, err := b.LockRefresh(ctx, s.ID, time.Minute); ok || err != nil {
		t.Errorf("second LockRefresh = %v, %v; want false, nil", ok, err)
	}
	next := *s
	next.AccessToken = "cluster-refreshed"
	if err := a.Save(httptest.NewRecorder(), request(cookies[0]), &next); err != nil {
		t.Fatalf("Save = %v", err)
	}
	unlock()
	if got, err := b.WaitForRefresh(ctx, request(cookies[0]), s, 10*time.Second); err != nil || got.AccessToken != "cluster-refreshed" {
		t.Errorf("WaitForRefresh = %v, %v; want the refreshed session", got, err)
	}

	if fresh, err := a.ClaimJTI(ctx, "cluster-jti", time.Minute); !fresh || err != nil {
		t.Errorf("ClaimJTI = %v, %v; want true, nil", fresh, err)
	}
	if fresh, err := b.ClaimJTI(ctx, "cluster-jti", time.Minute); fresh || err != nil {
		t.Errorf("ClaimJTI replay = %v, %v; want false, nil", fresh, err)
	}

	// Back-channel logout across slots.
	if got, err := b.DeleteByIDPSession(ctx, "sid-1"); got != n/3 || err != nil {
		t.Errorf("DeleteByIDPSession = %d, %v; want %d, nil", got, err, n/3)
	}
	if got, err := a.DeleteBySubject(ctx, "carol"); got != n-n/3 || err != nil {
		t.Errorf("DeleteBySubject = %d, %v; want %d, nil", got, err, n-n/3)
	}
	for i := range n {
		if _, err := load(a, cookies[i]); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Load(%s) after logout = %v, want ErrNotFound", sessions[i].ID, err)
		}
	}

	// Shared revocations through the cluster's pub/sub.
	listA, listB := session.NewRevocationList(nil), session.NewRevocationList(nil)
	revA, revB := NewRevocations(a.client, listA, "", nil), NewRevocations(b.client, listB, "", nil)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { revB.Run(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	redistest.Eventually(t, feedWait, "feed healthy", revB.Healthy)
	if err := revA.Publish(ctx, session.Revocation{SessionID: "x", Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatalf("Publish = %v", err)
	}
	redistest.Eventually(t, feedWait, "revocation delivered", func() bool { return listB.Revoked(&session.Session{ID: "x"}) })

	// One master dies (no replica to fail over to): readiness fails and
	// no load reports a session as missing.
	live := make([][]*http.Cookie, n)
	for i := range n {
		live[i] = save(t, a, testSession(fmt.Sprintf("d%02d", i), clk.Now()), nil)
	}
	nodes[2].Kill()
	if err := a.Ping(ctx); err == nil {
		t.Error("Ping with a master down = nil, want an error")
	}
	failed := 0
	for i := range n {
		_, err := load(b, live[i])
		if errors.Is(err, session.ErrNotFound) {
			t.Errorf("Load(d%02d) with a master down = %v, want success or a non-ErrNotFound error", i, err)
		}
		if err != nil {
			failed++
		}
	}
	if failed == 0 {
		t.Error("every Load succeeded with a master down, want those on the dead node to fail")
	}
}
