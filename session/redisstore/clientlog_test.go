package redisstore

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/redistest"
)

func TestSetClientLogger(t *testing.T) {
	var logs syncBuffer
	SetClientLogger(newLogger(&logs))
	t.Cleanup(func() { SetClientLogger(slog.New(slog.DiscardHandler)) })

	port := redistest.FreePort(t) // nothing listens there
	c, err := NewClient(ClientOptions{URL: "redis://:" + testPassword + "@127.0.0.1:" + strconv.Itoa(port)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err == nil {
		t.Fatal("PING to a closed port = nil error")
	}
	got := logs.String()
	if !strings.Contains(got, "msg=\"redis client\"") || !strings.Contains(got, "failed to dial") {
		t.Errorf("logs = %q, want the client's failed dial", got)
	}
	if strings.Contains(got, testPassword) {
		t.Errorf("logs = %q contain the password", got)
	}
}
