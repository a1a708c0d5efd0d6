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

// A small job's batch takes the express lane and is handled while every bulk slot is busy with
// bulk batches that wait; big jobs' batches stay in bulk; both lanes count in Len, Stats and
// HasMessage; and the command counter hears taskq's client.
func TestExpressLaneOvertakesBulk(t *testing.T) {
	t.Parallel()
	rdb, prefix := redistest.New(t)
	var mu sync.Mutex
	commands := 0
	q := openOn(t, rdb, queue.Config{Prefix: prefix, Workers: 1, ExpressMaxDocuments: 2,
		Commands: func(n int) { mu.Lock(); commands += n; mu.Unlock() }})
	ctx := t.Context()
	docs := func(n int) []uuid.UUID {
		ids := make([]uuid.UUID, n)
		for i := range ids {
			ids[i] = uuid.New()
		}
		return ids
	}
	bulk := []*jobs.Batch{
		{ID: uuid.New(), Seq: 0, DocumentIDs: docs(3)}, // a big job's first batch
		{ID: uuid.New(), Seq: 1, DocumentIDs: docs(1)}, // a big job's small last batch
	}
	small := &jobs.Batch{ID: uuid.New(), Seq: 0, DocumentIDs: docs(2)}
	for _, b := range bulk {
		_, err := q.EnqueueBatch(ctx, b, 1)
		require.NoError(t, err)
	}
	_, err := q.EnqueueBatch(ctx, small, 1)
	require.NoError(t, err)
	for _, name := range []string{queue.Name, queue.ExpressName} {
		n, err := rdb.XLen(ctx, "taskq:{"+prefix+name+"}:stream").Result()
		require.NoError(t, err)
		require.EqualValues(t, map[string]int{queue.Name: 2, queue.ExpressName: 1}[name], n, name)
	}
	n, err := q.Len()
	require.NoError(t, err)
	require.Equal(t, 3, n)
	st, err := q.Stats(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 3, st.Waiting)
	has, err := q.HasMessage(ctx, small.ID)
	require.NoError(t, err)
	require.True(t, has)

	release := make(chan struct{})
	handled := make(chan uuid.UUID, 3)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- q.Consume(cctx, func(ctx context.Context, id uuid.UUID) error {
			if id != small.ID {
				select { // the bulk slot stays busy until the small job is handled
				case <-release:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			handled <- id
			return nil
		}, 5*time.Second)
	}()
	select {
	case id := <-handled:
		require.Equal(t, small.ID, id, "the small job goes first")
	case <-time.After(10 * time.Second):
		t.Fatal("the small job waited behind the bulk batches")
	}
	close(release)
	for range bulk {
		select {
		case <-handled:
		case <-time.After(10 * time.Second):
			t.Fatal("a bulk batch was not handled")
		}
	}
	cancel()
	require.NoError(t, <-done)
	mu.Lock()
	defer mu.Unlock()
	require.Positive(t, commands)
}

// A message sent again for a small job's batch (a repair or a duplicate) goes to bulk.
func TestExpressLaneOnlyFirstMessages(t *testing.T) {
	t.Parallel()
	rdb, prefix := redistest.New(t)
	q := openOn(t, rdb, queue.Config{Prefix: prefix, Workers: 1, ExpressMaxDocuments: 2})
	small := &jobs.Batch{ID: uuid.New(), DocumentIDs: []uuid.UUID{uuid.New()}}
	for n := 1; n <= 2; n++ {
		_, err := q.EnqueueBatch(t.Context(), small, n)
		require.NoError(t, err)
	}
	for name, want := range map[string]int64{queue.Name: 1, queue.ExpressName: 1} {
		n, err := rdb.XLen(t.Context(), "taskq:{"+prefix+name+"}:stream").Result()
		require.NoError(t, err)
		require.Equal(t, want, n, name)
	}
}

// A consumer whose own side has the lane off (ExpressMaxDocuments 0) but express slots still
// handles what a producer with the lane on sent there (settings that differ, a rolling upgrade),
// and sends nothing there itself.
func TestExpressLaneServedWithTheLaneOff(t *testing.T) {
	t.Parallel()
	rdb, prefix := redistest.New(t)
	producer := openOn(t, rdb, queue.Config{Prefix: prefix, Workers: 1, ExpressMaxDocuments: 2})
	consumer := openOn(t, rdb, queue.Config{Prefix: prefix, Workers: 1, ExpressWorkers: 1})
	small := &jobs.Batch{ID: uuid.New(), DocumentIDs: []uuid.UUID{uuid.New()}}
	_, err := producer.EnqueueBatch(t.Context(), small, 1)
	require.NoError(t, err)
	own := &jobs.Batch{ID: uuid.New(), DocumentIDs: []uuid.UUID{uuid.New()}}
	_, err = consumer.EnqueueBatch(t.Context(), own, 1)
	require.NoError(t, err)
	for name, want := range map[string]int64{queue.Name: 1, queue.ExpressName: 1} {
		n, err := rdb.XLen(t.Context(), "taskq:{"+prefix+name+"}:stream").Result()
		require.NoError(t, err)
		require.Equal(t, want, n, name)
	}

	handled := make(chan uuid.UUID, 2)
	cctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- consumer.Consume(cctx, func(_ context.Context, id uuid.UUID) error {
			handled <- id
			return nil
		}, 5*time.Second)
	}()
	got := map[uuid.UUID]bool{}
	for range 2 {
		select {
		case id := <-handled:
			got[id] = true
		case <-time.After(10 * time.Second):
			t.Fatal("a batch was not handled")
		}
	}
	require.Equal(t, map[uuid.UUID]bool{small.ID: true, own.ID: true}, got)
	cancel()
	require.NoError(t, <-done)
}
