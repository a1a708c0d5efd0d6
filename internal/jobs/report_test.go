package jobs_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/jobs"
)

// claimedJob is a running job whose batches are each held by their own worker.
type claimedJob struct {
	job     *jobs.Job
	docs    []uuid.UUID
	batches []*jobs.Batch
	workers []string
}

// claimedJob creates a job of n documents in batches of batchSize and claims every batch.
func (b *testBundle) claimedJob(t *testing.T, n int) *claimedJob {
	t.Helper()
	ctx := t.Context()
	c := &claimedJob{docs: newDocIDs(n)}
	c.job = b.createJob(t, c.docs...)
	bs, err := b.mgr.Batches(ctx, c.job.ID)
	require.NoError(t, err)
	for i, bt := range bs {
		w := fmt.Sprintf("worker-%d", i)
		claimed, _, err := b.mgr.ClaimBatch(ctx, bt.ID, w, time.Minute)
		require.NoError(t, err)
		c.batches, c.workers = append(c.batches, claimed), append(c.workers, w)
	}
	c.job, err = b.mgr.Get(ctx, c.job.ID)
	require.NoError(t, err)
	return c
}

// report is batch i's worker reporting results.
func (c *claimedJob) report(i int, results ...jobs.DocumentResultUpdate) jobs.ReportParams {
	return jobs.ReportParams{
		JobID: c.job.ID, BatchID: uuid.NullUUID{UUID: c.batches[i].ID, Valid: true},
		Worker: c.workers[i], Lease: time.Minute, Results: results,
	}
}

// countersFromRows counts the job's per-document rows as its counters are defined.
func countersFromRows(t *testing.T, b *testBundle, id uuid.UUID) [3]int64 {
	t.Helper()
	var c [3]int64
	require.NoError(t, b.pool.QueryRow(t.Context(), `
		SELECT count(*) FILTER (WHERE status IN ('succeeded', 'skipped')),
		       count(*) FILTER (WHERE status = 'failed'),
		       COALESCE(sum(chunk_count) FILTER (WHERE status IN ('succeeded', 'skipped')), 0)
		FROM job_documents WHERE job_id = $1`, id).Scan(&c[0], &c[1], &c[2]))
	return c
}

func counters(j *jobs.Job) [3]int64 { return [3]int64{j.ProcessedCount, j.ErrorCount, j.ChunkCount} }

// TestReportCountersEqualRowsUnderConcurrency has several workers, through two Recorders (two
// server replicas) and RecordResults, report every document of one job several times over, each
// time with another status and chunk count, all at once. The counters are moved by differences,
// so they must still equal a count over the rows, and every version is published exactly once.
func TestReportCountersEqualRowsUnderConcurrency(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *jobs.Config) { c.BatchSize = 5 })
	c := b.claimedJob(t, 40)
	replicas := []*jobs.Recorder{b.mgr.NewRecorder(jobs.RecorderConfig{}), b.mgr.NewRecorder(jobs.RecorderConfig{MaxReports: 3})}
	statuses := []jobs.DocStatus{jobs.DocSucceeded, jobs.DocFailed, jobs.DocSkipped, jobs.DocPending, jobs.DocSucceeded}

	const rounds = 4
	errsOf := race(len(c.batches), func(w int) error {
		for r := range rounds {
			for k, doc := range c.batches[w].DocumentIDs {
				st := statuses[(w+k+r)%len(statuses)]
				res := jobs.DocumentResultUpdate{DocumentID: doc, Status: st, ChunkCount: int64(1 + (w*7+k*3+r)%11), Attempts: int32(r + 1)}
				if st == jobs.DocFailed {
					res.LastError, res.ErrorKind = "boom", jobs.KindTransient
				}
				var err error
				switch (w + k + r) % 3 {
				case 0, 1:
					_, err = replicas[(w+r)%2].Report(t.Context(), c.report(w, res))
				case 2:
					_, err = b.mgr.RecordResults(t.Context(), jobs.RecordParams{JobID: c.job.ID, Results: []jobs.DocumentResultUpdate{res}})
				}
				if err != nil {
					return err
				}
			}
		}
		return nil
	})
	for _, err := range errsOf {
		require.NoError(t, err)
	}

	got, err := b.mgr.Get(t.Context(), c.job.ID)
	require.NoError(t, err)
	require.Equal(t, countersFromRows(t, b, c.job.ID), counters(got))
	// A transaction moves a job one version however many of its reports it holds.
	require.Greater(t, got.Version, c.job.Version)
	require.LessOrEqual(t, got.Version, c.job.Version+rounds*int64(len(c.docs)))

	seen := map[int64]bool{}
	for _, v := range notifiedUpTo(t, b, c.job.ID, got.Version) {
		require.False(t, seen[v], "version %d published twice", v)
		seen[v] = true
	}
	for v := c.job.Version + 1; v <= got.Version; v++ {
		require.True(t, seen[v], "version %d never published", v)
	}
}

