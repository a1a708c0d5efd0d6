package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/jobs"
)

// Batches of one job finishing at once: each group of finishes takes the job's lock before it
// looks at the other batches, so the job ends exactly once, with the last finish, and its end is
// announced once. Each finish returns the job as its group left it: in progress, or completed
// for the group holding the last batch (finishes grouped with it see that too).
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
	require.GreaterOrEqual(t, statuses[jobs.StatusCompleted], 1, "the last finish sees the job completed: %v", statuses)
	require.Equal(t, n, statuses[jobs.StatusCompleted]+statuses[jobs.StatusInProgress], "%v", statuses)

	got, err := b.mgr.Get(t.Context(), job.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusCompleted, got.Status)
	require.NotNil(t, got.FinishedAt)
	// Created, message-less (no Enqueuer), started by the first claim, completed: one version
	// each, the last announced right after the finish returned.
	b.notifier.waitVersions(t, job.ID, 1, 2, 3)
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
	b.notifier.waitVersions(t, job.ID, 1, 2)
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
		res, err := tx.BatchesClaimStart(t.Context(), []*jobs.BatchClaimParams{{ID: batches[0].ID, Worker: "w", Lease: lease}})
		require.NoError(t, err)
		require.Len(t, res, 1)
		require.NotNil(t, res[0].Batch)
		require.True(t, res[0].Started)
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

// Many workers claiming and finishing at once share transactions (group commit) and still get
// what one transaction each would give them: each batch claimed by exactly one of two workers
// racing for it, each job started once and ended once, each change announced once (in groups,
// each job at most once per group), every job completed at the end.
func TestGroupedClaimsAndFinishes(t *testing.T) {
	t.Parallel()
	b := setup(t, batchSize(1), func(c *jobs.Config) { c.MaxGroup = 8 })
	ctx := t.Context()
	var all []*jobs.Job
	for range 20 {
		all = append(all, b.createJob(t, newDocIDs(1)...))
	}
	all = append(all, b.createJob(t, newDocIDs(5)...)) // five batches of one job
	var batches []*jobs.Batch
	for _, j := range all {
		list, err := b.mgr.Batches(ctx, j.ID)
		require.NoError(t, err)
		batches = append(batches, list...)
	}

	// Two workers race for every batch.
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		holder  = map[uuid.UUID]string{}
		refused int
	)
	for _, bt := range batches {
		for _, w := range []string{"a", "b"} {
			wg.Go(func() {
				got, job, err := b.mgr.ClaimBatch(ctx, bt.ID, w, lease)
				mu.Lock()
				defer mu.Unlock()
				if errors.Is(err, jobs.ErrNotClaimable) {
					refused++
					return
				}
				require.NoError(t, err)
				require.Equal(t, bt.ID, got.ID)
				require.Equal(t, w, got.Worker)
				require.Equal(t, jobs.StatusInProgress, job.Status)
				require.Empty(t, holder[bt.ID], "batch %s claimed twice", bt.ID)
				holder[bt.ID] = w
			})
		}
	}
	wg.Wait()
	require.Len(t, holder, len(batches))
	require.Equal(t, len(batches), refused)

	for _, bt := range batches {
		wg.Go(func() {
			_, err := b.mgr.FinishBatch(ctx, bt.ID, holder[bt.ID])
			require.NoError(t, err)
		})
	}
	wg.Wait()
	for _, j := range all {
		got, err := b.mgr.Get(ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusCompleted, got.Status)
		b.notifier.waitVersions(t, j.ID, 1, 2, 3) // created, started, completed: each announced once
	}
	b.notifier.mu.Lock()
	defer b.notifier.mu.Unlock()
	require.Zero(t, b.notifier.sameGroup)

	// A finish by a worker that does not hold the batch is refused, alone or in a group.
	_, err := b.mgr.FinishBatch(ctx, batches[0].ID, holder[batches[0].ID])
	require.ErrorIs(t, err, jobs.ErrLeaseLost)
}

// A claim committed after its caller went away (its group waited on a lock meanwhile) is handed
// back at once: the batch is queued again, not held under a lease nobody works.
func TestClaimForACallerThatLeftIsHandedBack(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	job := b.createJob(t, newDocIDs(1)...)
	batches, err := b.mgr.Batches(ctx, job.ID)
	require.NoError(t, err)
	id := batches[0].ID

	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck // released below; a no-op then
	_, err = tx.Exec(ctx, `SELECT 1 FROM job_batches WHERE id = $1 FOR UPDATE`, id)
	require.NoError(t, err)
	var holder int
	require.NoError(t, tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&holder))

	callerCtx, leave := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, _, err := b.mgr.ClaimBatch(callerCtx, id, "w", lease)
		done <- err
	}()
	require.Eventually(t, func() bool { // the claim's group waits on the row lock
		var waiting bool
		err := b.pool.QueryRow(ctx, `SELECT count(*) > 0 FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))`, holder).Scan(&waiting)
		return err == nil && waiting
	}, 10*time.Second, time.Millisecond)
	leave()
	require.ErrorIs(t, <-done, context.Canceled)
	require.NoError(t, tx.Rollback(ctx))

	require.Eventually(t, func() bool {
		got, err := b.mgr.GetBatch(ctx, id)
		return err == nil && got.State == jobs.BatchQueued && got.Claims == 1
	}, 10*time.Second, time.Millisecond, "claimed once, then handed back")
	require.NoError(t, b.mgr.Flush(ctx))
}
