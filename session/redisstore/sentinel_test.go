package redisstore

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// failoverWait bounds a Sentinel failover: down-after 300 ms, then
// election and promotion, usually about a second.
const failoverWait = 30 * time.Second

func TestSentinelFailover(t *testing.T) {
	// No 5 s wait for more replicas before a diskless full sync.
	master := startRedis(t, "--repl-diskless-sync-delay", "0")
	replica := startRedis(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.port))
	ctx := context.Background()
	rawReplica := replica.client(t)
	eventually(t, failoverWait, "replica linked to master", func() bool {
		return strings.Contains(rawReplica.Info(ctx, "replication").Val(), "master_link_status:up")
	})
	sentinel := startSentinel(t, master)
	rawSentinel := redis.NewSentinelClient(&redis.Options{Addr: sentinel.addr()})
	t.Cleanup(func() { rawSentinel.Close() })
	eventually(t, failoverWait, "sentinel sees the replica", func() bool {
		replicas, err := rawSentinel.Replicas(ctx, "m").Result()
		if err != nil {
			return false
		}
		for _, r := range replicas {
			if r["port"] == strconv.Itoa(replica.port) && r["flags"] == "slave" {
				return true
			}
		}
		return false
	})

	c, err := NewClient(ClientOptions{Addrs: []string{sentinel.addr()}, SentinelMaster: "m"})
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
	// The write must reach the replica before the master dies (Redis
	// replication is asynchronous: WAIT makes it synchronous here).
	if n, err := c.Do(ctx, "WAIT", 1, 5000).Int(); n < 1 || err != nil {
		t.Fatalf("WAIT = %d, %v; want 1 replica", n, err)
	}

	master.kill()
	start := time.Now()
	eventually(t, failoverWait, "Load after failover", func() bool {
		_, err := load(st, cookies)
		return err == nil
	})
	t.Logf("sessions readable %v after the master died", time.Since(start).Round(time.Millisecond))

	addr, err := rawSentinel.GetMasterAddrByName(ctx, "m").Result()
	if err != nil || fmt.Sprint(addr) != fmt.Sprint([]string{"127.0.0.1", strconv.Itoa(replica.port)}) {
		t.Errorf("master after failover = %v, %v; want the replica on port %d", addr, err, replica.port)
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
