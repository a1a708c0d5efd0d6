package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
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
		res, finished, err := tx.BatchesClaimFinish(t.Context(), []*jobs.BatchClaimParams{{ID: batches[0].ID, Worker: "w", Lease: lease}}, nil)
		require.NoError(t, err)
		require.Empty(t, finished)
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

	awaitWaiter, release := b.lockBatchRow(t, id)

	callerCtx, leave := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, _, err := b.mgr.ClaimBatch(callerCtx, id, "w", lease)
		done <- err
	}()
	awaitWaiter() // the claim's group waits on the row lock
	leave()
	require.ErrorIs(t, <-done, context.Canceled)
	release()

	require.Eventually(t, func() bool {
		got, err := b.mgr.GetBatch(ctx, id)
		return err == nil && got.State == jobs.BatchQueued && got.Claims == 1
	}, 10*time.Second, time.Millisecond, "claimed once, then handed back")
	require.NoError(t, b.mgr.Flush(ctx))
}

// Claims and finishes in one transaction: a finish next to the claim of a sibling batch leaves
// the job running (the finish sees the sibling claimed), a finish of a one-batch job ends it, a
// claim of a pending job starts it; each result says what it did, in the order asked.
func TestClaimsAndFinishesShareATransaction(t *testing.T) {
	t.Parallel()
	b := setup(t, batchSize(1))
	ctx := t.Context()
	two := b.createJob(t, newDocIDs(2)...)   // two batches
	one := b.createJob(t, newDocIDs(1)...)   // one batch, claimed first
	fresh := b.createJob(t, newDocIDs(1)...) // one batch, pending
	batchesOf := func(j *jobs.Job) []*jobs.Batch {
		list, err := b.mgr.Batches(ctx, j.ID)
		require.NoError(t, err)
		return list
	}
	twoB, oneB, freshB := batchesOf(two), batchesOf(one), batchesOf(fresh)
	for _, bt := range []*jobs.Batch{twoB[0], oneB[0]} {
		_, _, err := b.mgr.ClaimBatch(ctx, bt.ID, "w", lease)
		require.NoError(t, err)
	}

	store := jobs.NewPgStore(b.pool)
	claimed, finished, err := store.BatchesClaimFinish(ctx,
		[]*jobs.BatchClaimParams{{ID: twoB[1].ID, Worker: "w2", Lease: lease}, {ID: freshB[0].ID, Worker: "w3", Lease: lease}},
		[]*jobs.BatchFinishParams{{ID: twoB[0].ID, Worker: "w"}, {ID: oneB[0].ID, Worker: "w"}, {ID: freshB[0].ID, Worker: "nobody"}})
	require.NoError(t, err)
	require.Len(t, claimed, 2)
	require.Len(t, finished, 3)

	require.Equal(t, twoB[1].ID, claimed[0].Batch.ID)
	require.False(t, claimed[0].Started, "its job was started by the first claim")
	require.Equal(t, jobs.StatusInProgress, claimed[0].Job.Status)
	require.Equal(t, freshB[0].ID, claimed[1].Batch.ID)
	require.True(t, claimed[1].Started)
	require.Equal(t, jobs.StatusInProgress, claimed[1].Job.Status)

	require.Equal(t, jobs.BatchDone, finished[0].Batch.State)
	require.False(t, finished[0].JobEnded, "the sibling batch was claimed in the same transaction")
	require.Equal(t, jobs.StatusInProgress, finished[0].Job.Status)
	require.True(t, finished[1].JobEnded)
	require.Equal(t, jobs.StatusCompleted, finished[1].Job.Status)
	require.Nil(t, finished[2].Batch, "a finish by a worker that does not hold the batch does nothing")

	got, err := b.mgr.Get(ctx, two.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusInProgress, got.Status)
	// The sibling's finish, later, ends the job.
	_, finished, err = store.BatchesClaimFinish(ctx, nil, []*jobs.BatchFinishParams{{ID: twoB[1].ID, Worker: "w2"}})
	require.NoError(t, err)
	require.True(t, finished[0].JobEnded)
	require.Equal(t, jobs.StatusCompleted, finished[0].Job.Status)
}

// Workers that claim, finish and claim again at once share transactions of both kinds: with
// jobs of several batches, claims of some batches meet finishes of their siblings in one group
// and groups running side by side lock the same jobs. Every job still ends once, completed, and
// no group fails or deadlocks.
func TestClaimsAndFinishesOfSiblingsInterleave(t *testing.T) {
	t.Parallel()
	b := setup(t, batchSize(1), func(c *jobs.Config) { c.MaxGroup = 6 })
	ctx := t.Context()
	var all []*jobs.Job
	var queue []*jobs.Batch
	for i := range 40 {
		j := b.createJob(t, newDocIDs(1+i%4)...)
		all = append(all, j)
		list, err := b.mgr.Batches(ctx, j.ID)
		require.NoError(t, err)
		queue = append(queue, list...)
	}
	work := make(chan *jobs.Batch, len(queue))
	for _, bt := range queue {
		work <- bt
	}
	close(work)
	var wg sync.WaitGroup
	for w := range 8 {
		worker := fmt.Sprint("w", w)
		wg.Go(func() {
			for bt := range work {
				_, _, err := b.mgr.ClaimBatch(ctx, bt.ID, worker, lease)
				require.NoError(t, err)
				_, err = b.mgr.FinishBatch(ctx, bt.ID, worker)
				require.NoError(t, err)
			}
		})
	}
	wg.Wait()
	for _, j := range all {
		got, err := b.mgr.Get(ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, jobs.StatusCompleted, got.Status, "job of %d batches", len(got.DocumentIDs))
		b.notifier.waitVersions(t, j.ID, 1, 2, 3)
	}
	b.notifier.mu.Lock()
	defer b.notifier.mu.Unlock()
	require.Zero(t, b.notifier.sameGroup)
}

