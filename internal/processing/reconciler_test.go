package processing

import (
	"context"
	"io"
	"log/slog"
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
	return b.ID.String() + "/x", nil
}

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

// TestJustCreatedBatchIsLeftToItsCreator: between a job's commit and its own enqueue, its
// batches look never enqueued; a pass in that moment must leave them to the creator (a second
// message would race the first), and enqueue them only once the grace has passed.
func TestJustCreatedBatchIsLeftToItsCreator(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// The creator's manager sends nothing: its job stays as it is in that moment.
	creator, err := jobs.NewManager(jobs.NewPgStore(pool), jobs.Config{Logger: log})
	require.NoError(t, err)
	enq := &countingEnqueuer{}
	mgr, err := jobs.NewManager(jobs.NewPgStore(pool), jobs.Config{Enqueuer: enq, Logger: log})
	require.NoError(t, err)
	job := createJob(t, pool, creator)

	r := &Reconciler{Jobs: mgr, Queue: markers{}, Grace: time.Minute, Log: log}
	rep, err := r.Once(ctx)
	require.NoError(t, err)
	require.Zero(t, rep.Requeued, "a batch created within the grace is its creator's to enqueue")
	require.Zero(t, enq.n)

	_, err = pool.Exec(ctx, `UPDATE job_batches SET created_at = now() - interval '2 minutes', updated_at = now() - interval '2 minutes' WHERE job_id = $1`, job.ID)
	require.NoError(t, err)
	rep, err = r.Once(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Requeued, "past the grace, a batch never enqueued is lost")
	require.Equal(t, 1, enq.n)
}