// notifiedUpTo waits until the Notifier has heard of version of the job (a Recorder tells it
// after answering the reports) and returns the versions it heard, in order.
func notifiedUpTo(t *testing.T, b *testBundle, id uuid.UUID, version int64) []int64 {
	t.Helper()
	require.Eventually(t, func() bool { return slices.Contains(b.notifier.versions(id), version) },
		10*time.Second, 5*time.Millisecond, "version %d never published", version)
	return b.notifier.versions(id)
}

// TestReportVerdicts: each refusal of a report is its own error, naming the field where there
// is one, and writes no results.
func TestReportVerdicts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	rec := b.mgr.NewRecorder(jobs.RecorderConfig{})
	c := b.claimedJob(t, 3)
	other := b.claimedJob(t, 1)
	ok := jobs.DocumentResultUpdate{DocumentID: c.docs[0], Status: jobs.DocSucceeded, ChunkCount: 2}
	before := rowText(t, b.pool, c.job.ID)

	lost := c.report(0, ok)
	lost.Worker = "someone-else"
	_, err := rec.Report(ctx, lost)
	require.ErrorIs(t, err, jobs.ErrLeaseLost)

	wrong := c.report(0, ok)
	wrong.BatchID = uuid.NullUUID{UUID: other.batches[0].ID, Valid: true}
	wrong.Worker = other.workers[0]
	_, err = rec.Report(ctx, wrong)
	requireInvalidArgument(t, err, "batch_id")

	stray := c.report(0, ok, jobs.DocumentResultUpdate{DocumentID: other.docs[0], Status: jobs.DocSucceeded})
	_, err = rec.Report(ctx, stray)
	requireInvalidArgument(t, err, "document_id")
	require.ErrorContains(t, err, other.docs[0].String())

	twice := c.report(0, ok, ok)
	_, err = rec.Report(ctx, twice)
	requireInvalidArgument(t, err, "document_id")

	missing := jobs.ReportParams{JobID: uuid.New(), Results: []jobs.DocumentResultUpdate{ok}}
	_, err = rec.Report(ctx, missing)
	require.ErrorIs(t, err, errs.ErrNotFound)

	require.Equal(t, before, rowText(t, b.pool, c.job.ID), "refused reports write nothing")

	// A heartbeat (no results) writes no result. It leaves a lease with more than three
	// quarters to run as it is (the batch was claimed for the minute a report asks for), and
	// renews one with less (a report asking for two minutes).
	hb, err := rec.Report(ctx, c.report(0))
	require.NoError(t, err)
	require.Equal(t, c.job.Version, hb.Version)
	kept, err := b.mgr.GetBatch(ctx, c.batches[0].ID)
	require.NoError(t, err)
	require.Equal(t, *c.batches[0].LeaseUntil, *kept.LeaseUntil, "three quarters of the lease left: not renewed")
	longer := c.report(0)
	longer.Lease = 2 * time.Minute
	_, err = rec.Report(ctx, longer)
	require.NoError(t, err)
	renewed, err := b.mgr.GetBatch(ctx, c.batches[0].ID)
	require.NoError(t, err)
	require.True(t, renewed.LeaseUntil.After(c.batches[0].LeaseUntil.Add(time.Minute-time.Second)), "lease renewed for two minutes")

	got, err := rec.Report(ctx, c.report(0, ok))
	require.NoError(t, err)
	require.Equal(t, [3]int64{1, 0, 2}, counters(got))
	require.Equal(t, c.job.Version+1, got.Version)
	require.Equal(t, c.docs, got.DocumentIDs, "document ids read back in order, as created")

	// A cancelled job takes heartbeats but no results.
	_, err = b.mgr.Cancel(ctx, c.job.ID)
	require.NoError(t, err)
	_, err = rec.Report(ctx, c.report(0, jobs.DocumentResultUpdate{DocumentID: c.docs[1], Status: jobs.DocSucceeded}))
	require.ErrorIs(t, err, errs.ErrFailedPrecondition)
	hb, err = rec.Report(ctx, jobs.ReportParams{JobID: c.job.ID})
	require.NoError(t, err)
	require.Equal(t, jobs.StatusCancelled, hb.Status)

	// Checked before anything is sent.
	_, err = rec.Report(ctx, jobs.ReportParams{})
	requireInvalidArgument(t, err, "job_id")
	_, err = rec.Report(ctx, jobs.ReportParams{JobID: c.job.ID, Results: []jobs.DocumentResultUpdate{{DocumentID: c.docs[0], Status: "odd"}}})
	requireInvalidArgument(t, err, "status")
}

