package redisstore

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/redistest"
)

// BenchmarkLoad measures one Load (ticket open, GET over loopback, session
// open and decode) against a real redis-server.
func BenchmarkLoad(b *testing.B) {
	srv := redistest.Start(b)
	st := newStore(b, storeClient(b, srv), nil)
	cookies := save(b, st, testSession("bench", time.Now()), nil)
	r := request(cookies)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := st.Load(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadCached is BenchmarkLoad with the local cache on (1s, the
// default) and the revocation feed running: the session is served from
// memory after the first read, checked against the revocation list.
func BenchmarkLoadCached(b *testing.B) {
	srv := redistest.Start(b)
	r := startCachingReplica(b, ClientOptions{URL: srv.URL()}, nil, time.Second)
	cookies := save(b, r.st, testSession("bench", time.Now()), nil)
	req := request(cookies)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.st.Load(req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(r.gets.n.Load())/float64(b.N), "redis-gets/op")
}

// BenchmarkSaveRefresh measures a refresh Save that reuses the ticket:
// two index updates and one SET XX, no cookie.
func BenchmarkSaveRefresh(b *testing.B) {
	srv := redistest.Start(b)
	st := newStore(b, storeClient(b, srv), nil)
	s := testSession("bench", time.Now())
	cookies := save(b, st, s, nil)
	r := request(cookies)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		if err := st.Save(w, r, s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLockRefresh measures taking and releasing the refresh lock.
func BenchmarkLockRefresh(b *testing.B) {
	srv := redistest.Start(b)
	st := newStore(b, storeClient(b, srv), nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		unlock, ok, err := st.LockRefresh(ctx, "bench", time.Minute)
		if !ok || err != nil {
			b.Fatal(ok, err)
		}
		unlock()
	}
}
