package queue_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/taskq/v3"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/pipeline-dev/pipeline/internal/jobs"
	"github.com/pipeline-dev/pipeline/internal/metrics"
	"github.com/pipeline-dev/pipeline/internal/queue"
	"github.com/pipeline-dev/pipeline/internal/redistest"
)

// consume runs h on q until the test ends.
func consume(t *testing.T, q *queue.Queue, h queue.Handler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Consume(ctx, h, 5*time.Second) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

func stats(t *testing.T, q *queue.Queue) metrics.QueueStats {
	t.Helper()
	st, err := q.Stats(t.Context())
	require.NoError(t, err)
	return st
}

func TestStatsCountWaitingInFlightAndDelayed(t *testing.T) {
	t.Parallel()
	rdb, prefix := redistest.New(t)
	q := openOn(t, rdb, queue.Config{Prefix: prefix, Workers: 2})
	ctx := t.Context()

	require.Equal(t, metrics.QueueStats{}, stats(t, q), "no stream yet: all zero")

	const total = 6
	for range total {
		_, err := q.EnqueueBatch(ctx, &jobs.Batch{ID: uuid.New()}, 1)
		require.NoError(t, err)
	}
	st := stats(t, q)
	require.Equal(t, int64(total), st.Waiting, "no consumer yet: all wait")
	require.Zero(t, st.InFlight)
	require.Zero(t, st.OldestInFlight)

	// Two handlers hold their batches; the rest stay in the stream.
	release := make(chan struct{})
	var running atomic.Int32
	var failedOnce sync.Once
	consume(t, q, func(ctx context.Context, _ uuid.UUID) error {
		running.Add(1)
		defer running.Add(-1)
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		var err error
		failedOnce.Do(func() { err = errors.New("try again later") }) // one goes to the delayed set
		return err
	})
	require.Eventually(t, func() bool { return running.Load() == 2 }, 10*time.Second, 10*time.Millisecond)
	st = stats(t, q)
	require.Equal(t, int64(total), st.Waiting+st.InFlight, "%+v", st)
	require.GreaterOrEqual(t, st.InFlight, int64(2), "the two running batches are in flight: %+v", st)
	require.Positive(t, st.Waiting, "with one buffered at most, some still wait: %+v", st)
	require.GreaterOrEqual(t, st.OldestInFlight, st.OldestWaiting, "in-flight messages were enqueued first")

	close(release)
	require.Eventually(t, func() bool {
		st := stats(t, q)
		return st.Delayed == 1 && st.Waiting == 0 && st.InFlight == 0
	}, 10*time.Second, 10*time.Millisecond, "the failed batch waits for its retry in the delayed set")
	require.Eventually(t, func() bool { return stats(t, q) == metrics.QueueStats{} }, 15*time.Second, 20*time.Millisecond,
		"after its backoff it is retried and the queue empties")
}

func newRecorder() (*tracetest.SpanRecorder, *sdktrace.TracerProvider) {
	rec := tracetest.NewSpanRecorder()
	return rec, sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
}

func spanNamed(t *testing.T, rec *tracetest.SpanRecorder, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	for _, s := range rec.Ended() {
		if s.Name() == name {
			return s
		}
	}
	require.FailNow(t, "no span "+name)
	return nil
}

// The message carries the enqueuer's trace: the handler runs in a span whose parent is the
// enqueue span, child of the caller's span.
func TestMessageCarriesTheTrace(t *testing.T) {
	t.Parallel()
	rdb, prefix := redistest.New(t)
	rec, tp := newRecorder()
	q := openOn(t, rdb, queue.Config{Prefix: prefix, Workers: 1, TracerProvider: tp})

	ctx, parent := tp.Tracer("test").Start(t.Context(), "IngestDocuments")
	b := &jobs.Batch{ID: uuid.New()}
	_, err := q.EnqueueBatch(ctx, b, 1)
	require.NoError(t, err)
	parent.End()

	got := make(chan trace.SpanContext, 1)
	consume(t, q, func(ctx context.Context, id uuid.UUID) error {
		require.Equal(t, b.ID, id)
		got <- trace.SpanContextFromContext(ctx)
		return nil
	})
	var sc trace.SpanContext
	select {
	case sc = <-got:
	case <-time.After(10 * time.Second):
		require.FailNow(t, "not delivered")
	}
	require.Equal(t, parent.SpanContext().TraceID(), sc.TraceID())

	require.Eventually(t, func() bool { return len(rec.Ended()) == 3 }, 10*time.Second, 10*time.Millisecond)
	enq, proc := spanNamed(t, rec, "queue.enqueue"), spanNamed(t, rec, "queue.process")
	require.Equal(t, trace.SpanKindProducer, enq.SpanKind())
	require.Equal(t, parent.SpanContext().SpanID(), enq.Parent().SpanID())
	require.Equal(t, trace.SpanKindConsumer, proc.SpanKind())
	require.Equal(t, enq.SpanContext().SpanID(), proc.Parent().SpanID())
	require.True(t, proc.Parent().IsRemote(), "the consumer continues a trace from the message")
	require.Equal(t, proc.SpanContext().SpanID(), sc.SpanID(), "the handler runs inside the delivery span")
}

// A worker with tracing off still continues the trace (its logs carry the trace id) without
// recording spans.
func TestTraceContextCrossesToAConsumerWithoutTracing(t *testing.T) {
	t.Parallel()
	rdb, prefix := redistest.New(t)
	_, tp := newRecorder()
	producer := openOn(t, rdb, queue.Config{Prefix: prefix, Workers: 1, TracerProvider: tp})
	consumer := openOn(t, rdb, queue.Config{Prefix: prefix, Workers: 1})

	ctx, parent := tp.Tracer("test").Start(t.Context(), "IngestDocuments")
	_, err := producer.EnqueueBatch(ctx, &jobs.Batch{ID: uuid.New()}, 1)
	require.NoError(t, err)
	parent.End()

	got := make(chan trace.SpanContext, 1)
	consume(t, consumer, func(ctx context.Context, _ uuid.UUID) error {
		got <- trace.SpanContextFromContext(ctx)
		return nil
	})
	select {
	case sc := <-got:
		require.Equal(t, parent.SpanContext().TraceID(), sc.TraceID())
	case <-time.After(10 * time.Second):
		require.FailNow(t, "not delivered")
	}
}

// A message carries the batch id, then a map with the number of the batch's enqueue and, with a
// span in the caller's context, the trace context. A message as versions before the number
// wrote it (the batch id alone) is still delivered, and its marker deleted.
func TestMessagesCarryTheirEnqueueNumber(t *testing.T) {
	t.Parallel()
	rdb, prefix := redistest.New(t)
	_, tp := newRecorder()
	q := openOn(t, rdb, queue.Config{Prefix: prefix, Workers: 1})
	ctx := t.Context()
	plain := &jobs.Batch{ID: uuid.New()}
	_, err := q.EnqueueBatch(ctx, plain, 3) // no span in ctx
	require.NoError(t, err)
	require.Equal(t, []any{plain.ID.String(), map[string]any{"pipeline-enqueue": "3"}}, rawArgs(t, rdb, prefix))

	traced := &jobs.Batch{ID: uuid.New()}
	sctx, span := tp.Tracer("test").Start(ctx, "call")
	_, err = q.EnqueueBatch(sctx, traced, 1)
	require.NoError(t, err)
	span.End()
	args := rawArgs(t, rdb, prefix)
	require.Len(t, args, 2, "the id, then the map")
	carrier, ok := args[1].(map[string]any)
	require.True(t, ok, "%T", args[1])
	require.Contains(t, carrier, "traceparent")
	require.Equal(t, "1", carrier["pipeline-enqueue"])

	old := uuid.New()
	require.NoError(t, queue.EnqueueWithoutNumber(ctx, q, old.String()))
	require.Equal(t, []any{old.String()}, rawArgs(t, rdb, prefix))

	got := make(chan uuid.UUID, 3)
	consume(t, q, func(_ context.Context, id uuid.UUID) error { got <- id; return nil })
	seen := map[uuid.UUID]bool{}
	for range 3 {
		select {
		case id := <-got:
			seen[id] = true
		case <-time.After(10 * time.Second):
			require.FailNow(t, "every format is delivered")
		}
	}
	for _, id := range []uuid.UUID{plain.ID, traced.ID, old} {
		require.True(t, seen[id])
		require.Eventually(t, func() bool {
			has, err := q.HasMessage(ctx, id)
			return err == nil && !has
		}, 5*time.Second, 5*time.Millisecond, "a delivered message's marker is deleted, whatever its format")
	}
}

// rawArgs decodes the arguments of the newest message in the stream as taskq stored them.
func rawArgs(t *testing.T, rdb *redis.Client, prefix string) []any {
	t.Helper()
	msgs, err := rdb.XRevRangeN(t.Context(), "taskq:{"+prefix+queue.Name+"}:stream", "+", "-", 1).Result()
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	var m taskq.Message
	require.NoError(t, m.UnmarshalBinary([]byte(msgs[0].Values["body"].(string))))
	b, err := m.MarshalArgs()
	require.NoError(t, err)
	var args []any
	require.NoError(t, msgpack.NewDecoder(bytes.NewReader(b)).Decode(&args))
	return args
}