// TestJobReportGroup: reports recorded in one transaction are judged one by one (a refused one
// does not stop the others), a document reported twice keeps the later result, and a job with
// several accepted reports moves one version.
func TestJobReportGroup(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *jobs.Config) { c.BatchSize = 2 })
	ctx := t.Context()
	c := b.claimedJob(t, 4)
	store := jobs.NewPgStore(b.pool)
	doc := func(i int, st jobs.DocStatus, chunks int64) jobs.DocumentResultUpdate {
		return jobs.DocumentResultUpdate{DocumentID: c.docs[i], Status: st, ChunkCount: chunks}
	}
	first, second := c.report(0, doc(0, jobs.DocSucceeded, 5)), c.report(0, doc(0, jobs.DocFailed, 0), doc(1, jobs.DocSkipped, 3))
	lost := c.report(1, doc(2, jobs.DocSucceeded, 7))
	lost.Worker = "someone-else"
	third := c.report(1, doc(3, jobs.DocSucceeded, 11))

	res, err := store.JobReport(ctx, &jobs.JobReportParams{Reports: []*jobs.ReportParams{&first, &lost, &second, &third}})
	require.NoError(t, err)
	var outcomes []jobs.ReportOutcome
	for _, v := range res.Verdicts {
		outcomes = append(outcomes, v.Outcome)
	}
	require.Equal(t, []jobs.ReportOutcome{jobs.ReportOK, jobs.ReportLeaseLost, jobs.ReportOK, jobs.ReportOK}, outcomes)
	got := res.Jobs[c.job.ID]
	require.Equal(t, c.job.Version+1, got.Version)
	require.Equal(t, [3]int64{2, 1, 14}, counters(got), "doc 0 failed (the later report), 1 skipped (3), 3 succeeded (11)")
	require.Equal(t, countersFromRows(t, b, c.job.ID), counters(got))

	// A statement that fails takes the whole transaction back, and the pool's connections
	// stay usable.
	before := rowText(t, b.pool, c.job.ID)
	good, bad := c.report(0, doc(0, jobs.DocSucceeded, 1)), c.report(1, doc(2, "odd", 1))
	for range 10 { // more than the pool's connections
		_, err = store.JobReport(ctx, &jobs.JobReportParams{Reports: []*jobs.ReportParams{&good, &bad}})
		requireInvalidArgument(t, err, "status")
	}
	require.Equal(t, before, rowText(t, b.pool, c.job.ID))
	res, err = store.JobReport(ctx, &jobs.JobReportParams{Reports: []*jobs.ReportParams{&good}})
	require.NoError(t, err)
	require.Equal(t, jobs.ReportOK, res.Verdicts[0].Outcome)
	require.Equal(t, c.docs, res.Jobs[c.job.ID].DocumentIDs)

	// Document ids the caller knows are not read again: the job gets the caller's slice.
	known := []uuid.UUID{c.docs[0]}
	res, err = store.JobReport(ctx, &jobs.JobReportParams{
		Reports: []*jobs.ReportParams{&good}, KnownDocuments: map[uuid.UUID][]uuid.UUID{c.job.ID: known},
	})
	require.NoError(t, err)
	require.Equal(t, known, res.Jobs[c.job.ID].DocumentIDs)
}

