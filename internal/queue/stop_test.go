package queue_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/jobs"
	"github.com/pipeline-dev/pipeline/internal/queue"
	"github.com/pipeline-dev/pipeline/internal/redistest"
)

// cpuTime is the CPU time (user and system) this process used so far.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestStopEndsTheFetchersBlockingReadAtOnce: taskq's only fetcher waits for messages in a
// blocking read of up to WaitTimeout (1 s), and taskq stops the fetcher before the workers, whose
// wait loop spins meanwhile (stop channel closed, workers not yet told to stop): 50 idle workers
// kept both cores busy for up to a second at every stop (about 1 s and 1 s of CPU per stop here).
// The read now ends as soon as the consumer's context does and the fetcher stops before taskq is
// told to, so a stop takes milliseconds and little CPU. Not parallel: the CPU time measured is
// the whole process's.
//
// Under the race detector the scheduler is randomized: taskq's own goroutine that ends the
// fetchers' stage may wait behind the workers woken by the stop, which then spin meanwhile (up to
// about a second seen), so there only the fetcher's prompt stop is checked.
func TestStopEndsTheFetchersBlockingReadAtOnce(t *testing.T) {
	rdb, prefix := redistest.New(t)
	ctx := t.Context()
	for round := range 3 {
		q := openOn(t, rdb, queue.Config{Prefix: prefix, Workers: 50})
		b := &jobs.Batch{ID: uuid.New()}
		_, err := q.EnqueueBatch(ctx, b, 1)
		require.NoError(t, err)
		handled := make(chan uuid.UUID, 1)
		consumeCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- q.Consume(consumeCtx, func(_ context.Context, id uuid.UUID) error {
				handled <- id
				return nil
			}, 5*time.Second)
		}()
		// Once the handler ran, the fetcher is back in its blocking read (the queue is empty).
		require.Equal(t, b.ID, <-handled)
		cpu0, t0 := cpuTime(t), time.Now()
		stop()
		select {
		case <-queue.FetcherStopped(q):
		case <-time.After(2 * time.Second):
			t.Fatal("the fetcher was never told to stop")
		}
		fetcher := time.Since(t0)
		require.NoError(t, <-done)
		took, cpu := time.Since(t0), cpuTime(t)-cpu0
		t.Logf("round %d: fetcher stopped after %s, stop took %s, %s of CPU", round, fetcher, took, cpu)
		require.Less(t, fetcher, 300*time.Millisecond, "the fetcher's blocking read outlived the consumer's context")
		if !raceEnabled {
			require.Less(t, took, 400*time.Millisecond, "the stop waited for the fetcher's blocking read")
			require.Less(t, cpu, 300*time.Millisecond, "the workers spun while the consumer stopped")
		}
	}
}
