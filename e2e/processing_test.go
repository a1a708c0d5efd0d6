package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/app"
	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/jobs"
	"github.com/pipeline-dev/pipeline/internal/vector"
	"github.com/pipeline-dev/pipeline/worker"
)

// doc makes a small Markdown document with a unique marker word, so a search for the marker
// finds exactly this document, and the embedder can count the calls about it.
func doc(i int, extra string) *pipelinev1.DocumentInput {
	return &pipelinev1.DocumentInput{
		Uri: fmt.Sprintf("docs/page-%03d.md", i),
		Content: fmt.Sprintf("# Page %d\n\nThis page is about marker%03d and nothing else. %s\n\n## Details\n\n"+
			"Some more words so the page has a second section about marker%03d.\n", i, i, extra, i),
	}
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

func (b *bundle) newSource(t *testing.T) string {
	t.Helper()
	resp, err := b.content.CreateSource(tctx(t), &pipelinev1.CreateSourceRequest{Name: "e2e"})
	require.NoError(t, err)
	return resp.GetSource().GetSourceId()
}

func (b *bundle) ingest(t *testing.T, source string, docs ...*pipelinev1.DocumentInput) *pipelinev1.IngestDocumentsResponse {
	t.Helper()
	resp, err := b.content.IngestDocuments(tctx(t), &pipelinev1.IngestDocumentsRequest{SourceId: source, Documents: docs})
	require.NoError(t, err)
	return resp
}

func (b *bundle) vectorCount(t *testing.T, f vector.Filter) int {
	t.Helper()
	n, err := b.app.Vectors.Count(tctx(t), f)
	require.NoError(t, err)
	return n
}

// requireSearchable checks that searching for each document's marker finds that document first.
func (b *bundle) requireSearchable(t *testing.T, resp *pipelinev1.IngestDocumentsResponse, markers ...int) {
	t.Helper()
	for i, m := range markers {
		got, err := b.search.Search(tctx(t), &pipelinev1.SearchRequest{Query: fmt.Sprintf("marker%03d", m), TopK: 3})
		require.NoError(t, err)
		require.NotEmpty(t, got.GetResults(), "marker%03d", m)
		top := got.GetResults()[0]
		require.Equal(t, resp.GetDocuments()[i].GetDocumentId(), top.GetDocumentId(), "marker%03d", m)
		require.Contains(t, top.GetText(), fmt.Sprintf("marker%03d", m))
		require.NotEmpty(t, top.GetHeadingPath())
		require.Equal(t, resp.GetDocuments()[i].GetUri(), top.GetUri())
	}
}

func TestIngestProcessSearch(t *testing.T) {
	t.Parallel()
	b := start(t, options{workers: 2})
	src := b.newSource(t)
	var docs []*pipelinev1.DocumentInput
	var markers []int
	for i := range 10 {
		docs = append(docs, doc(i, ""))
		markers = append(markers, i)
	}
	resp := b.ingest(t, src, docs...)

	seen := b.watchUntilDone(t, resp.GetJob().GetJobId())
	require.NotEmpty(t, seen)
	last := seen[len(seen)-1]
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_COMPLETED, last.GetStatus())
	require.EqualValues(t, 10, last.GetProcessing().GetProcessedCount())
	require.Zero(t, last.GetProcessing().GetErrorCount())
	for i := 1; i < len(seen); i++ {
		require.Greater(t, seen[i].GetVersion(), seen[i-1].GetVersion(), "versions grow")
		require.GreaterOrEqual(t, seen[i].GetProcessing().GetProcessedCount(), seen[i-1].GetProcessing().GetProcessedCount(), "progress never goes back")
	}
	got, err := b.jobs.GetJob(tctx(t), &pipelinev1.GetJobRequest{JobId: last.GetJobId()})
	require.NoError(t, err)
	require.Equal(t, last.GetVersion(), got.GetJob().GetVersion(), "the final event is what GetJob returns")
	require.Equal(t, last.GetProcessing().GetChunkCount(), got.GetJob().GetProcessing().GetChunkCount())

	require.EqualValues(t, last.GetProcessing().GetChunkCount(), b.vectorCount(t, vector.Filter{SourceIDs: []string{src}}),
		"exactly the reported chunks are stored")
	b.requireSearchable(t, resp, markers...)

	b.requireSourceStatus(t, src, pipelinev1.SourceStatus_SOURCE_STATUS_READY)

	// The spec's Redis keys: the status cache and the result summary.
	for _, key := range []string{"processing:status:", "processing:result:"} {
		val, err := b.app.Redis.Get(tctx(t), b.cfg.RedisPrefix+key+last.GetJobId()).Result()
		require.NoError(t, err, key)
		require.Contains(t, val, `"status":"completed"`)
	}

	// Re-ingesting the same documents: a new job, every document skipped, no new vectors.
	embedded003 := b.embedder.callsOf("marker003")
	require.Positive(t, embedded003)
	again := b.ingest(t, src, docs...)
	require.Zero(t, again.GetChangedCount())
	seen = b.watchUntilDone(t, again.GetJob().GetJobId())
	final := seen[len(seen)-1]
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_COMPLETED, final.GetStatus())
	results, err := b.jobs.ListJobDocuments(tctx(t), &pipelinev1.ListJobDocumentsRequest{JobId: final.GetJobId()})
	require.NoError(t, err)
	for _, r := range results.GetResults() {
		require.Equal(t, pipelinev1.DocumentResultStatus_DOCUMENT_RESULT_STATUS_SKIPPED, r.GetStatus())
	}
	require.Equal(t, embedded003, b.embedder.callsOf("marker003"), "unchanged documents are not embedded again")
	require.EqualValues(t, last.GetProcessing().GetChunkCount(), b.vectorCount(t, vector.Filter{SourceIDs: []string{src}}))

	// A changed document is processed again and its chunk set replaced, not added to.
	changed := doc(3, "Now with an extra sentence about marker777.")
	third := b.ingest(t, src, changed)
	seen = b.watchUntilDone(t, third.GetJob().GetJobId())
	require.EqualValues(t, 1, seen[len(seen)-1].GetProcessing().GetProcessedCount())
	n := b.vectorCount(t, vector.Filter{DocumentIDs: []string{third.GetDocuments()[0].GetDocumentId()}})
	require.EqualValues(t, seen[len(seen)-1].GetProcessing().GetChunkCount(), n)
}