// TestRecorderGroupsAndCommittedHook: reports waiting together share a transaction; Committed
// sees each changed job once per commit, before its reports are answered, and the Notifier
// hears each version once (after the answers).
func TestRecorderGroupsAndCommittedHook(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *jobs.Config) { c.BatchSize = 1 })
	c := b.claimedJob(t, 30)
	var mu sync.Mutex
	committed := map[int64]int{}
	rec := b.mgr.NewRecorder(jobs.RecorderConfig{MaxInFlight: 1, Committed: func(j *jobs.Job) {
		mu.Lock()
		defer mu.Unlock()
		committed[j.Version]++
	}})

	versions := make([]int64, len(c.batches))
	for _, err := range race(len(c.batches), func(i int) error {
		j, err := rec.Report(context.Background(), c.report(i, jobs.DocumentResultUpdate{DocumentID: c.docs[i], Status: jobs.DocSucceeded, ChunkCount: 1}))
		if err == nil {
			mu.Lock()
			defer mu.Unlock()
			if committed[j.Version] != 1 {
				return fmt.Errorf("version %d answered before Committed saw it once (%d)", j.Version, committed[j.Version])
			}
			versions[i] = j.Version
		}
		return err
	}) {
		require.NoError(t, err)
	}
	got, err := b.mgr.Get(t.Context(), c.job.ID)
	require.NoError(t, err)
	require.EqualValues(t, 30, got.ProcessedCount)
	require.Equal(t, countersFromRows(t, b, c.job.ID), counters(got))
	require.Len(t, committed, int(got.Version-c.job.Version), "one Committed call per version")
	notified := 0
	for _, v := range notifiedUpTo(t, b, c.job.ID, got.Version) {
		if v > c.job.Version {
			notified++
		}
	}
	require.Equal(t, len(committed), notified, "one notice per version")
	require.LessOrEqual(t, got.Version-c.job.Version, int64(30))
}

// TestRecorderLockedJobFailsAlone: a job row held by another transaction makes its reports fail
// as Unavailable after the lock timeout, while the reports of other jobs that shared their
// transaction are recorded (the group is retried report by report).
func TestRecorderLockedJobFailsAlone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	locked, free := b.claimedJob(t, 1), b.claimedJob(t, 1)
	holder, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = holder.Rollback(context.Background()) }()
	_, err = holder.Exec(ctx, `SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE`, locked.job.ID)
	require.NoError(t, err)

	var holderPID int
	require.NoError(t, holder.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&holderPID))

	rec := b.mgr.NewRecorder(jobs.RecorderConfig{MaxInFlight: 1, LockTimeout: time.Second})
	reports := []jobs.ReportParams{
		locked.report(0),
		free.report(0, jobs.DocumentResultUpdate{DocumentID: free.docs[0], Status: jobs.DocSucceeded, ChunkCount: 3}),
		locked.report(0, jobs.DocumentResultUpdate{DocumentID: locked.docs[0], Status: jobs.DocSucceeded, ChunkCount: 1}),
	}
	errsOut := make([]error, len(reports))
	var wg sync.WaitGroup
	send := func(i int) {
		wg.Go(func() { _, errsOut[i] = rec.Report(context.Background(), reports[i]) })
	}
	// The first report's transaction waits on the lock; the next two queue meanwhile and go
	// together, so the free job's report shares a transaction with a report of the locked job.
	send(0)
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))`, holderPID).Scan(&n))
		return n > 0
	}, 10*time.Second, 5*time.Millisecond, "the first report waits on the held row")
	send(1)
	send(2)
	wg.Wait()
	require.ErrorIs(t, errsOut[0], errs.ErrUnavailable)
	require.ErrorIs(t, errsOut[2], errs.ErrUnavailable)
	require.NoError(t, errsOut[1], "the free job's report is recorded")
	got, err := b.mgr.Get(ctx, free.job.ID)
	require.NoError(t, err)
	require.EqualValues(t, 1, got.ProcessedCount)
	require.EqualValues(t, 3, got.ChunkCount)

	require.NoError(t, holder.Rollback(ctx))
	_, err = rec.Report(ctx, reports[2])
	require.NoError(t, err, "once the lock is gone the locked job's report is recorded")
}
