package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pipeline-dev/pipeline/internal/metrics"
)

// taskq's keys and consumer group for a lane (see redisq: "taskq:{<queue>}:stream").
func (q *Queue) streamKey(name string) string { return "taskq:{" + q.cfg.Prefix + name + "}:stream" }
func (q *Queue) zsetKey(name string) string   { return "taskq:{" + q.cfg.Prefix + name + "}:zset" }

const streamGroup = "taskq"

// Stats reads how many messages wait, are in flight and are delayed, and the age of the oldest
// waiting and in-flight message, in a handful of O(1) or O(log n) Redis commands. taskq deletes
// a message from the stream when it is acknowledged, so the stream holds exactly the waiting
// and in-flight messages; the consumer group's pending list holds the in-flight ones. Ages
// come from stream ids (the time a message entered the stream) against Redis's own clock.
// With the express lane on, counts add up over both lanes and ages are the older of the two.
func (q *Queue) Stats(ctx context.Context) (metrics.QueueStats, error) {
	var sum metrics.QueueStats
	for _, l := range q.lanes {
		st, err := q.laneStats(ctx, l.name)
		if err != nil {
			return sum, err
		}
		sum.Waiting += st.Waiting
		sum.InFlight += st.InFlight
		sum.Delayed += st.Delayed
		sum.OldestWaiting = max(sum.OldestWaiting, st.OldestWaiting)
		sum.OldestInFlight = max(sum.OldestInFlight, st.OldestInFlight)
	}
	return sum, nil
}

func (q *Queue) laneStats(ctx context.Context, name string) (metrics.QueueStats, error) {
	var st metrics.QueueStats
	pipe := q.rdb.Pipeline()
	now := pipe.Time(ctx)
	xlen := pipe.XLen(ctx, q.streamKey(name))
	delayed := pipe.ZCard(ctx, q.zsetKey(name))
	groups := pipe.XInfoGroups(ctx, q.streamKey(name))
	oldest := pipe.XRangeN(ctx, q.streamKey(name), "-", "+", 1)
	_, _ = pipe.Exec(ctx) // errors are read per command below
	if err := firstErr(now.Err(), xlen.Err(), delayed.Err()); err != nil {
		return st, fmt.Errorf("queue stats: %w", err)
	}
	st.Delayed = delayed.Val()
	total := xlen.Val()
	if total == 0 {
		return st, nil
	}
	var group *redis.XInfoGroup
	switch err := groups.Err(); {
	case err == nil:
		for i := range groups.Val() {
			if groups.Val()[i].Name == streamGroup {
				group = &groups.Val()[i]
			}
		}
	case strings.Contains(err.Error(), "no such key"):
	default:
		return st, fmt.Errorf("queue stats: %w", err)
	}
	if group == nil { // no consumer has ever read the stream: everything waits
		st.Waiting = total
		if err := oldest.Err(); err != nil {
			return st, fmt.Errorf("queue stats: %w", err)
		}
		st.OldestWaiting = ageOf(oldest.Val(), now.Val())
		return st, nil
	}
	st.InFlight = min(group.Pending, total)
	st.Waiting = total - st.InFlight

	pipe = q.rdb.Pipeline()
	var pending *redis.XPendingCmd
	if st.InFlight > 0 {
		pending = pipe.XPending(ctx, q.streamKey(name), streamGroup)
	}
	var waiting *redis.XMessageSliceCmd
	if st.Waiting > 0 {
		waiting = pipe.XRangeN(ctx, q.streamKey(name), "("+group.LastDeliveredID, "+", 1)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return st, fmt.Errorf("queue stats: %w", err)
	}
	if pending != nil {
		st.OldestInFlight = ageOfID(pending.Val().Lower, now.Val())
	}
	if waiting != nil {
		st.OldestWaiting = ageOf(waiting.Val(), now.Val())
	}
	return st, nil
}

func firstErr(errList ...error) error {
	for _, err := range errList {
		if err != nil {
			return err
		}
	}
	return nil
}

func ageOf(msgs []redis.XMessage, now time.Time) time.Duration {
	if len(msgs) == 0 {
		return 0
	}
	return ageOfID(msgs[0].ID, now)
}

// ageOfID is how long ago a stream id ("<unix ms>-<seq>") was made.
func ageOfID(id string, now time.Time) time.Duration {
	ms, _, _ := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return 0
	}
	return max(now.Sub(time.UnixMilli(n)), 0)
}
