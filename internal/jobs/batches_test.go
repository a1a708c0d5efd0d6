package jobs_test

import (
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/jobs"
)

const lease = time.Minute

func batchSize(n int) func(*jobs.Config) { return func(c *jobs.Config) { c.BatchSize = n } }

func TestCreateSplitsIntoBatches(t *testing.T) {
	t.Parallel()
	b := setup(t, batchSize(2))
	docs := newDocIDs(5)
	job := b.createJob(t, docs...)

	batches, err := b.mgr.Batches(t.Context(), job.ID)
	require.NoError(t, err)
	require.Len(t, batches, 3)
	var got []uuid.UUID
	for i, bt := range batches {
		require.Equal(t, i, bt.Seq)
		require.Equal(t, jobs.BatchQueued, bt.State)
		got = append(got, bt.DocumentIDs...)
	}
	require.Equal(t, docs, got, "every document in exactly one batch, in order")

	crawl, err := b.mgr.Create(t.Context(), jobs.CreateParams{Type: jobs.TypeCrawl, SourceID: b.source})
	require.NoError(t, err)
	batches, err = b.mgr.Batches(t.Context(), crawl.ID)
	require.NoError(t, err)
	require.Empty(t, batches, "crawl jobs run in the server, not through batches")
}

func TestClaimIsExclusive(t *testing.T) {
	t.Parallel()
	b := setup(t)
	job := b.createJob(t, newDocIDs(3)...)
	batches, err := b.mgr.Batches(t.Context(), job.ID)
	require.NoError(t, err)
	id := batches[0].ID

	const n = 10
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := uuid.NewString()
			_, started, err := b.mgr.ClaimBatch(t.Context(), id, w, lease)
			if err != nil {
				require.ErrorIs(t, err, jobs.ErrNotClaimable, "worker %d", i)
				return
			}
			require.Equal(t, jobs.StatusInProgress, started.Status)
			mu.Lock()
			winners = append(winners, w)
			mu.Unlock()
		}()
	}
	wg.Wait()
	require.Len(t, winners, 1, "a duplicate delivery finds the batch claimed")

	_, err = b.mgr.RenewLease(t.Context(), id, winners[0], lease)
	require.NoError(t, err)
	_, err = b.mgr.RenewLease(t.Context(), id, "someone-else", lease)
	require.ErrorIs(t, err, jobs.ErrLeaseLost)
	_, err = b.mgr.FinishBatch(t.Context(), id, "someone-else")
	require.ErrorIs(t, err, jobs.ErrLeaseLost)

	got, err := b.mgr.FinishBatch(t.Context(), id, winners[0])
	require.NoError(t, err)
	require.Equal(t, jobs.StatusCompleted, got.Status, "the last batch finishes the job")
	_, _, err = b.mgr.ClaimBatch(t.Context(), id, "late", lease)
	require.ErrorIs(t, err, jobs.ErrNotClaimable, "a late delivery of a done batch does nothing")
}

func TestExpiredLeaseIsTakenOver(t *testing.T) {
	t.Parallel()
	b := setup(t)
	job := b.createJob(t, newDocIDs(1)...)
	batches, err := b.mgr.Batches(t.Context(), job.ID)
	require.NoError(t, err)
	id := batches[0].ID

	_, _, err = b.mgr.ClaimBatch(t.Context(), id, "dead-worker", 50*time.Millisecond)
	require.NoError(t, err)
	_, _, err = b.mgr.ClaimBatch(t.Context(), id, "other", lease)
	require.ErrorIs(t, err, jobs.ErrNotClaimable, "a live lease holds")

	var released []*jobs.Batch
	require.Eventually(t, func() bool {
		released, err = b.mgr.ReleaseExpiredBatches(t.Context())
		require.NoError(t, err)
		return len(released) == 1
	}, 5*time.Second, 20*time.Millisecond)
	require.Equal(t, id, released[0].ID)
	require.Equal(t, jobs.BatchQueued, released[0].State)

	taken, _, err := b.mgr.ClaimBatch(t.Context(), id, "rescuer", lease)
	require.NoError(t, err)
	require.Equal(t, 2, taken.Claims)
	_, err = b.mgr.RenewLease(t.Context(), id, "dead-worker", lease)
	require.ErrorIs(t, err, jobs.ErrLeaseLost, "the dead worker, if it wakes, must stop")
}