func TestFailedDocumentsAreRecordedAndRetried(t *testing.T) {
	t.Parallel()
	b := start(t, options{workers: 1})
	src := b.newSource(t)
	b.embedder.mu.Lock()
	b.embedder.transient["marker001"] = 2 // recovers within max_retries
	b.embedder.mu.Unlock()
	resp := b.ingest(t, src, doc(0, ""), doc(1, ""), doc(2, "PERMANENT-FAIL"), doc(3, ""))

	seen := b.watchUntilDone(t, resp.GetJob().GetJobId())
	last := seen[len(seen)-1]
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_COMPLETED, last.GetStatus(), "one bad document does not fail the job")
	require.EqualValues(t, 3, last.GetProcessing().GetProcessedCount())
	require.EqualValues(t, 1, last.GetProcessing().GetErrorCount())

	results, err := b.jobs.ListJobDocuments(tctx(t), &pipelinev1.ListJobDocumentsRequest{JobId: last.GetJobId()})
	require.NoError(t, err)
	byDoc := map[string]*pipelinev1.DocumentResult{}
	for _, r := range results.GetResults() {
		byDoc[r.GetDocumentId()] = r
	}
	bad := byDoc[resp.GetDocuments()[2].GetDocumentId()]
	require.Equal(t, pipelinev1.DocumentResultStatus_DOCUMENT_RESULT_STATUS_FAILED, bad.GetStatus())
	require.Equal(t, pipelinev1.ErrorKind_ERROR_KIND_PERMANENT, bad.GetErrorKind())
	require.Contains(t, bad.GetLastError(), "invalid content")
	require.EqualValues(t, 1, bad.GetAttempts(), "permanent errors are not retried")
	flaky := byDoc[resp.GetDocuments()[1].GetDocumentId()]
	require.Equal(t, pipelinev1.DocumentResultStatus_DOCUMENT_RESULT_STATUS_SUCCEEDED, flaky.GetStatus())
	require.EqualValues(t, 3, flaky.GetAttempts(), "two transient failures, then success")
	b.requireSearchable(t, resp, 0)

	src2 := b.requireSourceStatus(t, src, pipelinev1.SourceStatus_SOURCE_STATUS_READY)
	require.Contains(t, src2.GetError(), "1 of 4 documents failed")

	// RetryJob redoes only the failed document (which still fails: it is permanently bad).
	retry, err := b.jobs.RetryJob(tctx(t), &pipelinev1.RetryJobRequest{JobId: last.GetJobId()})
	require.NoError(t, err)
	require.EqualValues(t, 1, retry.GetJob().GetProcessing().GetDocumentCount())
	before := b.embedder.callsOf("marker000")
	seen = b.watchUntilDone(t, retry.GetJob().GetJobId())
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_FAILED, seen[len(seen)-1].GetStatus(), "nothing could be processed")
	require.Equal(t, before, b.embedder.callsOf("marker000"), "documents that succeeded are not redone")
}

