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

// TestBusyHandlersDoNotCrashTheConsumer: while the only handler is busy for longer than 0.9 x
// ReservationTimeout, taskq's fetcher gives back a message it could not hand over. That used to
// panic in go-redis (nil context) and kill the worker process (found by the chaos suite); now
// the message goes back to the stream and every batch is delivered.
func TestBusyHandlersDoNotCrashTheConsumer(t *testing.T) {
	t.Parallel()
	rdb, prefix := redistest.New(t)
	q := openOn(t, rdb, queue.Config{Prefix: prefix, Workers: 1, ReservationTimeout: time.Second})
	ctx := t.Context()
	want := map[uuid.UUID]bool{}
	for range 3 {
		b := &jobs.Batch{ID: uuid.New()}
		_, err := q.EnqueueBatch(ctx, b, 1)
		require.NoError(t, err)
		want[b.ID] = true
	}

	var (
		mu   sync.Mutex
		seen = map[uuid.UUID]bool{}
		slow sync.Once
	)
	consumeCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- q.Consume(consumeCtx, func(ctx context.Context, id uuid.UUID) error {
			// The first batch keeps the one handler busy past the fetcher's 0.9 s: the next message
			// waits in taskq's buffer, and the one after it is released.
			slow.Do(func() {
				select {
				case <-ctx.Done():
				case <-time.After(1500 * time.Millisecond):
				}
			})
			mu.Lock()
			seen[id] = true
			mu.Unlock()
			return nil
		}, 5*time.Second)
	}()
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for id := range want {
			if !seen[id] {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond, "every batch delivered")
	stop()
	require.NoError(t, <-done)
}