func TestCancelledJobsBatchesAreNotClaimed(t *testing.T) {
	t.Parallel()
	b := setup(t, batchSize(1))
	job := b.createJob(t, newDocIDs(2)...)
	batches, err := b.mgr.Batches(t.Context(), job.ID)
	require.NoError(t, err)
	_, _, err = b.mgr.ClaimBatch(t.Context(), batches[0].ID, "w", lease)
	require.NoError(t, err)
	_, err = b.mgr.Cancel(t.Context(), job.ID)
	require.NoError(t, err)

	_, _, err = b.mgr.ClaimBatch(t.Context(), batches[1].ID, "w2", lease)
	require.ErrorIs(t, err, jobs.ErrNotClaimable, "queued batches of a cancelled job do nothing")
	got, err := b.mgr.FinishBatch(t.Context(), batches[0].ID, "w")
	require.NoError(t, err)
	require.Equal(t, jobs.StatusCancelled, got.Status, "finishing a batch never revives a cancelled job")

	queued, err := b.mgr.QueuedBatches(t.Context(), time.Now().Add(time.Hour), 100)
	require.NoError(t, err)
	require.Empty(t, queued, "the reconciler leaves batches of finished jobs alone")
}

func TestFinishJobOutcome(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		results []jobs.DocStatus
		want    jobs.Status
	}{
		"all succeeded":      {[]jobs.DocStatus{jobs.DocSucceeded, jobs.DocSucceeded}, jobs.StatusCompleted},
		"some failed":        {[]jobs.DocStatus{jobs.DocSucceeded, jobs.DocFailed}, jobs.StatusCompleted},
		"all failed":         {[]jobs.DocStatus{jobs.DocFailed, jobs.DocFailed}, jobs.StatusFailed},
		"skipped and failed": {[]jobs.DocStatus{jobs.DocSkipped, jobs.DocFailed}, jobs.StatusCompleted},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			docs := newDocIDs(len(tc.results))
			job := b.createJob(t, docs...)
			batches, err := b.mgr.Batches(t.Context(), job.ID)
			require.NoError(t, err)
			_, _, err = b.mgr.ClaimBatch(t.Context(), batches[0].ID, "w", lease)
			require.NoError(t, err)
			var updates []jobs.DocumentResultUpdate
			for i, st := range tc.results {
				u := jobs.DocumentResultUpdate{DocumentID: docs[i], Status: st, Attempts: 1}
				if st == jobs.DocFailed {
					u.LastError, u.ErrorKind = "bad", jobs.KindPermanent
				}
				updates = append(updates, u)
			}
			_, err = b.mgr.RecordResults(t.Context(), jobs.RecordParams{JobID: job.ID, Results: updates})
			require.NoError(t, err)
			got, err := b.mgr.FinishBatch(t.Context(), batches[0].ID, "w")
			require.NoError(t, err)
			require.Equal(t, tc.want, got.Status)
			if tc.want == jobs.StatusFailed {
				require.Contains(t, got.Error, "none of the 2 documents")
			}
		})
	}
}