func TestTransientFailureExhaustsRetries(t *testing.T) {
	t.Parallel()
	b := start(t, options{workers: 1, cfg: func(c *config.Config) { c.MaxRetries = 2 }})
	src := b.newSource(t)
	b.embedder.mu.Lock()
	b.embedder.transient["marker005"] = 100
	b.embedder.mu.Unlock()
	resp := b.ingest(t, src, doc(5, ""), doc(6, ""))
	seen := b.watchUntilDone(t, resp.GetJob().GetJobId())
	last := seen[len(seen)-1]
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_COMPLETED, last.GetStatus())
	results, err := b.jobs.ListJobDocuments(tctx(t), &pipelinev1.ListJobDocumentsRequest{JobId: last.GetJobId()})
	require.NoError(t, err)
	for _, r := range results.GetResults() {
		if r.GetDocumentId() == resp.GetDocuments()[0].GetDocumentId() {
			require.Equal(t, pipelinev1.ErrorKind_ERROR_KIND_TRANSIENT, r.GetErrorKind())
			require.EqualValues(t, 3, r.GetAttempts(), "max_retries=2: three tries")
		}
	}
}

// TestCancelMidJob: a cancel reaches the worker at once (Postgres's notice of the ended job):
// the document it is embedding is interrupted and no later document starts, although the worker
// had room to prepare several ahead.
func TestCancelMidJob(t *testing.T) {
	t.Parallel()
	b := start(t, options{workers: 1, cfg: func(c *config.Config) { c.BatchSize = 100; c.Lease = 2 * time.Minute }})
	jobID := b.cancelWhileBlocked(t, 8)
	// The blocked embedding ends because the worker heard of the cancel, not because it was
	// let go, nor because its next heartbeat's answer told it (a third of the lease away).
	require.Eventually(t, func() bool { return b.embedder.interruptions() > 0 }, 10*time.Second, 10*time.Millisecond,
		"the worker interrupts the document it is embedding")
	b.finishCancelled(t, jobID)
	for i := 3; i < 8; i++ {
		require.Zero(t, b.embedder.callsOf(fmt.Sprintf("marker%03d", i)), "document %d started after the cancel", i)
	}
}

// TestCancelMidJobWithoutNotice: a worker that does not hear of the cancel (its listener away)
// still stops, when the next group of documents it records reads the job's status (or a report's
// answer tells it): at most 2*(hand-off+1) documents are embedded after the cancel, and the rest
// never are.
func TestCancelMidJobWithoutNotice(t *testing.T) {
	t.Parallel()
	const handOff = 63 // as in worker.go
	const docs = 2*(handOff+1) + 8
	b := start(t, options{workers: 1, cfg: func(c *config.Config) { c.BatchSize = docs }, build: app.Options{NoEndNotices: true}})
	jobID := b.cancelWhileBlocked(t, docs)
	close(b.embedder.block)
	b.finishCancelled(t, jobID)
	after := 0
	for i := 3; i < docs; i++ {
		after += min(1, b.embedder.callsOf(fmt.Sprintf("marker%03d", i)))
	}
	require.LessOrEqual(t, after, 2*(handOff+1), "documents embedded after the cancel")
	require.Zero(t, b.embedder.callsOf(fmt.Sprintf("marker%03d", docs-1)), "the last document never starts")
}

