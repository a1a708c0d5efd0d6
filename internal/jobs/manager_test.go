package jobs_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/jobs"
)

func TestCreate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	docs := newDocIDs(3)

	job, err := b.mgr.Create(ctx, jobs.CreateParams{Type: jobs.TypeProcess, SourceID: b.source, DocumentIDs: docs})
	require.NoError(t, err)
	require.NotEqual(t, uuid.Nil, job.ID)
	require.Equal(t, jobs.TypeProcess, job.Type)
	require.Equal(t, jobs.StatusPending, job.Status)
	require.Equal(t, b.source, job.SourceID)
	require.Equal(t, docs, job.DocumentIDs)
	require.Equal(t, int64(1), job.Version)
	require.Equal(t, time.Hour, job.Timeout)
	require.Empty(t, job.QueueMessageID, "no Enqueuer: the job waits for the reconciler")
	require.False(t, job.RetryOf.Valid)
	require.Nil(t, job.StartedAt)
	require.Nil(t, job.FinishedAt)
	require.Zero(t, job.ChunkCount+job.ProcessedCount+job.ErrorCount)
	require.Equal(t, job.CreatedAt, job.UpdatedAt)

	got, err := b.mgr.Get(ctx, job.ID)
	require.NoError(t, err)
	require.Equal(t, job, got)

	results, next, err := b.mgr.ListDocumentResults(ctx, job.ID, 0, "")
	require.NoError(t, err)
	require.Empty(t, next)
	require.Len(t, results, 3)
	for _, r := range results {
		require.Equal(t, job.ID, r.JobID)
		require.Contains(t, docs, r.DocumentID)
		require.Equal(t, jobs.DocPending, r.Status)
		require.Zero(t, r.Attempts)
		require.Empty(t, r.ErrorKind)
	}
	require.Equal(t, []int64{1}, b.notifier.versions(job.ID))

	crawl, err := b.mgr.Create(ctx, jobs.CreateParams{Type: jobs.TypeCrawl, SourceID: b.source, Timeout: 1500 * time.Millisecond})
	require.NoError(t, err)
	require.Equal(t, jobs.TypeCrawl, crawl.Type)
	require.Empty(t, crawl.DocumentIDs)
	require.NotNil(t, crawl.DocumentIDs)
	require.Equal(t, 2*time.Second, crawl.Timeout, "timeouts are stored in whole seconds, rounded up")
}

