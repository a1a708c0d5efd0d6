package queue_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/jobs"
	"github.com/pipeline-dev/pipeline/internal/queue"
	"github.com/pipeline-dev/pipeline/internal/redistest"
)

func open(t *testing.T) *queue.Queue {
	t.Helper()
	rdb, prefix := redistest.New(t)
	return openOn(t, rdb, queue.Config{Prefix: prefix, Workers: 2})
}

// openOn opens a queue with cfg on the test's Redis (cfg.Prefix from redistest.New).
func openOn(t *testing.T, rdb *redis.Client, cfg queue.Config) *queue.Queue {
	t.Helper()
	prefix := cfg.Prefix
	cfg.RedisURL = redistest.URL()
	q, err := queue.Open(cfg, rdb)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, q.Close())
		// taskq's keys are named taskq:{<queue>}:..., outside the test's prefix.
		keys, _ := rdb.Keys(context.Background(), "taskq:{"+prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	})
	return q
}

func TestDeliversEveryBatchAndClearsMarkers(t *testing.T) {
	t.Parallel()
	q := open(t)
	ctx := t.Context()

	want := map[uuid.UUID]bool{}
	for range 5 {
		b := &jobs.Batch{ID: uuid.New()}
		id, err := q.EnqueueBatch(ctx, b, 1)
		require.NoError(t, err)
		require.Equal(t, b.ID.String()+"/1", id)
		has, err := q.HasMessage(ctx, b.ID)
		require.NoError(t, err)
		require.True(t, has, "a waiting message has a marker")
		want[b.ID] = true
	}

	var (
		mu  sync.Mutex
		got = map[uuid.UUID]int{}
	)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- q.Consume(cctx, func(_ context.Context, id uuid.UUID) error {
			mu.Lock()
			defer mu.Unlock()
			got[id]++
			return nil
		}, 5*time.Second)
	}()
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == len(want)
	}, 10*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)

	for id := range want {
		require.Positive(t, got[id])
		has, err := q.HasMessage(ctx, id)
		require.NoError(t, err)
		require.False(t, has, "a delivered message has no marker")
	}
	n, err := q.Len()
	require.NoError(t, err)
	require.Zero(t, n, "a handled message is deleted from the stream")
}

func TestReenqueueIsNeverDeduplicated(t *testing.T) {
	t.Parallel()
	q := open(t)
	ctx := t.Context()
	b := &jobs.Batch{ID: uuid.New()}
	for n := 1; n <= 3; n++ {
		_, err := q.EnqueueBatch(ctx, b, n)
		require.NoError(t, err)
	}
	n, err := q.Len()
	require.NoError(t, err)
	require.Equal(t, 3, n, "three enqueues of one batch are three messages")
}

func TestRetriesAHandlerError(t *testing.T) {
	t.Parallel()
	q := open(t)
	ctx := t.Context()
	b := &jobs.Batch{ID: uuid.New()}
	_, err := q.EnqueueBatch(ctx, b, 1)
	require.NoError(t, err)

	var (
		mu    sync.Mutex
		calls int
	)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- q.Consume(cctx, func(context.Context, uuid.UUID) error {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if calls == 1 {
				return context.DeadlineExceeded // e.g. Postgres was briefly away
			}
			return nil
		}, 5*time.Second)
	}()
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return calls >= 2
	}, 15*time.Second, 20*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
}

// TestFetcherCountsTheSlotsAtWork: the count of free slots that sizes the fetcher's reads
// falls by one for every message a slot works on and rises again once it is handled.
func TestFetcherCountsTheSlotsAtWork(t *testing.T) {
	t.Parallel()
	rdb, prefix := redistest.New(t)
	q := openOn(t, rdb, queue.Config{Prefix: prefix, Workers: 3})
	ctx := t.Context()
	require.Equal(t, -1, queue.FreeSlots(q), "no count before the consumer starts")

	started, release := make(chan uuid.UUID, 2), make(chan struct{})
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- q.Consume(cctx, func(_ context.Context, id uuid.UUID) error {
			started <- id
			<-release
			return nil
		}, 5*time.Second)
	}()
	require.Eventually(t, func() bool { return queue.FreeSlots(q) == 3 }, 5*time.Second, time.Millisecond)
	for range 2 {
		_, err := q.EnqueueBatch(ctx, &jobs.Batch{ID: uuid.New()}, 1)
		require.NoError(t, err)
	}
	<-started
	<-started
	require.Equal(t, 1, queue.FreeSlots(q), "two slots at work, one free")
	close(release)
	require.Eventually(t, func() bool { return queue.FreeSlots(q) == 3 }, 5*time.Second, time.Millisecond, "both slots free once their messages are handled")
	cancel()
	require.NoError(t, <-done)
}
