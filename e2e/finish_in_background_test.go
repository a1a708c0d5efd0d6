package e2e

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/app"
	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/vector"
)

// TestSlotGoesOnWhileTheSecondStageFinishes: once a batch's documents are all chunked and
// embedded, its slot takes the next batch while the batch's second stage stores and reports the
// rest (docs/decisions/0035). With one bulk slot, a job whose store is held does not hold up the
// job after it. One batch of the worker's finishes so at a time: with that place taken, a batch
// finishes on its slot, as before, so a second held job holds the slot and the job after it
// waits. Nothing is lost once the store lets go.
func TestSlotGoesOnWhileTheSecondStageFinishes(t *testing.T) {
	t.Parallel()
	// The store holds the upserts of the sources named held.
	var mu sync.Mutex
	held := map[string]bool{}
	store := &holdingStore{release: make(chan struct{}), holds: func(records []vector.Record) bool {
		mu.Lock()
		defer mu.Unlock()
		return len(records) > 0 && held[records[0].SourceID]
	}}
	b := start(t, options{workers: 1,
		cfg: func(c *config.Config) {
			c.MaxConcurrentJobs = 1 // one bulk slot, and the express lane's
			c.ExpressMaxDocuments = 0
			c.Lease = time.Minute
		},
		app: func(a *app.App) { store.Store = a.Vectors; a.Vectors = store }})
	four := func(from int) []*pipelinev1.DocumentInput {
		return []*pipelinev1.DocumentInput{doc(from, ""), doc(from+1, ""), doc(from+2, ""), doc(from+3, "")}
	}
	status := func(id string) pipelinev1.JobStatus { return b.jobStatus(t, id) }
	heldSource := func() string {
		s := b.newSource(t)
		mu.Lock()
		defer mu.Unlock()
		held[s] = true
		return s
	}

	// A's store is held; B, after it on the same slot, goes through.
	a := b.ingest(t, heldSource(), four(0)...).GetJob().GetJobId()
	bID := b.ingest(t, b.newSource(t), four(10)...).GetJob().GetJobId()
	require.Eventually(t, func() bool { return status(bID) == pipelinev1.JobStatus_JOB_STATUS_COMPLETED }, waitTimeout, 10*time.Millisecond,
		"the job after one whose store is held did not complete: the slot waited for the held batch")
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_IN_PROGRESS, status(a))

	// A still finishing in the background, a second held job finishes on its slot, and the job
	// after it waits.
	c := b.ingest(t, heldSource(), four(20)...).GetJob().GetJobId()
	require.Eventually(t, func() bool { return status(c) == pipelinev1.JobStatus_JOB_STATUS_IN_PROGRESS }, waitTimeout, 10*time.Millisecond)
	d := b.ingest(t, b.newSource(t), four(30)...).GetJob().GetJobId()
	require.Never(t, func() bool { return status(d) != pipelinev1.JobStatus_JOB_STATUS_PENDING }, 300*time.Millisecond, 20*time.Millisecond,
		"two batches finishing in the background at once")
	for _, id := range []string{a, c} {
		require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_IN_PROGRESS, status(id), "held")
	}

	close(store.release)
	var chunks int64
	for _, id := range []string{a, bID, c, d} {
		require.Eventually(t, func() bool { return status(id) == pipelinev1.JobStatus_JOB_STATUS_COMPLETED }, waitTimeout, 10*time.Millisecond)
		got, err := b.jobs.GetJob(tctx(t), &pipelinev1.GetJobRequest{JobId: id})
		require.NoError(t, err)
		require.EqualValues(t, 4, got.GetJob().GetProcessing().GetProcessedCount(), "job %s", id)
		chunks += got.GetJob().GetProcessing().GetChunkCount()
	}
	require.EqualValues(t, chunks, b.vectorCount(t, vector.Filter{}), "every document's chunks, once")
}
