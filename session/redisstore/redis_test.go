package redisstore

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/internal/redistest"
)

// rawClient returns a plain go-redis client for srv (db 0), closed at
// cleanup; tests use it to look at what the store wrote.
func rawClient(t testing.TB, srv *redistest.Server) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { c.Close() })
	return c
}

// storeClient returns a client made by NewClient for srv, closed at
// cleanup.
func storeClient(t testing.TB, srv *redistest.Server) redis.UniversalClient {
	t.Helper()
	c, err := NewClient(ClientOptions{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