// holdingStore is a vector store whose upserts wait until release is closed: all of them, or
// with holds set, those it says yes to.
type holdingStore struct {
	vector.Store
	release chan struct{}
	holds   func(records []vector.Record) bool
}

func (s *holdingStore) Upsert(ctx context.Context, records []vector.Record) error {
	if s.holds == nil || s.holds(records) {
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.Store.Upsert(ctx, records)
}

// TestHandOffHoldsABoundedNumberOfChunks: while the second stage cannot store, the first stage
// prepares documents ahead only until the chunks waiting reach the hand-off's budget (512), not
// the 64 documents the hand-off has room for; the held documents then go through.
func TestHandOffHoldsABoundedNumberOfChunks(t *testing.T) {
	t.Parallel()
	const docs = 20
	store := &holdingStore{release: make(chan struct{})}
	b := start(t, options{workers: 1, cfg: func(c *config.Config) { c.BatchSize = docs },
		app: func(a *app.App) { store.Store = a.Vectors; a.Vectors = store }})
	// 100 paragraphs of 48 words, each word at least a token: at least 4,800 tokens, so at
	// least 75 chunks of at most 64 tokens, and at most 512/75 documents fit in the budget.
	para := strings.TrimSpace(strings.Repeat("lorem ipsum dolor sit amet consectetur ", 8))
	var input []*pipelinev1.DocumentInput
	for i := range docs {
		body := fmt.Sprintf("# Page %d\n\nThis page is about marker%03d.\n\n", i, i) +
			strings.Repeat(para+".\n\n", 100)
		input = append(input, &pipelinev1.DocumentInput{Uri: fmt.Sprintf("docs/long-%03d.md", i), Content: body})
	}
	jobID := b.ingest(t, b.newSource(t), input...).GetJob().GetJobId()
	started := func() int {
		n := 0
		for i := range docs {
			n += min(1, b.embedder.callsOf(fmt.Sprintf("marker%03d", i)))
		}
		return n
	}
	// The first document waits in the store; the ones after it are prepared until the budget
	// is full, and one more is held in hand.
	require.Eventually(t, func() bool { return started() >= 2 }, waitTimeout, 10*time.Millisecond)
	const most = 512/75 + 1
	require.Never(t, func() bool { return started() > most }, 300*time.Millisecond, 10*time.Millisecond,
		"documents prepared while the store held the first")
	close(store.release)
	require.Eventually(t, func() bool {
		return b.jobStatus(t, jobID) == pipelinev1.JobStatus_JOB_STATUS_COMPLETED
	}, waitTimeout, 20*time.Millisecond)
	require.Equal(t, docs, started())
}

// TestCancelHeardAfterListenerReconnects: when the worker's listening connection is lost, a
// cancel that comes before it listens again is still heard at once after it reconnects (it reads
// the status of the jobs it works on), not at the next heartbeat.
func TestCancelHeardAfterListenerReconnects(t *testing.T) {
	t.Parallel()
	b := start(t, options{workers: 1, cfg: func(c *config.Config) { c.BatchSize = 100; c.Lease = 2 * time.Minute }})
	ctx := tctx(t)
	jobID := b.blockThird(t, 8)
	b.awaitProcessed(t, jobID, 2) // reported: no report of the worker's is due that would bring the cancel back
	ids, err := b.app.Redis.SMembers(ctx, b.cfg.RedisPrefix+"workers").Result()
	require.NoError(t, err)
	require.Len(t, ids, 1)
	name := worker.EndsListenerName(ids[0])
	listeners := func() int {
		var n int
		require.NoError(t, b.app.Pool.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = left($1, 63)", name).Scan(&n))
		return n
	}
	require.Eventually(t, func() bool { return listeners() == 1 }, waitTimeout, 10*time.Millisecond)
	_, err = b.app.Pool.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = left($1, 63)", name)
	require.NoError(t, err)
	// Gone, and not back yet (the worker waits 200 ms before it reconnects): the cancel's notice
	// reaches no one.
	require.Eventually(t, func() bool { return listeners() == 0 }, waitTimeout, 2*time.Millisecond)
	_, err = b.jobs.CancelJob(ctx, &pipelinev1.CancelJobRequest{JobId: jobID})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return b.embedder.interruptions() > 0 }, 10*time.Second, 10*time.Millisecond,
		"the worker interrupts the document it is embedding")
	require.Eventually(t, func() bool { return listeners() == 1 }, waitTimeout, 10*time.Millisecond, "it listens again")
	b.finishCancelled(t, jobID)
}

