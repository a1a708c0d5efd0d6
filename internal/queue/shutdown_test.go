package queue_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/jobs"
	"github.com/pipeline-dev/pipeline/internal/queue"
	"github.com/pipeline-dev/pipeline/internal/redistest"
)

// TestStoppedConsumerGivesEveryMessageBack: a consumer stopped while its handlers work (a worker
// shutting down) must give back what it took: the messages its handlers were working on, and the
// one in taskq's buffer, which taskq hands to the handler after the stop with a cancelled
// context. taskq acknowledges or gives back with that context, and on Close deletes the consumer
// with whatever it still holds, so a message could be lost with its marker still set; the
// reconciler then trusted the marker until the batch was overdue (found by hand: a job took 10
// minutes after a restart). Every batch must come back to a new consumer by itself.
func TestStoppedConsumerGivesEveryMessageBack(t *testing.T) {
	t.Parallel()
	rdb, prefix := redistest.New(t)
	cfg := queue.Config{Prefix: prefix, Workers: 2, ReservationTimeout: time.Second}
	first := openOn(t, rdb, cfg)
	ctx := t.Context()
	var ids []uuid.UUID
	for range 6 {
		b := &jobs.Batch{ID: uuid.New()}
		_, err := first.EnqueueBatch(ctx, b, 1)
		require.NoError(t, err)
		ids = append(ids, b.ID)
	}

	// The first consumer takes messages and blocks on them until it is stopped.
	consumeCtx, stop := context.WithCancel(ctx)
	started := make(chan struct{}, len(ids))
	done := make(chan error, 1)
	go func() {
		done <- first.Consume(consumeCtx, func(ctx context.Context, _ uuid.UUID) error {
			started <- struct{}{}
			<-ctx.Done()
			return ctx.Err()
		}, 2*time.Second)
	}()
	<-started
	stop()
	require.NoError(t, <-done)
	require.NoError(t, first.Close()) // deletes its consumer from the stream's group, as a worker does

	// A second consumer gets every batch.
	second := openOn(t, rdb, queue.Config{Prefix: prefix, Workers: 2, ReservationTimeout: time.Second})
	var (
		mu   sync.Mutex
		seen = map[uuid.UUID]bool{}
	)
	consume2, stop2 := context.WithCancel(ctx)
	done2 := make(chan error, 1)
	go func() {
		done2 <- second.Consume(consume2, func(_ context.Context, id uuid.UUID) error {
			mu.Lock()
			seen[id] = true
			mu.Unlock()
			return nil
		}, 2*time.Second)
	}()
	defer func() { stop2(); require.NoError(t, <-done2) }()
	// Given back messages wait out taskq's retry backoff (1 s) and its delayed-message scheduler,
	// whose lock the closed queue may hold for up to a minute; well within the lease-based
	// recovery it replaces, which takes the overdue fallback (10 minutes) when a marker is left.
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == len(ids)
	}, 90*time.Second, 50*time.Millisecond, "a batch taken by the stopped consumer never came back")
}
