package queue

import (
	"context"

	redisv8 "github.com/go-redis/redis/v8"
)

// taskqRedis is the Redis client handed to taskq. It works around a taskq v3.2.9 bug: when its
// fetcher holds a message no handler takes within 0.9 x ReservationTimeout (every handler busy
// with a long batch), it releases the message through a transaction pipeline executed with the
// message's context, which is nil for a message never handed to a handler; go-redis then
// dereferences the nil context and the whole worker process dies. Here a pipeline run with a
// nil context runs with context.Background(), so the message goes back to the stream as taskq
// intends.
type taskqRedis struct{ *redisv8.Client }

func (c taskqRedis) TxPipeline() redisv8.Pipeliner {
	return nilContextPipeline{c.Client.TxPipeline()}
}

type nilContextPipeline struct{ redisv8.Pipeliner }

func (p nilContextPipeline) Exec(ctx context.Context) ([]redisv8.Cmder, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	return p.Pipeliner.Exec(ctx)
}