// TestProgressVisibleWhileADocumentIsSlow: the documents finished before a slow one are reported
// within the report interval, not when the slow one is done (nor at the next heartbeat, a
// third of the lease away).
func TestProgressVisibleWhileADocumentIsSlow(t *testing.T) {
	t.Parallel()
	b := start(t, options{workers: 1, cfg: func(c *config.Config) { c.BatchSize = 100; c.Lease = 2 * time.Minute }})
	jobID := b.blockThird(t, 5)
	defer close(b.embedder.block)
	b.awaitProcessed(t, jobID, 2)
}

// awaitProcessed waits (10 s at most: less than a heartbeat of a 2-minute lease) until the job
// shows n documents processed.
func (b *bundle) awaitProcessed(t *testing.T, jobID string, n int64) {
	t.Helper()
	require.Eventually(t, func() bool {
		job, err := b.jobs.GetJob(tctx(t), &pipelinev1.GetJobRequest{JobId: jobID})
		require.NoError(t, err)
		return job.GetJob().GetProcessing().GetProcessedCount() == n
	}, 10*time.Second, 10*time.Millisecond, "%d documents reported", n)
}

// cancelWhileBlocked ingests n documents as one job, waits until the worker embeds the third
// (which blocks in the embedder until b.embedder.block is closed) and has reported the two
// before it, and cancels the job.
func (b *bundle) cancelWhileBlocked(t *testing.T, n int) string {
	t.Helper()
	jobID := b.blockThird(t, n)
	b.awaitProcessed(t, jobID, 2) // reported: no report of the worker's is due that would bring the cancel back
	_, err := b.jobs.CancelJob(tctx(t), &pipelinev1.CancelJobRequest{JobId: jobID})
	require.NoError(t, err)
	return jobID
}

// blockThird ingests n documents as one job and waits until the worker embeds the third, which
// blocks in the embedder until b.embedder.block is closed.
func (b *bundle) blockThird(t *testing.T, n int) string {
	t.Helper()
	b.embedder.mu.Lock()
	b.embedder.block = make(chan struct{})
	b.embedder.mu.Unlock()
	src := b.newSource(t)
	var docs []*pipelinev1.DocumentInput
	for i := range n {
		extra := ""
		if i == 2 {
			extra = "BLOCK"
		}
		docs = append(docs, doc(i, extra))
	}
	resp := b.ingest(t, src, docs...)
	jobID := resp.GetJob().GetJobId()
	require.Eventually(t, func() bool { return b.embedder.callsOf("marker002") > 0 }, waitTimeout, 10*time.Millisecond)
	return jobID
}

// finishCancelled waits until the job is seen CANCELLED and the worker is done with its batch
// (the message acknowledged and gone from the stream): had the worker not stopped between
// documents, it would have embedded them all by then.
func (b *bundle) finishCancelled(t *testing.T, jobID string) {
	t.Helper()
	seen := b.watchUntilDone(t, jobID)
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_CANCELLED, seen[len(seen)-1].GetStatus())
	require.Eventually(t, func() bool {
		n, err := b.app.Queue.Len()
		require.NoError(t, err)
		return n == 0
	}, waitTimeout, 20*time.Millisecond)
}