func TestCreateInvalid(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	dup := uuid.New()

	for _, tc := range []struct {
		name  string
		p     jobs.CreateParams
		field string
	}{
		{"no type", jobs.CreateParams{SourceID: b.source}, "type"},
		{"bad type", jobs.CreateParams{Type: "index", SourceID: b.source}, "type"},
		{"no source", jobs.CreateParams{Type: jobs.TypeCrawl}, "source_id"},
		{"nil document", jobs.CreateParams{Type: jobs.TypeProcess, SourceID: b.source, DocumentIDs: []uuid.UUID{uuid.Nil}}, "document_ids"},
		{"duplicate document", jobs.CreateParams{Type: jobs.TypeProcess, SourceID: b.source, DocumentIDs: []uuid.UUID{dup, dup}}, "document_ids"},
		{"negative timeout", jobs.CreateParams{Type: jobs.TypeCrawl, SourceID: b.source, Timeout: -time.Second}, "timeout"},
	} {
		_, err := b.mgr.Create(ctx, tc.p)
		requireInvalidArgument(t, err, tc.field)
	}

	missing := uuid.New()
	_, err := b.mgr.Create(ctx, jobs.CreateParams{Type: jobs.TypeCrawl, SourceID: missing})
	require.ErrorIs(t, err, errs.ErrNotFound)
	var nf *errs.NotFoundError
	require.ErrorAs(t, err, &nf)
	require.Equal(t, errs.NotFoundError{Kind: "source", ID: missing.String()}, *nf)

	var n int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM jobs`).Scan(&n))
	require.Zero(t, n)
}

func TestGetMissing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.mgr.Get(t.Context(), uuid.New())
	require.ErrorIs(t, err, errs.ErrNotFound)
}

func TestCreateEnqueues(t *testing.T) {
	t.Parallel()
	enq := &fakeEnqueuer{}
	b := setup(t, func(c *jobs.Config) { c.Enqueuer = enq })

	job := b.createJob(t, newDocIDs(2)...)
	seen := enq.batches()
	require.Len(t, seen, 1, "two documents fit one batch")
	require.Equal(t, job.ID, seen[0].JobID)
	require.Equal(t, fmt.Sprintf("msg-%s-1", seen[0].ID), job.QueueMessageID)
	require.Equal(t, int64(1), job.Version, "the message id is stored with the job (decision 0036): no second write")
	require.Equal(t, jobs.StatusPending, job.Status)

	batches, err := b.mgr.Batches(t.Context(), job.ID)
	require.NoError(t, err)
	require.Len(t, batches, 1)
	require.Equal(t, 1, batches[0].Enqueues)
	require.Equal(t, job.QueueMessageID, batches[0].QueueMessageID)
	require.NotNil(t, batches[0].EnqueuedAt)

	got, err := b.mgr.Get(t.Context(), job.ID)
	require.NoError(t, err)
	require.Equal(t, job, got)
	require.Equal(t, []int64{1}, b.notifier.versions(job.ID))
}

// TestCreateEnqueueFails: the job and its batch are stored with their first message named
// before it is sent (decision 0036), so a message that could not be sent leaves them as if it
// had been; the reconciler finds no marker for it in Redis and sends the batch again once the
// grace has passed (internal/processing: TestCreatorsLostMessageIsSentAfterTheGrace).
func TestCreateEnqueueFails(t *testing.T) {
	t.Parallel()
	enq := &fakeEnqueuer{err: errQueueDown}
	b := setup(t, func(c *jobs.Config) { c.Enqueuer = enq })

	job, err := b.mgr.Create(t.Context(), jobs.CreateParams{Type: jobs.TypeProcess, SourceID: b.source, DocumentIDs: newDocIDs(3)})
	require.NoError(t, err, "the job is safe in Postgres; the reconciler enqueues it later")
	require.Equal(t, jobs.StatusPending, job.Status)
	require.Equal(t, int64(1), job.Version)
	seen := enq.batches()
	require.Len(t, seen, 1)
	require.Equal(t, fmt.Sprintf("msg-%s-1", seen[0].ID), job.QueueMessageID)
	batches, err := b.mgr.Batches(t.Context(), job.ID)
	require.NoError(t, err)
	require.Len(t, batches, 1)
	require.Equal(t, 1, batches[0].Enqueues, "stored as sent")
	require.Equal(t, jobs.BatchQueued, batches[0].State)

	got, err := b.mgr.Get(t.Context(), job.ID)
	require.NoError(t, err)
	require.Equal(t, job, got)
}

func TestNotifierSeesEveryVersionOnce(t *testing.T) {
	t.Parallel()
	enq := &fakeEnqueuer{}
	b := setup(t, func(c *jobs.Config) { c.Enqueuer = enq })
	ctx := t.Context()
	docs := newDocIDs(2)

	job := b.createJob(t, docs...) // v1 insert, with its message id
	_, err := b.mgr.Start(ctx, job.ID)
	require.NoError(t, err) // v2
	_, err = b.mgr.RecordResults(ctx, jobs.RecordParams{JobID: job.ID, Results: []jobs.DocumentResultUpdate{
		{DocumentID: docs[0], Status: jobs.DocSucceeded, ChunkCount: 4, Attempts: 1},
	}})
	require.NoError(t, err) // v3
	_, err = b.mgr.Start(ctx, job.ID)
	require.ErrorIs(t, err, errs.ErrFailedPrecondition) // no write, no event
	_, err = b.mgr.Cancel(ctx, job.ID)
	require.NoError(t, err) // v4
	_, err = b.mgr.Cancel(ctx, job.ID)
	require.NoError(t, err) // idempotent: no write, no event

	require.Equal(t, []int64{1, 2, 3, 4}, b.notifier.versions(job.ID))
	b.notifier.mu.Lock()
	defer b.notifier.mu.Unlock()
	last := b.notifier.events[len(b.notifier.events)-1]
	require.Equal(t, jobs.StatusCancelled, last.Status)
	require.Equal(t, int64(4), last.ChunkCount)
}

func TestNotifierErrorDoesNotFailWrites(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.notifier.err = errQueueDown

	job := b.createJob(t)
	started, err := b.mgr.Start(t.Context(), job.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.StatusInProgress, started.Status)
	require.Equal(t, []int64{1, 2}, b.notifier.versions(job.ID))
}

func TestRecordResults(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	docs := newDocIDs(4)
	job := b.jobIn(t, jobs.StatusInProgress, docs...)

	got, err := b.mgr.RecordResults(ctx, jobs.RecordParams{JobID: job.ID, Results: []jobs.DocumentResultUpdate{
		{DocumentID: docs[0], Status: jobs.DocSucceeded, ChunkCount: 5, Attempts: 1},
		{DocumentID: docs[1], Status: jobs.DocSkipped, ChunkCount: 3, Attempts: 1},
		{DocumentID: docs[2], Status: jobs.DocFailed, ChunkCount: 7, Attempts: 3, LastError: "embedder: 503", ErrorKind: jobs.KindTransient},
	}})
	require.NoError(t, err)
	require.Equal(t, jobs.StatusInProgress, got.Status)
	require.Equal(t, int64(2), got.ProcessedCount)
	require.Equal(t, int64(1), got.ErrorCount)
	require.Equal(t, int64(8), got.ChunkCount, "chunks of failed documents do not count")
	require.Equal(t, job.Version+1, got.Version)

	results, _, err := b.mgr.ListDocumentResults(ctx, job.ID, 0, "")
	require.NoError(t, err)
	byDoc := map[uuid.UUID]*jobs.DocumentResult{}
	for _, r := range results {
		byDoc[r.DocumentID] = r
	}
	require.Equal(t, jobs.DocFailed, byDoc[docs[2]].Status)
	require.Equal(t, int32(3), byDoc[docs[2]].Attempts)
	require.Equal(t, "embedder: 503", byDoc[docs[2]].LastError)
	require.Equal(t, jobs.KindTransient, byDoc[docs[2]].ErrorKind)
	require.Equal(t, jobs.DocPending, byDoc[docs[3]].Status)

	// A later report replaces the earlier one, and the counters follow.
	got, err = b.mgr.RecordResults(ctx, jobs.RecordParams{JobID: job.ID, Results: []jobs.DocumentResultUpdate{
		{DocumentID: docs[2], Status: jobs.DocSucceeded, ChunkCount: 2, Attempts: 4},
	}})
	require.NoError(t, err)
	require.Equal(t, int64(3), got.ProcessedCount)
	require.Zero(t, got.ErrorCount)
	require.Equal(t, int64(10), got.ChunkCount)
	require.Equal(t, job.Version+2, got.Version)
}

func TestRecordResultsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	docs := newDocIDs(2)
	running := b.jobIn(t, jobs.StatusInProgress, docs...)
	ok := jobs.DocumentResultUpdate{DocumentID: docs[0], Status: jobs.DocSucceeded, ChunkCount: 1, Attempts: 1}

	for _, tc := range []struct {
		name    string
		results []jobs.DocumentResultUpdate
		field   string
	}{
		{"none", nil, "results"},
		{"not in job", []jobs.DocumentResultUpdate{ok, {DocumentID: uuid.New(), Status: jobs.DocSucceeded}}, "document_id"},
		{"nil document", []jobs.DocumentResultUpdate{{Status: jobs.DocSucceeded}}, "document_id"},
		{"twice", []jobs.DocumentResultUpdate{ok, ok}, "document_id"},
		{"bad status", []jobs.DocumentResultUpdate{{DocumentID: docs[0], Status: "done"}}, "status"},
		{"bad kind", []jobs.DocumentResultUpdate{{DocumentID: docs[0], Status: jobs.DocFailed, ErrorKind: "fatal"}}, "error_kind"},
		{"negative chunks", []jobs.DocumentResultUpdate{{DocumentID: docs[0], Status: jobs.DocSucceeded, ChunkCount: -1}}, "chunk_count"},
		{"negative attempts", []jobs.DocumentResultUpdate{{DocumentID: docs[0], Status: jobs.DocSucceeded, Attempts: -1}}, "attempts"},
	} {
		before := rowText(t, b.pool, running.ID)
		_, err := b.mgr.RecordResults(ctx, jobs.RecordParams{JobID: running.ID, Results: tc.results})
		requireInvalidArgument(t, err, tc.field)
		require.Equal(t, before, rowText(t, b.pool, running.ID), tc.name)
	}

	_, err := b.mgr.RecordResults(ctx, jobs.RecordParams{JobID: uuid.New(), Results: []jobs.DocumentResultUpdate{ok}})
	require.ErrorIs(t, err, errs.ErrNotFound)

	for _, status := range allStatuses {
		if status == jobs.StatusInProgress {
			continue
		}
		job := b.jobIn(t, status, docs...)
		before := rowText(t, b.pool, job.ID)
		_, err := b.mgr.RecordResults(ctx, jobs.RecordParams{JobID: job.ID, Results: []jobs.DocumentResultUpdate{ok}})
		require.ErrorIs(t, err, errs.ErrFailedPrecondition, status)
		require.Contains(t, err.Error(), string(status))
		require.Equal(t, before, rowText(t, b.pool, job.ID), "a refused report writes nothing")
	}
}

func TestRetry(t *testing.T) {
	t.Parallel()
	enq := &fakeEnqueuer{}
	b := setup(t, func(c *jobs.Config) { c.Enqueuer = enq })
	ctx := t.Context()
	docs := newDocIDs(5)

	old := b.jobIn(t, jobs.StatusInProgress, docs...)
	_, err := b.mgr.RecordResults(ctx, jobs.RecordParams{JobID: old.ID, Results: []jobs.DocumentResultUpdate{
		{DocumentID: docs[0], Status: jobs.DocSucceeded, ChunkCount: 2, Attempts: 1},
		{DocumentID: docs[1], Status: jobs.DocSkipped, Attempts: 1},
		{DocumentID: docs[2], Status: jobs.DocFailed, Attempts: 3, LastError: "bad pdf", ErrorKind: jobs.KindPermanent},
		{DocumentID: docs[4], Status: jobs.DocFailed, Attempts: 3, LastError: "timeout", ErrorKind: jobs.KindTransient},
	}})
	require.NoError(t, err)
	old, err = b.mgr.Complete(ctx, old.ID)
	require.NoError(t, err)
	oldRow := rowText(t, b.pool, old.ID)

	retry, err := b.mgr.Retry(ctx, old.ID)
	require.NoError(t, err)
	require.NotEqual(t, old.ID, retry.ID)
	require.Equal(t, uuid.NullUUID{UUID: old.ID, Valid: true}, retry.RetryOf)
	require.Equal(t, []uuid.UUID{docs[2], docs[3], docs[4]}, retry.DocumentIDs, "failed and never-finished documents, in the old order")
	require.Equal(t, jobs.StatusPending, retry.Status)
	require.Equal(t, old.Type, retry.Type)
	require.Equal(t, old.SourceID, retry.SourceID)
	require.Equal(t, old.Timeout, retry.Timeout)
	require.Zero(t, retry.ProcessedCount+retry.ErrorCount+retry.ChunkCount)
	require.True(t, strings.HasPrefix(retry.QueueMessageID, "msg-"), "a retry is enqueued like a new job")
	require.Equal(t, oldRow, rowText(t, b.pool, old.ID), "retry leaves the old job alone")

	results, _, err := b.mgr.ListDocumentResults(ctx, retry.ID, 0, "")
	require.NoError(t, err)
	require.Len(t, results, 3)
	for _, r := range results {
		require.Equal(t, jobs.DocPending, r.Status)
	}

	// A cancelled job is retried too; a failed crawl job with no documents runs again as it was.
	cancelled := b.jobIn(t, jobs.StatusCancelled, newDocIDs(2)...)
	again, err := b.mgr.Retry(ctx, cancelled.ID)
	require.NoError(t, err)
	require.Equal(t, cancelled.DocumentIDs, again.DocumentIDs)

	crawl, err := b.mgr.Create(ctx, jobs.CreateParams{Type: jobs.TypeCrawl, SourceID: b.source})
	require.NoError(t, err)
	_, err = b.mgr.Fail(ctx, crawl.ID, "site down")
	require.NoError(t, err)
	crawlRetry, err := b.mgr.Retry(ctx, crawl.ID)
	require.NoError(t, err)
	require.Equal(t, jobs.TypeCrawl, crawlRetry.Type)
	require.Empty(t, crawlRetry.DocumentIDs)
	require.Equal(t, crawl.ID, crawlRetry.RetryOf.UUID)
}

func TestRetryRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	docs := newDocIDs(2)

	for _, tc := range []struct {
		status jobs.Status
		reason string
	}{
		{jobs.StatusPending, "job is pending"},
		{jobs.StatusInProgress, "job is in_progress"},
		{jobs.StatusCompleted, "job completed without errors: nothing to retry"},
	} {
		job := b.jobIn(t, tc.status, docs...)
		_, err := b.mgr.Retry(ctx, job.ID)
		require.ErrorIs(t, err, errs.ErrFailedPrecondition)
		require.Contains(t, err.Error(), tc.reason)
	}

	// Cancelled after every document was done: nothing is left to do.
	job := b.jobIn(t, jobs.StatusInProgress, docs...)
	_, err := b.mgr.RecordResults(ctx, jobs.RecordParams{JobID: job.ID, Results: []jobs.DocumentResultUpdate{
		{DocumentID: docs[0], Status: jobs.DocSucceeded},
		{DocumentID: docs[1], Status: jobs.DocSkipped},
	}})
	require.NoError(t, err)
	_, err = b.mgr.Cancel(ctx, job.ID)
	require.NoError(t, err)
	_, err = b.mgr.Retry(ctx, job.ID)
	require.ErrorIs(t, err, errs.ErrFailedPrecondition)
	require.Contains(t, err.Error(), "nothing to retry")

	_, err = b.mgr.Retry(ctx, uuid.New())
	require.ErrorIs(t, err, errs.ErrNotFound)

	var n int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE retry_of IS NOT NULL`).Scan(&n))
	require.Zero(t, n)
}

