package e2e

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
)

// TestManyWatchers: hundreds of WatchJob streams while jobs are processed. Every stream ends
// with the job's terminal state, a watcher that never reads holds up nobody, and the API stays
// responsive meanwhile.
func TestManyWatchers(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("load test")
	}
	b := start(t, options{workers: 2})
	src := b.newSource(t)
	var jobIDs []string
	for j := range 3 {
		var docs []*pipelinev1.DocumentInput
		for i := range 12 {
			docs = append(docs, doc(100*j+i, ""))
		}
		jobIDs = append(jobIDs, b.ingest(t, src, docs...).GetJob().GetJobId())
	}

	// A slow watcher: opens streams and never reads them.
	slowCtx, slowCancel := context.WithCancel(context.Background())
	defer slowCancel()
	for _, id := range jobIDs {
		_, err := b.jobs.WatchJob(slowCtx, &pipelinev1.WatchJobRequest{JobId: id})
		require.NoError(t, err)
	}

	const perJob = 100
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		ended  = map[string]int{}
		failed []error
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()
	for _, id := range jobIDs {
		for range perJob {
			wg.Add(1)
			go func() {
				defer wg.Done()
				stream, err := b.jobs.WatchJob(ctx, &pipelinev1.WatchJobRequest{JobId: id})
				var last *pipelinev1.Job
				for err == nil {
					var msg *pipelinev1.WatchJobResponse
					msg, err = stream.Recv()
					if err == nil {
						if last != nil && msg.GetJob().GetVersion() <= last.GetVersion() {
							err = errors.New("versions went backwards")
							break
						}
						last = msg.GetJob()
					}
				}
				mu.Lock()
				defer mu.Unlock()
				if !errors.Is(err, io.EOF) {
					failed = append(failed, err)
					return
				}
				if last.GetStatus() == pipelinev1.JobStatus_JOB_STATUS_COMPLETED {
					ended[id]++
				}
			}()
		}
	}

	// The API answers promptly while the watchers run.
	for range 20 {
		start := time.Now()
		_, err := b.jobs.ListJobs(tctx(t), &pipelinev1.ListJobsRequest{SourceId: src})
		require.NoError(t, err)
		require.Less(t, time.Since(start), 5*time.Second, "a list call while 300 streams are open")
	}
	wg.Wait()
	require.Empty(t, failed)
	for _, id := range jobIDs {
		require.Equal(t, perJob, ended[id], "every watcher of job %s saw it complete", id)
	}
	require.Eventually(t, func() bool { return b.app.Bus.Watchers() <= len(jobIDs) }, waitTimeout, 20*time.Millisecond,
		"finished streams released their subscriptions (only the slow watcher's remain)")
}