func TestDuplicateDeliveryDoesNoDuplicateWork(t *testing.T) {
	t.Parallel()
	b := start(t, options{workers: 2, cfg: func(c *config.Config) { c.BatchSize = 100 }})
	block := make(chan struct{})
	b.embedder.mu.Lock()
	b.embedder.block = block
	b.embedder.mu.Unlock()
	src := b.newSource(t)
	resp := b.ingest(t, src, doc(0, "BLOCK"), doc(1, ""), doc(2, ""))
	jobID := uuid.MustParse(resp.GetJob().GetJobId())
	require.Eventually(t, func() bool { return b.embedder.callsOf("marker000") > 0 }, waitTimeout, 10*time.Millisecond)

	// Deliver the running batch again, twice, as taskq may.
	batches, err := b.app.Jobs.Batches(tctx(t), jobID)
	require.NoError(t, err)
	for range 2 {
		_, err := b.app.Queue.EnqueueBatch(tctx(t), batches[0], batches[0].Enqueues+10)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		n, err := b.app.Queue.Len()
		require.NoError(t, err)
		return n <= 1 // the duplicates were taken and acknowledged
	}, waitTimeout, 10*time.Millisecond)
	close(block)

	seen := b.watchUntilDone(t, jobID.String())
	last := seen[len(seen)-1]
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_COMPLETED, last.GetStatus())
	results, err := b.jobs.ListJobDocuments(tctx(t), &pipelinev1.ListJobDocumentsRequest{JobId: jobID.String()})
	require.NoError(t, err)
	for _, r := range results.GetResults() {
		if r.GetDocumentId() == resp.GetDocuments()[1].GetDocumentId() {
			require.EqualValues(t, r.GetChunkCount(), b.embedder.callsOf("marker001"), "each chunk embedded once, not once per delivery")
		}
	}
	require.EqualValues(t, last.GetProcessing().GetChunkCount(), b.vectorCount(t, vector.Filter{SourceIDs: []string{src}}))
	batches, err = b.app.Jobs.Batches(tctx(t), jobID)
	require.NoError(t, err)
	require.Equal(t, 1, batches[0].Claims)
}

// TestDeadWorkersBatchIsTakenOver: a worker claimed a batch, did part of it and vanished
// without acknowledging (killed). Its lease runs out, the reconciler queues the batch again,
// another worker finishes it: the job completes, nothing is missing or duplicated.
func TestDeadWorkersBatchIsTakenOver(t *testing.T) {
	t.Parallel()
	b := start(t, options{workers: 0, cfg: func(c *config.Config) { c.BatchSize = 100 }})
	src := b.newSource(t)
	var docs []*pipelinev1.DocumentInput
	for i := range 6 {
		docs = append(docs, doc(i, ""))
	}
	// No worker yet: the dead worker takes the message and claims the batch with a short lease.
	resp := b.ingest(t, src, docs...)
	jobID := uuid.MustParse(resp.GetJob().GetJobId())
	batches, err := b.app.Jobs.Batches(tctx(t), jobID)
	require.NoError(t, err)
	_, _, err = b.app.Jobs.ClaimBatch(tctx(t), batches[0].ID, "killed-worker", 300*time.Millisecond)
	require.NoError(t, err)
	// It had recorded its first document before dying.
	_, err = b.app.Jobs.RecordResults(tctx(t), jobs.RecordParams{JobID: jobID, Results: []jobs.DocumentResultUpdate{
		{DocumentID: uuid.MustParse(resp.GetDocuments()[0].GetDocumentId()), Status: jobs.DocFailed, Attempts: 1,
			LastError: "simulated", ErrorKind: jobs.KindPermanent},
	}})
	require.NoError(t, err)

	b.startWorker(t)
	seen := b.watchUntilDone(t, jobID.String())
	last := seen[len(seen)-1]
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_COMPLETED, last.GetStatus())
	require.EqualValues(t, 5, last.GetProcessing().GetProcessedCount())
	require.EqualValues(t, 1, last.GetProcessing().GetErrorCount())
	require.Zero(t, b.embedder.callsOf("marker000"), "work recorded before the crash is not redone")
	require.EqualValues(t, last.GetProcessing().GetChunkCount(), b.vectorCount(t, vector.Filter{SourceIDs: []string{src}}))
	batches, err = b.app.Jobs.Batches(tctx(t), jobID)
	require.NoError(t, err)
	require.Equal(t, 2, batches[0].Claims, "claimed by the dead worker, then by the rescuer")
}