func TestReconcilerQueries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()

	// Never enqueued (no Enqueuer): listed once created before the given time, not before.
	job := b.createJob(t, newDocIDs(2)...)
	queued, err := b.mgr.QueuedBatches(ctx, time.Now().Add(-time.Hour), 100)
	require.NoError(t, err)
	require.Empty(t, queued, "created within the grace")
	_, err = b.pool.Exec(ctx, `UPDATE job_batches SET created_at = now() - interval '2 hours', updated_at = now() - interval '2 hours' WHERE job_id = $1`, job.ID)
	require.NoError(t, err)
	queued, err = b.mgr.QueuedBatches(ctx, time.Now().Add(-time.Hour), 100)
	require.NoError(t, err)
	require.Len(t, queued, 1)
	require.Equal(t, job.ID, queued[0].JobID)

	// Timed out: fail it.
	_, err = b.pool.Exec(ctx, `UPDATE jobs SET created_at = now() - interval '2 hours' WHERE id = $1`, job.ID)
	require.NoError(t, err)
	failed, err := b.mgr.FailTimedOut(ctx, 100)
	require.NoError(t, err)
	require.Len(t, failed, 1)
	require.Equal(t, jobs.StatusFailed, failed[0].Status)
	require.Contains(t, failed[0].Error, "timed out")

	// Stranded: all batches done but the job still active.
	stranded := b.createJob(t, newDocIDs(1)...)
	batches, err := b.mgr.Batches(ctx, stranded.ID)
	require.NoError(t, err)
	_, _, err = b.mgr.ClaimBatch(ctx, batches[0].ID, "w", lease)
	require.NoError(t, err)
	_, err = b.mgr.RecordResults(ctx, jobs.RecordParams{JobID: stranded.ID, Results: []jobs.DocumentResultUpdate{
		{DocumentID: stranded.DocumentIDs[0], Status: jobs.DocSucceeded, ChunkCount: 3, Attempts: 1},
	}})
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `UPDATE job_batches SET state = 'done' WHERE job_id = $1`, stranded.ID)
	require.NoError(t, err)
	done, err := b.mgr.FinishStranded(ctx, 100)
	require.NoError(t, err)
	require.Len(t, done, 1)
	require.Equal(t, jobs.StatusCompleted, done[0].Status)
	require.EqualValues(t, 3, done[0].ChunkCount)
}

// TestHandedBackBatchIsLeftToItsWorker: a batch its worker hands back (released, then enqueued
// again) is not the reconciler's for the grace, although its last enqueue is long past: the
// worker is sending its message.
func TestHandedBackBatchIsLeftToItsWorker(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	job := b.createJob(t, newDocIDs(1)...)
	_, err := b.pool.Exec(ctx, `UPDATE job_batches SET enqueues = 1, enqueued_at = now() - interval '2 hours',
		created_at = now() - interval '2 hours', updated_at = now() - interval '2 hours' WHERE job_id = $1`, job.ID)
	require.NoError(t, err)
	batches, err := b.mgr.Batches(ctx, job.ID)
	require.NoError(t, err)
	_, _, err = b.mgr.ClaimBatch(ctx, batches[0].ID, "w", lease)
	require.NoError(t, err)
	_, err = b.mgr.ReleaseBatch(ctx, batches[0].ID, "w")
	require.NoError(t, err)

	queued, err := b.mgr.QueuedBatches(ctx, time.Now().Add(-time.Hour), 100)
	require.NoError(t, err)
	require.Empty(t, queued, "handed back within the grace: its worker is enqueuing it")
	_, err = b.pool.Exec(ctx, `UPDATE job_batches SET updated_at = now() - interval '2 hours' WHERE job_id = $1`, job.ID)
	require.NoError(t, err)
	queued, err = b.mgr.QueuedBatches(ctx, time.Now().Add(-time.Hour), 100)
	require.NoError(t, err)
	require.Len(t, queued, 1, "left alone past the grace")
	require.Equal(t, batches[0].ID, queued[0].ID)
}

func TestEnqueueBatchNumbersMessages(t *testing.T) {
	t.Parallel()
	enq := &fakeEnqueuer{}
	b := setup(t, func(c *jobs.Config) { c.Enqueuer = enq })
	job := b.createJob(t, newDocIDs(1)...)
	batches, err := b.mgr.Batches(t.Context(), job.ID)
	require.NoError(t, err)
	require.Equal(t, 1, batches[0].Enqueues)

	again, err := b.mgr.EnqueueBatch(t.Context(), batches[0])
	require.NoError(t, err)
	require.Equal(t, 2, again.Enqueues, "a re-enqueue is a new message, never a duplicate")
	require.NotEqual(t, batches[0].QueueMessageID, again.QueueMessageID)

	_, err = b.mgr.GetBatch(t.Context(), uuid.New())
	require.ErrorIs(t, err, errs.ErrNotFound)
}
