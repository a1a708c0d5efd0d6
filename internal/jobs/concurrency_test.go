package jobs_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/jobs"
)

// race runs n calls of fn at once (released together) and returns their errors by index.
func race(n int, fn func(i int) error) []error {
	out := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			out[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return out
}

func TestConcurrentCompleteHasOneWinner(t *testing.T) {
	t.Parallel()
	b := setup(t)
	job := b.jobIn(t, jobs.StatusInProgress)

	results := race(20, func(int) error {
		_, err := b.mgr.Complete(t.Context(), job.ID)
		return err
	})

	wins := 0
	for _, err := range results {
		if err == nil {
			wins++
			continue
		}
		require.ErrorIs(t, err, errs.ErrFailedPrecondition)
		require.ErrorIs(t, err, jobs.ErrInvalidTransition)
	}
	require.Equal(t, 1, wins)

	got, err := b.mgr.Get(t.Context(), job.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusCompleted, got.Status)
	require.Equal(t, job.Version+1, got.Version)
	require.Equal(t, []int64{1, 2, 3}, b.notifier.versions(job.ID))
}

func TestConcurrentCancelAndComplete(t *testing.T) {
	t.Parallel()
	b := setup(t)

	for range 10 {
		job := b.jobIn(t, jobs.StatusInProgress)
		var winner jobs.Status
		var mu sync.Mutex
		results := race(2, func(i int) error {
			var got *jobs.Job
			var err error
			if i == 0 {
				got, err = b.mgr.Cancel(t.Context(), job.ID)
			} else {
				got, err = b.mgr.Complete(t.Context(), job.ID)
			}
			if err == nil {
				mu.Lock()
				winner = got.Status
				mu.Unlock()
			}
			return err
		})

		failures := 0
		for _, err := range results {
			if err != nil {
				failures++
				require.ErrorIs(t, err, errs.ErrFailedPrecondition)
			}
		}
		require.Equal(t, 1, failures, "exactly one of cancel and complete wins")
		got, err := b.mgr.Get(t.Context(), job.ID)
		require.NoError(t, err)
		require.Equal(t, winner, got.Status)
		require.Equal(t, job.Version+1, got.Version)
	}
}

func TestConcurrentCancelIsIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	job := b.jobIn(t, jobs.StatusPending)

	for _, err := range race(20, func(int) error {
		got, err := b.mgr.Cancel(t.Context(), job.ID)
		if err == nil && got.Status != jobs.StatusCancelled {
			t.Errorf("cancel returned status %s", got.Status)
		}
		return err
	}) {
		require.NoError(t, err)
	}
	got, err := b.mgr.Get(t.Context(), job.ID)
	require.NoError(t, err)
	require.Equal(t, job.Version+1, got.Version, "only one cancel writes")
}

