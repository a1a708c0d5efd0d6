package queue

import (
	"context"
	"fmt"
	"time"

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

// XGroupDelConsumer gives back the messages the consumer still holds before deleting it from the
// group. taskq deletes its own consumer on Close, and other consumers that have been idle for
// hours; Redis forgets a deleted consumer's pending messages, so they would never be delivered
// again while their markers said they wait. A consumer holds messages after a stop when taskq
// could not acknowledge or give back what it took (the consumer's context was cancelled), or
// when a process died mid-batch and its consumer is cleaned up as a zombie. Each message goes
// back as a new stream entry, atomically with the removal of the old one.
func (c taskqRedis) XGroupDelConsumer(ctx context.Context, stream, group, consumer string) *redisv8.IntCmd {
	if err := c.giveBack(context.WithoutCancel(ctx), stream, group, consumer); err != nil {
		cmd := redisv8.NewIntCmd(ctx)
		cmd.SetErr(fmt.Errorf("queue: give back the messages of consumer %s: %w", consumer, err))
		return cmd // keep the consumer (and its messages) rather than lose them
	}
	return c.Client.XGroupDelConsumer(ctx, stream, group, consumer)
}

func (c taskqRedis) giveBack(ctx context.Context, stream, group, consumer string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		pending, err := c.XPendingExt(ctx, &redisv8.XPendingExtArgs{
			Stream: stream, Group: group, Start: "-", End: "+", Count: 100, Consumer: consumer,
		}).Result()
		if err != nil {
			return err
		}
		if len(pending) == 0 {
			return nil
		}
		for _, p := range pending {
			msgs, err := c.XRangeN(ctx, stream, p.ID, p.ID, 1).Result()
			if err != nil {
				return err
			}
			pipe := c.Client.TxPipeline()
			pipe.XAck(ctx, stream, group, p.ID)
			if len(msgs) == 1 {
				pipe.XDel(ctx, stream, p.ID)
				pipe.XAdd(ctx, &redisv8.XAddArgs{Stream: stream, Values: msgs[0].Values})
			}
			if _, err := pipe.Exec(ctx); err != nil {
				return err
			}
		}
	}
}

// commandCounter is a go-redis v8 hook that tells count how many commands each call sent.
type commandCounter struct{ count func(n int) }

func (c commandCounter) BeforeProcess(ctx context.Context, _ redisv8.Cmder) (context.Context, error) {
	c.count(1)
	return ctx, nil
}

func (commandCounter) AfterProcess(context.Context, redisv8.Cmder) error { return nil }

func (c commandCounter) BeforeProcessPipeline(ctx context.Context, cmds []redisv8.Cmder) (context.Context, error) {
	c.count(len(cmds))
	return ctx, nil
}

func (commandCounter) AfterProcessPipeline(context.Context, []redisv8.Cmder) error { return nil }
