package jobs_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/jobs"
)

// Batches of one job finishing at once: each finish takes the job's lock before it looks at the
// other batches, so exactly one of them (the last) ends the job, and its end is announced once.
func TestConcurrentFinishesEndTheJobOnce(t *testing.T) {
	t.Parallel()
	const n = 8
	b := setup(t, batchSize(1))
	job := b.createJob(t, newDocIDs(n)...)
	batches, err := b.mgr.Batches(t.Context(), job.ID)
	require.NoError(t, err)
	require.Len(t, batches, n)
	for i, bt := range batches {
		_, _, err := b.mgr.ClaimBatch(t.Context(), bt.ID, fmt.Sprint("w", i), lease)
		require.NoError(t, err)
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[jobs.Status]int{}
	)
	for i, bt := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := b.mgr.FinishBatch(t.Context(), bt.ID, fmt.Sprint("w", i))
			require.NoError(t, err)
			mu.Lock()
			statuses[got.Status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	require.Equal(t, 1, statuses[jobs.StatusCompleted], "only the last finish sees the job completed: %v", statuses)
	require.Equal(t, n-1, statuses[jobs.StatusInProgress])

	got, err := b.mgr.Get(t.Context(), job.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusCompleted, got.Status)
	require.NotNil(t, got.FinishedAt)
	// Created, message-less (no Enqueuer), started by the first claim, completed: one version each.
	require.Equal(t, []int64{1, 2, 3}, b.notifier.versions(job.ID))
	require.Equal(t, int64(3), got.Version)
}

// A claim that starts the job and one that finds it started: the job is announced once, and
// both claims return it in progress.
func TestClaimStartsTheJobOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, batchSize(1))
	job := b.createJob(t, newDocIDs(2)...)
	batches, err := b.mgr.Batches(t.Context(), job.ID)
	require.NoError(t, err)
	for i, bt := range batches {
		got, gotJob, err := b.mgr.ClaimBatch(t.Context(), bt.ID, fmt.Sprint("w", i), lease)
		require.NoError(t, err)
		require.Equal(t, jobs.BatchRunning, got.State)
		require.Equal(t, 1, got.Claims)
		require.Equal(t, jobs.StatusInProgress, gotJob.Status)
		require.Equal(t, int64(2), gotJob.Version)
		require.NotNil(t, gotJob.StartedAt)
	}
	require.Equal(t, []int64{1, 2}, b.notifier.versions(job.ID))
}

// The pipelined writes run inside the caller's transaction when given one: a claim in a
// transaction that rolls back leaves the batch queued and the job pending.
func TestPipelinedWritesJoinTheCallersTransaction(t *testing.T) {
	t.Parallel()
	b := setup(t)
	job := b.createJob(t, newDocIDs(1)...)
	batches, err := b.mgr.Batches(t.Context(), job.ID)
	require.NoError(t, err)
	errRollback := errors.New("roll back")
	err = jobs.NewPgStore(b.pool).InTx(t.Context(), func(tx jobs.Store) error {
		res, err := tx.BatchClaimStart(t.Context(), &jobs.BatchClaimParams{ID: batches[0].ID, Worker: "w", Lease: lease})
		require.NoError(t, err)
		require.NotNil(t, res.Batch)
		require.True(t, res.Started)
		return errRollback
	})
	require.ErrorIs(t, err, errRollback)
	got, err := b.mgr.GetBatch(t.Context(), batches[0].ID)
	require.NoError(t, err)
	require.Equal(t, jobs.BatchQueued, got.State)
	gotJob, err := b.mgr.Get(t.Context(), job.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusPending, gotJob.Status)
}
