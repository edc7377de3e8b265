package redisstore

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// SetClientLogger sends the go-redis client's own log lines (failed dials,
// Sentinel switching masters) to l at Info, instead of the standard
// library logger on stderr. go-redis keeps one logger per process, so this
// is global: call it once from main. The lines carry addresses, never
// passwords.
func SetClientLogger(l *slog.Logger) {
	redis.SetLogger(clientLogger{l})
}

type clientLogger struct{ l *slog.Logger }

func (c clientLogger) Printf(ctx context.Context, format string, v ...any) {
	c.l.LogAttrs(ctx, slog.LevelInfo, "redis client", slog.String(attrDetail, fmt.Sprintf(format, v...)))
}
