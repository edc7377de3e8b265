package redisstore

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/redistest"
)

// failoverWait bounds a Sentinel failover: down-after 300 ms, then
// election and promotion, usually about a second.
const failoverWait = 30 * time.Second

func TestSentinelFailover(t *testing.T) {
	set := redistest.StartSentinels(t)
	ctx := context.Background()

	c, err := NewClient(ClientOptions{Addrs: []string{set.Sentinel.Addr()}, SentinelMaster: set.Name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	clk := newClock()
	st := newStore(t, c, clk.Now)
	s := testSession("failover", clk.Now())
	cookies := save(t, st, s, nil)
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("Ping = %v", err)
	}
	// The write must reach the replica before the master dies.
	set.Replicate(t)

	set.Master.Kill()
	start := time.Now()
	redistest.Eventually(t, failoverWait, "Load after failover", func() bool {
		_, err := load(st, cookies)
		return err == nil
	})
	t.Logf("sessions readable %v after the master died", time.Since(start).Round(time.Millisecond))

	if addr, err := set.MasterAddr(); addr != set.Replica.Addr() || err != nil {
		t.Errorf("master after failover = %q, %v; want the replica %s", addr, err, set.Replica.Addr())
	}
	got, err := load(st, cookies)
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	sameSession(t, got, s)

	// The new master takes writes: a refresh, and a back-channel logout.
	next := *got
	next.AccessToken = "after-failover"
	if err := st.Save(httptest.NewRecorder(), request(cookies), &next); err != nil {
		t.Fatalf("Save after failover = %v", err)
	}
	if got, err := load(st, cookies); err != nil || got.AccessToken != "after-failover" {
		t.Errorf("Load after refresh = %v, %v; want the refreshed session", got, err)
	}
	if n, err := st.DeleteBySubject(ctx, s.Subject); n != 1 || err != nil {
		t.Errorf("DeleteBySubject = %d, %v; want 1, nil", n, err)
	}
}