func TestSetQueueMessageID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()

	job := b.createJob(t)
	got, err := b.mgr.SetQueueMessageID(ctx, job.ID, "1700000000000-0")
	require.NoError(t, err)
	require.Equal(t, "1700000000000-0", got.QueueMessageID)
	require.Equal(t, job.Version+1, got.Version)

	_, err = b.mgr.SetQueueMessageID(ctx, job.ID, "")
	requireInvalidArgument(t, err, "queue_message_id")

	_, err = b.mgr.SetQueueMessageID(ctx, uuid.New(), "x")
	require.ErrorIs(t, err, errs.ErrNotFound)

	done := b.jobIn(t, jobs.StatusCompleted)
	before := rowText(t, b.pool, done.ID)
	_, err = b.mgr.SetQueueMessageID(ctx, done.ID, "x")
	require.ErrorIs(t, err, errs.ErrFailedPrecondition)
	require.Equal(t, before, rowText(t, b.pool, done.ID))
}

func TestListDocumentResults(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	docs := newDocIDs(12)
	job := b.createJob(t, docs...)
	other := b.createJob(t, newDocIDs(3)...)

	want := slices.Clone(docs)
	slices.SortFunc(want, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })

	var got []uuid.UUID
	token, pages := "", 0
	for {
		page, next, err := b.mgr.ListDocumentResults(ctx, job.ID, 5, token)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), 5)
		for _, r := range page {
			require.Equal(t, job.ID, r.JobID)
			got = append(got, r.DocumentID)
		}
		pages++
		if next == "" {
			break
		}
		token = next
	}
	require.Equal(t, want, got)
	require.Equal(t, 3, pages)

	_, next, err := b.mgr.ListDocumentResults(ctx, job.ID, 5, "")
	require.NoError(t, err)
	_, _, err = b.mgr.ListDocumentResults(ctx, other.ID, 5, next)
	requireInvalidArgument(t, err, "page_token")
	_, _, err = b.mgr.ListDocumentResults(ctx, job.ID, 5, "garbage!")
	requireInvalidArgument(t, err, "page_token")
	_, _, err = b.mgr.ListDocumentResults(ctx, job.ID, -1, "")
	requireInvalidArgument(t, err, "page_size")
	_, _, err = b.mgr.ListDocumentResults(ctx, uuid.New(), 5, "")
	require.ErrorIs(t, err, errs.ErrNotFound)

	all, next, err := b.mgr.ListDocumentResults(ctx, job.ID, 12, "")
	require.NoError(t, err)
	require.Len(t, all, 12)
	require.Empty(t, next, "a page that ends exactly at the last row has no next token")
}

func TestNewManagerConfig(t *testing.T) {
	t.Parallel()
	b := setup(t)
	store := jobs.NewPgStore(b.pool)

	_, err := jobs.NewManager(nil, jobs.Config{})
	require.Error(t, err)
	_, err = jobs.NewManager(store, jobs.Config{DefaultTimeout: time.Millisecond})
	require.ErrorContains(t, err, "DefaultTimeout")
	_, err = jobs.NewManager(store, jobs.Config{DefaultPageSize: 100, MaxPageSize: 10})
	require.ErrorContains(t, err, "MaxPageSize")

	cfg := jobs.Config{}.WithDefaults()
	require.Equal(t, time.Hour, cfg.DefaultTimeout)
	require.Equal(t, 50, cfg.DefaultPageSize)
	require.Equal(t, 1000, cfg.MaxPageSize)
	require.NotNil(t, cfg.Logger)
}
