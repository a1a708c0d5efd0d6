package processing

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/db/dbtest"
	"github.com/pipeline-dev/pipeline/internal/jobs"
)

// markers pretends every batch still has its message in Redis.
type markers struct{}

func (markers) HasMessage(context.Context, uuid.UUID) (bool, error) { return true, nil }

type countingEnqueuer struct{ n int }

func (e *countingEnqueuer) EnqueueBatch(_ context.Context, b *jobs.Batch, n int) (string, error) {
	e.n++
	return e.MessageID(b.ID, n), nil
}

func (e *countingEnqueuer) MessageID(batchID uuid.UUID, n int) string {
	return batchID.String() + "/" + strconv.Itoa(n)
}

// failingEnqueuer names messages as countingEnqueuer does but sends none: Redis is away.
type failingEnqueuer struct{ countingEnqueuer }

func (e *failingEnqueuer) EnqueueBatch(context.Context, *jobs.Batch, int) (string, error) {
	return "", errors.New("redis is away")
}

// noMarkers says no batch has a message waiting.
type noMarkers struct{}

func (noMarkers) HasMessage(context.Context, uuid.UUID) (bool, error) { return false, nil }

// createJob creates, through mgr, a processing job of one document on a new source.
func createJob(t *testing.T, pool *pgxpool.Pool, mgr *jobs.Manager) *jobs.Job {
	t.Helper()
	src := uuid.New()
	_, err := pool.Exec(t.Context(), `INSERT INTO sources (id, name, status) VALUES ($1, 's', 'processing')`, src)
	require.NoError(t, err)
	job, err := mgr.Create(t.Context(), jobs.CreateParams{Type: jobs.TypeProcess, SourceID: src, DocumentIDs: []uuid.UUID{uuid.New()}})
	require.NoError(t, err)
	return job
}

// TestOverdueBatchIsEnqueuedDespiteItsMarker: a marker can outlive its message; a batch that
// waited far too long is enqueued again anyway, and the wait doubles with each enqueue.
func TestOverdueBatchIsEnqueuedDespiteItsMarker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	enq := &countingEnqueuer{}
	mgr, err := jobs.NewManager(jobs.NewPgStore(pool), jobs.Config{Enqueuer: enq, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	job := createJob(t, pool, mgr)
	require.Equal(t, 1, enq.n)

	r := &Reconciler{Jobs: mgr, Queue: markers{}, Grace: time.Millisecond, StaleAfter: time.Hour, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	age := func(d time.Duration) {
		_, err := pool.Exec(ctx, `UPDATE job_batches SET enqueued_at = now() - $2::interval, updated_at = now() - $2::interval WHERE job_id = $1`, job.ID, d.String())
		require.NoError(t, err)
	}
	age(30 * time.Minute)
	rep, err := r.Once(ctx)
	require.NoError(t, err)
	require.Zero(t, rep.Requeued, "the marker is trusted while the wait is plausible")

	age(61 * time.Minute)
	rep, err = r.Once(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Requeued)
	require.Equal(t, 2, enq.n)

	age(90 * time.Minute)
	rep, err = r.Once(ctx)
	require.NoError(t, err)
	require.Zero(t, rep.Requeued, "after a second enqueue the batch may wait twice as long")
	age(121 * time.Minute)
	rep, err = r.Once(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Requeued)
}

// TestJustCreatedBatchIsLeftToItsCreator: a batch never enqueued (its job was created without
// a queue, or before decision 0036 stored new batches as enqueued) is left to its creator while
// the grace from its creation runs (a second message would race the first), and enqueued once
// it has passed. A creator with a queue: TestCreatorsLostMessageIsSentAfterTheGrace.
func TestJustCreatedBatchIsLeftToItsCreator(t *testing.T) {
	t.Parallel()
	// The creator's manager sends nothing: its job stays as it is in that moment.
	run := aroundTheGrace(t, nil, markers{})
	require.Zero(t, run.within.Requeued, "a batch created within the grace is its creator's to enqueue")
	require.Equal(t, 1, run.past.Requeued, "past the grace, a batch never enqueued is lost")
	require.Equal(t, 1, run.enq.n)
}

// graceRun is what aroundTheGrace saw.
type graceRun struct {
	mgr          *jobs.Manager
	job          *jobs.Job
	enq          *countingEnqueuer // the reconciler's
	within, past Report
}

// aroundTheGrace creates a job through a manager of its own on creatorQueue (nil: none), then
// runs a reconciler pass whose queue is checker, first within the grace, then with the job's
// batches created and changed two minutes before (past it). No pass within it enqueues anything.
func aroundTheGrace(t *testing.T, creatorQueue jobs.Enqueuer, checker MessageChecker) graceRun {
	t.Helper()
	ctx := context.Background()
	pool := dbtest.New(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	creator, err := jobs.NewManager(jobs.NewPgStore(pool), jobs.Config{Enqueuer: creatorQueue, Logger: log})
	require.NoError(t, err)
	run := graceRun{enq: &countingEnqueuer{}}
	run.mgr, err = jobs.NewManager(jobs.NewPgStore(pool), jobs.Config{Enqueuer: run.enq, Logger: log})
	require.NoError(t, err)
	run.job = createJob(t, pool, creator)

	r := &Reconciler{Jobs: run.mgr, Queue: checker, Grace: time.Minute, Log: log}
	run.within, err = r.Once(ctx)
	require.NoError(t, err)
	require.Zero(t, run.enq.n, "a pass within the grace")

	_, err = pool.Exec(ctx, `UPDATE job_batches SET created_at = now() - interval '2 minutes', updated_at = now() - interval '2 minutes' WHERE job_id = $1`, run.job.ID)
	require.NoError(t, err)
	run.past, err = r.Once(ctx)
	require.NoError(t, err)
	return run
}

// TestCreatorsLostMessageIsSentAfterTheGrace: a new job's batch is stored with its first message
// named, as sent (decision 0036). When that message never reached the queue (Redis away, or
// the server stopped right after the commit), no marker says it waits: the reconciler sends
// the batch, as message 2, once the grace from its creation has passed, and not before.
func TestCreatorsLostMessageIsSentAfterTheGrace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	failing := &failingEnqueuer{}
	run := aroundTheGrace(t, failing, noMarkers{})
	require.Zero(t, run.within.Requeued, "within the grace the message may still be on its way")
	require.Equal(t, 1, run.past.Requeued, "past the grace, with no marker, the message is lost")
	require.Equal(t, 1, run.enq.n)
	batches, err := run.mgr.Batches(ctx, run.job.ID)
	require.NoError(t, err)
	require.Len(t, batches, 1)
	require.Equal(t, failing.MessageID(batches[0].ID, 1), run.job.QueueMessageID, "the job names the first message")
	require.Equal(t, 2, batches[0].Enqueues, "stored as sent, then sent again")
	require.Equal(t, run.enq.MessageID(batches[0].ID, 2), batches[0].QueueMessageID)
}
