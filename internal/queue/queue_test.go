package queue_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
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
		require.Equal(t, id, q.MessageID(b.ID, 1), "the id named in advance (jobs.Enqueuer)")
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

// holdScripts holds a go-redis client's first script call (the delete of a delivered
// message's marker) until released.
type holdScripts struct {
	held    atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (*holdScripts) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *holdScripts) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := cmd.Name(); (n == "evalsha" || n == "eval") && h.held.CompareAndSwap(false, true) {
			close(h.entered)
			<-h.release
		}
		return next(ctx, cmd)
	}
}

func (*holdScripts) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestLateMarkerDeleteKeepsTheMarkerOfALaterEnqueue: a delivered message's marker is deleted
// while its handler runs, so the delete may reach Redis after the handler has enqueued the batch
// again (handed it back). The newer message's marker must stay: its message waits.
func TestLateMarkerDeleteKeepsTheMarkerOfALaterEnqueue(t *testing.T) {
	t.Parallel()
	base, prefix := redistest.New(t)
	rdb := redis.NewClient(base.Options())
	t.Cleanup(func() { _ = rdb.Close() })
	hold := &holdScripts{entered: make(chan struct{}), release: make(chan struct{})}
	rdb.AddHook(hold)
	q := openOn(t, rdb, queue.Config{Prefix: prefix, Workers: 1})
	ctx := t.Context()
	b := &jobs.Batch{ID: uuid.New()}
	_, err := q.EnqueueBatch(ctx, b, 1)
	require.NoError(t, err)

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	handled := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		done <- q.Consume(cctx, func(ctx context.Context, id uuid.UUID) error {
			select {
			case <-hold.entered: // the delete of enqueue 1's marker is under way, held
			case <-time.After(10 * time.Second):
				handled <- errors.New("the marker's delete never started")
				return nil
			}
			_, err := q.EnqueueBatch(ctx, b, 2) // handed back: marked and sent again
			close(hold.release)                 // enqueue 1's delete lands now, after it
			cancel()                            // the next delivery finds the consumer stopping
			handled <- err
			return nil
		}, 5*time.Second)
	}()
	select {
	case err := <-handled:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		require.FailNow(t, "not delivered")
	}
	require.NoError(t, <-done)

	has, err := q.HasMessage(ctx, b.ID)
	require.NoError(t, err)
	require.True(t, has, "the marker of the second enqueue, whose message waits, is kept")
	st, err := q.Stats(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, st.Waiting+st.Delayed, "the second message waits (or, taken as the consumer stopped, was given back for later)")
	require.Zero(t, st.InFlight)
}
