package redisstore

import (
	"context"
	"errors"
	"net"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracerName is the instrumentation scope of this package's spans.
const tracerName = "github.com/authgate/authgate/session/redisstore"

// tracingHook makes a client span of each Redis command (and pipeline) run
// on behalf of a traced request. Commands without a recording span in
// their context (the revocation feed, sampled-out requests) cost one
// context lookup. Only the command's name is recorded: its arguments are
// keys and sealed sessions.
type tracingHook struct{ tracer trace.Tracer }

var _ redis.Hook = tracingHook{}

func (h tracingHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h tracingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !trace.SpanFromContext(ctx).IsRecording() {
			return next(ctx, cmd)
		}
		ctx, span := h.start(ctx, "redis "+cmd.Name(), attribute.String("db.operation.name", cmd.Name()))
		err := next(ctx, cmd)
		end(span, err)
		return err
	}
}

func (h tracingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !trace.SpanFromContext(ctx).IsRecording() {
			return next(ctx, cmds)
		}
		ctx, span := h.start(ctx, "redis pipeline", attribute.Int("db.operation.batch.size", len(cmds)))
		err := next(ctx, cmds)
		end(span, err)
		return err
	}
}

func (h tracingHook) start(ctx context.Context, name string, attr attribute.KeyValue) (context.Context, trace.Span) {
	return h.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system.name", "redis"), attr))
}

// end ends span; redis.Nil (no such key) is an answer, not a failure.
func end(span trace.Span, err error) {
	if err != nil && !errors.Is(err, redis.Nil) {
		msg := "redis error"
		if _, ok := errors.AsType[net.Error](err); ok {
			msg = "redis unreachable"
		}
		span.SetStatus(codes.Error, msg)
	}
	span.End()
}