// TestConcurrentRecordResults has 20 workers report different documents of one job at once;
// the counters must equal the per-document rows and every version is published once.
func TestConcurrentRecordResults(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	const workers, perWorker = 20, 3
	docs := newDocIDs(workers * perWorker)
	job := b.jobIn(t, jobs.StatusInProgress, docs...)

	statuses := []jobs.DocStatus{jobs.DocSucceeded, jobs.DocFailed, jobs.DocSkipped, jobs.DocSucceeded}
	var wantProcessed, wantFailed, wantChunks int64
	updates := make([][]jobs.DocumentResultUpdate, workers)
	for w := range workers {
		for k := range perWorker {
			i := w*perWorker + k
			u := jobs.DocumentResultUpdate{DocumentID: docs[i], Status: statuses[i%len(statuses)], ChunkCount: int64(i + 1), Attempts: 1}
			if u.Status == jobs.DocFailed {
				u.LastError, u.ErrorKind = "boom", jobs.KindPermanent
				wantFailed++
			} else {
				wantProcessed++
				wantChunks += u.ChunkCount
			}
			updates[w] = append(updates[w], u)
		}
	}

	for _, err := range race(workers, func(w int) error {
		_, err := b.mgr.RecordResults(ctx, jobs.RecordParams{JobID: job.ID, Results: updates[w]})
		return err
	}) {
		require.NoError(t, err)
	}

	got, err := b.mgr.Get(ctx, job.ID)
	require.NoError(t, err)
	require.Equal(t, wantProcessed, got.ProcessedCount)
	require.Equal(t, wantFailed, got.ErrorCount)
	require.Equal(t, wantChunks, got.ChunkCount)
	require.Equal(t, job.Version+workers, got.Version)

	// And straight from the rows, without the Manager.
	var processed, failed, chunks int64
	require.NoError(t, b.pool.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE status IN ('succeeded', 'skipped')),
		       count(*) FILTER (WHERE status = 'failed'),
		       COALESCE(sum(chunk_count) FILTER (WHERE status IN ('succeeded', 'skipped')), 0)
		FROM job_documents WHERE job_id = $1`, job.ID).Scan(&processed, &failed, &chunks))
	require.Equal(t, []int64{processed, failed, chunks}, []int64{got.ProcessedCount, got.ErrorCount, got.ChunkCount})

	versions := b.notifier.versions(job.ID)
	seen := map[int64]bool{}
	for _, v := range versions {
		require.False(t, seen[v], "version %d published twice", v)
		seen[v] = true
	}
	for v := int64(1); v <= got.Version; v++ {
		require.True(t, seen[v], "version %d never published", v)
	}
}

// TestConcurrentRecordAndComplete: reports racing Complete either land before it or are
// refused; the completed job's counters still equal its rows.
func TestConcurrentRecordAndComplete(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	docs := newDocIDs(10)
	job := b.jobIn(t, jobs.StatusInProgress, docs...)

	results := race(len(docs)+1, func(i int) error {
		if i == len(docs) {
			_, err := b.mgr.Complete(ctx, job.ID)
			return err
		}
		_, err := b.mgr.RecordResults(ctx, jobs.RecordParams{JobID: job.ID, Results: []jobs.DocumentResultUpdate{
			{DocumentID: docs[i], Status: jobs.DocSucceeded, ChunkCount: 1},
		}})
		return err
	})
	require.NoError(t, results[len(docs)])
	accepted := int64(0)
	for _, err := range results[:len(docs)] {
		if err == nil {
			accepted++
		} else {
			require.ErrorIs(t, err, errs.ErrFailedPrecondition)
		}
	}

	got, err := b.mgr.Get(ctx, job.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusCompleted, got.Status)
	require.Equal(t, accepted, got.ProcessedCount)
	require.Equal(t, accepted, got.ChunkCount)
	var rows int64
	require.NoError(t, b.pool.QueryRow(ctx,
		`SELECT count(*) FROM job_documents WHERE job_id = $1 AND status = 'succeeded'`, job.ID).Scan(&rows))
	require.Equal(t, accepted, rows)
}

// TestConcurrentStartAndComplete: Complete racing Start on a pending job either runs after Start
// or is refused as pending -> completed; it never leaves the job in between.
func TestConcurrentStartAndComplete(t *testing.T) {
	t.Parallel()
	b := setup(t)

	for range 10 {
		job := b.jobIn(t, jobs.StatusPending)
		results := race(2, func(i int) error {
			var err error
			if i == 0 {
				_, err = b.mgr.Start(t.Context(), job.ID)
			} else {
				_, err = b.mgr.Complete(t.Context(), job.ID)
			}
			return err
		})
		require.NoError(t, results[0], "start always wins from pending")
		got, err := b.mgr.Get(t.Context(), job.ID)
		require.NoError(t, err)
		if results[1] == nil {
			require.Equal(t, jobs.StatusCompleted, got.Status)
			require.Equal(t, job.Version+2, got.Version)
		} else {
			var te *jobs.TransitionError
			require.ErrorAs(t, results[1], &te)
			require.Equal(t, jobs.StatusPending, te.From)
			require.Equal(t, jobs.StatusInProgress, got.Status)
			require.Equal(t, job.Version+1, got.Version)
		}
	}
}

// TestRetryOnce: a job is retried at most once, even when many callers retry it at the same
// moment (a double-clicked button); the losers learn that a retry exists.
func TestRetryOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	old := b.jobIn(t, jobs.StatusFailed, newDocIDs(3)...)

	const n = 10
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		made   []*jobs.Job
		losers []error
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			job, err := b.mgr.Retry(t.Context(), old.ID)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				losers = append(losers, err)
				return
			}
			made = append(made, job)
		}()
	}
	wg.Wait()
	require.Len(t, made, 1)
	require.Len(t, losers, n-1)
	for _, err := range losers {
		require.ErrorIs(t, err, errs.ErrAlreadyExists)
	}

	_, err := b.mgr.Retry(t.Context(), old.ID)
	require.ErrorIs(t, err, errs.ErrAlreadyExists, "a later retry of the same job is refused too")

	// The chain goes on from the newest job.
	_, err = b.mgr.Cancel(t.Context(), made[0].ID)
	require.NoError(t, err)
	next, err := b.mgr.Retry(t.Context(), made[0].ID)
	require.NoError(t, err)
	require.Equal(t, made[0].ID, next.RetryOf.UUID)
}