// A claim and a finish that wait together go in one group: while a group is held up (a row
// lock), a claim of one job's batch and the finish of another's queue behind it, and the next
// group commits both, announcing the started job and the ended one in one call.
func TestClaimAndFinishWaitingTogetherShareAGroup(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *jobs.Config) { c.MaxGroupsInFlight = 1 })
	ctx := t.Context()
	batchOf := func(j *jobs.Job) uuid.UUID {
		list, err := b.mgr.Batches(ctx, j.ID)
		require.NoError(t, err)
		return list[0].ID
	}
	held, toClaim, toFinish := b.createJob(t, newDocIDs(1)...), b.createJob(t, newDocIDs(1)...), b.createJob(t, newDocIDs(1)...)
	heldB, claimB, finishB := batchOf(held), batchOf(toClaim), batchOf(toFinish)
	_, _, err := b.mgr.ClaimBatch(ctx, finishB, "w", lease)
	require.NoError(t, err)

	awaitWaiter, release := b.lockBatchRow(t, heldB)

	var wg sync.WaitGroup
	wg.Go(func() {
		_, _, err := b.mgr.ClaimBatch(ctx, heldB, "w1", lease)
		assert.NoError(t, err)
	})
	awaitWaiter() // the first group waits on the row lock
	wg.Go(func() {
		_, job, err := b.mgr.ClaimBatch(ctx, claimB, "w2", lease)
		assert.NoError(t, err)
		assert.Equal(t, jobs.StatusInProgress, job.Status)
	})
	wg.Go(func() {
		job, err := b.mgr.FinishBatch(ctx, finishB, "w")
		assert.NoError(t, err)
		assert.Equal(t, jobs.StatusCompleted, job.Status)
	})
	require.Eventually(t, func() bool { return jobs.WaitingBatchCalls(b.mgr) == 2 }, 10*time.Second, time.Millisecond)
	release()
	wg.Wait()

	b.notifier.waitVersions(t, toClaim.ID, 1, 2)
	b.notifier.waitVersions(t, toFinish.ID, 1, 2, 3)
	b.notifier.mu.Lock()
	defer b.notifier.mu.Unlock()
	require.Equal(t, 1, b.notifier.mixed, "one announcement told of the started job and the ended one")
}

// lockBatchRow holds a batch's row lock in a transaction of its own, as a long statement would.
// awaitWaiter returns once another session waits for that lock; release rolls the transaction
// back (it is rolled back at the test's end anyway).
func (b *testBundle) lockBatchRow(t *testing.T, id uuid.UUID) (awaitWaiter, release func()) {
	t.Helper()
	ctx := t.Context()
	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	_, err = tx.Exec(ctx, `SELECT 1 FROM job_batches WHERE id = $1 FOR UPDATE`, id)
	require.NoError(t, err)
	awaitWaiter = func() { b.awaitWaiterOn(t, tx) }
	release = func() { require.NoError(t, tx.Rollback(ctx)) }
	return awaitWaiter, release
}

// awaitWaiterOn returns once another session waits for a lock tx holds.
func (b *testBundle) awaitWaiterOn(t *testing.T, tx pgx.Tx) {
	t.Helper()
	ctx := t.Context()
	var holder int
	require.NoError(t, tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&holder))
	require.Eventually(t, func() bool {
		var waiting bool
		err := b.pool.QueryRow(ctx, `SELECT count(*) > 0 FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))`, holder).Scan(&waiting)
		return err == nil && waiting
	}, 10*time.Second, time.Millisecond)
}

// A claim that waits for a job another claim is starting (a batch of the job outside its group)
// returns the job as that claim left it, started: not as its own statement's snapshot, taken
// before the wait, shows it (still pending). TestGroupedClaimsAndFinishes met this now and then.
func TestClaimWaitingForAJobStartedMeanwhileReturnsItStarted(t *testing.T) {
	t.Parallel()
	b := setup(t, batchSize(1))
	ctx := t.Context()
	job := b.createJob(t, newDocIDs(2)...)
	batches, err := b.mgr.Batches(ctx, job.ID)
	require.NoError(t, err)
	require.Len(t, batches, 2)

	// Another worker's claim of the first batch, under way: it holds the job's row.
	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(context.Background()) }()
	_, err = tx.Exec(ctx, `UPDATE job_batches SET state = 'running', worker = 'other', lease_until = now() + interval '1 minute', claims = claims + 1 WHERE id = $1`, batches[0].ID)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `UPDATE jobs SET status = 'in_progress', started_at = now(), version = version + 1, updated_at = now() WHERE id = $1`, job.ID)
	require.NoError(t, err)

	type claimed struct {
		job *jobs.Job
		err error
	}
	done := make(chan claimed, 1)
	go func() {
		_, j, err := b.mgr.ClaimBatch(ctx, batches[1].ID, "w", lease)
		done <- claimed{j, err}
	}()
	b.awaitWaiterOn(t, tx)
	require.NoError(t, tx.Commit(ctx))
	got := <-done
	require.NoError(t, got.err)
	require.Equal(t, jobs.StatusInProgress, got.job.Status)
	require.Equal(t, job.Version+1, got.job.Version, "the job as the other claim left it")
	require.NotNil(t, got.job.StartedAt)
}