// TestLostMessagesAreEnqueuedAgain: Redis loses the queue (FLUSHALL, restart without
// persistence); the reconciler notices the markers are gone and enqueues the batches again.
func TestLostMessagesAreEnqueuedAgain(t *testing.T) {
	t.Parallel()
	b := start(t, options{workers: 0})
	src := b.newSource(t)
	resp := b.ingest(t, src, doc(0, ""), doc(1, ""), doc(2, ""), doc(3, ""), doc(4, ""))
	// Lose everything this test has in Redis: the stream and the markers.
	cleanQueueKeys(b.app.Redis, b.cfg.RedisPrefix)
	keys, err := b.app.Redis.Keys(tctx(t), b.cfg.RedisPrefix+"*").Result()
	require.NoError(t, err)
	if len(keys) > 0 {
		require.NoError(t, b.app.Redis.Del(tctx(t), keys...).Err())
	}
	b.startWorker(t)
	seen := b.watchUntilDone(t, resp.GetJob().GetJobId())
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_COMPLETED, seen[len(seen)-1].GetStatus())
	require.EqualValues(t, 5, seen[len(seen)-1].GetProcessing().GetProcessedCount())
}

func TestDeleteSourceRemovesVectors(t *testing.T) {
	t.Parallel()
	b := start(t, options{workers: 1})
	keep := b.newSource(t)
	gone := b.newSource(t)
	k := b.ingest(t, keep, doc(1, ""))
	g := b.ingest(t, gone, doc(2, ""), doc(3, ""))
	b.watchUntilDone(t, k.GetJob().GetJobId())
	b.watchUntilDone(t, g.GetJob().GetJobId())
	require.Positive(t, b.vectorCount(t, vector.Filter{SourceIDs: []string{gone}}))

	_, err := b.content.DeleteSource(tctx(t), &pipelinev1.DeleteSourceRequest{SourceId: gone})
	require.NoError(t, err)
	require.Zero(t, b.vectorCount(t, vector.Filter{SourceIDs: []string{gone}}))
	require.Positive(t, b.vectorCount(t, vector.Filter{SourceIDs: []string{keep}}))
	got, err := b.search.Search(tctx(t), &pipelinev1.SearchRequest{Query: "marker002"})
	require.NoError(t, err)
	for _, r := range got.GetResults() {
		require.NotEqual(t, gone, r.GetSourceId())
	}
}

// requireSourceStatus waits for the source to reach want (its status follows its jobs' ends).
func (b *bundle) requireSourceStatus(t *testing.T, id string, want pipelinev1.SourceStatus) *pipelinev1.Source {
	t.Helper()
	var src *pipelinev1.Source
	require.Eventually(t, func() bool {
		resp, err := b.content.GetSource(tctx(t), &pipelinev1.GetSourceRequest{SourceId: id})
		require.NoError(t, err)
		src = resp.GetSource()
		return src.GetStatus() == want
	}, waitTimeout, 10*time.Millisecond, "source status")
	return src
}

// TestEmptiedStoreIsRefilled: the vector store lost a document's chunks behind Postgres's back
// (a new data directory, a dropped collection); re-ingesting the unchanged document must not be
// skipped as unchanged.
func TestEmptiedStoreIsRefilled(t *testing.T) {
	t.Parallel()
	b := start(t, options{workers: 1})
	src := b.newSource(t)
	resp := b.ingest(t, src, doc(1, ""), doc(2, ""))
	b.watchUntilDone(t, resp.GetJob().GetJobId())
	lost := resp.GetDocuments()[0].GetDocumentId()
	require.NoError(t, b.app.Vectors.DeleteDocument(tctx(t), lost, 0))

	again := b.ingest(t, src, doc(1, ""), doc(2, ""))
	seen := b.watchUntilDone(t, again.GetJob().GetJobId())
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_COMPLETED, seen[len(seen)-1].GetStatus())
	require.Positive(t, b.vectorCount(t, vector.Filter{DocumentIDs: []string{lost}}))
	b.requireSearchable(t, resp, 1, 2)
}
