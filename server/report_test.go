package server_test

import (
	"io"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/config"
)

// claimed is an ingested job whose one batch a worker has claimed, as worker/worker.go does.
type claimed struct {
	jobID, batchID, worker string
	docs                   []string
}

func (b *testBundle) claimedJob(t *testing.T, n int) *claimed {
	t.Helper()
	resp := b.pendingJob(t, n)
	id := uuid.MustParse(resp.GetJob().GetJobId())
	batches, err := b.Jobs.Batches(tctx(t), id)
	require.NoError(t, err)
	require.Len(t, batches, 1)
	_, _, err = b.Jobs.ClaimBatch(tctx(t), batches[0].ID, "worker-1", time.Minute)
	require.NoError(t, err)
	c := &claimed{jobID: id.String(), batchID: batches[0].ID.String(), worker: "worker-1"}
	for _, d := range resp.GetDocuments() {
		c.docs = append(c.docs, d.GetDocumentId())
	}
	return c
}

func (c *claimed) report(docs ...string) *pipelinev1.ReportProgressRequest {
	req := &pipelinev1.ReportProgressRequest{WorkerId: c.worker, JobId: c.jobID, BatchId: c.batchID}
	for _, d := range docs {
		req.Results = append(req.Results, &pipelinev1.DocumentResult{
			DocumentId: d, Status: pipelinev1.DocumentResultStatus_DOCUMENT_RESULT_STATUS_SUCCEEDED, ChunkCount: 2, Attempts: 1,
		})
	}
	return req
}

// reporter is one ReportProgress stream.
type reporter struct {
	t      *testing.T
	stream pipelinev1.WorkerService_ReportProgressClient
}

func (b *testBundle) reporter(t *testing.T) *reporter {
	t.Helper()
	stream, err := pipelinev1.NewWorkerServiceClient(b.conn).ReportProgress(tctx(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = stream.CloseSend() })
	return &reporter{t: t, stream: stream}
}

func (r *reporter) send(req *pipelinev1.ReportProgressRequest) (*pipelinev1.ReportProgressResponse, error) {
	require.NoError(r.t, r.stream.Send(req))
	return r.stream.Recv()
}

// TestWatchSeesEveryReport: reports recorded one right after another, on several jobs at once,
// reach each job's watcher as one update each, in order, even when the next report commits
// before the watcher has had its turn (the states offered by the report path are queued for
// the watcher, not only the newest; under load the old behaviour, coalescing, skipped some).
func TestWatchSeesEveryReport(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *config.Config) { c.WatchPollInterval = time.Hour })
	const jobs, docs = 4, 30
	type watched struct {
		c       *claimed
		ch      <-chan watchMsg
		version int64
	}
	var all []watched
	var wg sync.WaitGroup
	for range jobs {
		c := b.claimedJob(t, docs)
		ch := b.watch(t, c.jobID)
		all = append(all, watched{c: c, ch: ch, version: nextJob(t, ch).GetVersion()})
		r := b.reporter(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, d := range c.docs {
				err := r.stream.Send(c.report(d))
				if err == nil {
					_, err = r.stream.Recv()
				}
				if err != nil {
					t.Errorf("report: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, w := range all {
		for i := range docs {
			j := nextJob(t, w.ch)
			require.EqualValues(t, i+1, j.GetProcessing().GetProcessedCount(), "job %s, update %d", w.c.jobID, i+1)
			require.Greater(t, j.GetVersion(), w.version)
			w.version = j.GetVersion()
		}
	}
}

// TestReportProgress: the worker's stream records results, answers refusals that the worker
// acts on with stop, and ends with InvalidArgument naming the field on a bad report; watchers
// with the poll off see every report's update, in order, from the event path alone (the
// committed state, encoded once for both, the same as a read of the job gives).
func TestReportProgress(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *config.Config) { c.WatchPollInterval = time.Hour })
	c := b.claimedJob(t, 4)
	other := b.claimedJob(t, 1)

	ch, ch2 := b.watch(t, c.jobID), b.watch(t, c.jobID)
	first := nextJob(t, ch)
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_IN_PROGRESS, first.GetStatus())
	require.Equal(t, first.GetVersion(), nextJob(t, ch2).GetVersion())

	r := b.reporter(t)
	version := first.GetVersion()
	for i, d := range c.docs[:3] {
		resp, err := r.send(c.report(d))
		require.NoError(t, err)
		require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_IN_PROGRESS, resp.GetJobStatus())
		require.False(t, resp.GetStop())
		j := nextJob(t, ch)
		require.Greater(t, j.GetVersion(), version)
		version = j.GetVersion()
		require.EqualValues(t, i+1, j.GetProcessing().GetProcessedCount())
		require.EqualValues(t, 2*(i+1), j.GetProcessing().GetChunkCount())
		require.True(t, proto.Equal(j, nextJob(t, ch2)), "both watchers get the same update")
		read, err := b.jobs.GetJob(tctx(t), &pipelinev1.GetJobRequest{JobId: c.jobID})
		require.NoError(t, err)
		require.True(t, proto.Equal(read.GetJob(), j), "the update is the job as committed: %v, read %v", j, read.GetJob())
	}

	resp, err := r.send(&pipelinev1.ReportProgressRequest{WorkerId: c.worker, JobId: c.jobID, BatchId: c.batchID})
	require.NoError(t, err, "a heartbeat")
	require.False(t, resp.GetStop())

	lost := c.report(c.docs[3])
	lost.WorkerId = "worker-2"
	resp, err = r.send(lost)
	require.NoError(t, err)
	require.True(t, resp.GetStop())
	require.Contains(t, resp.GetStopReason(), "lease lost")

	for name, tc := range map[string]struct {
		mutate func(*pipelinev1.ReportProgressRequest)
		field  string
	}{
		"bad document id":  {func(q *pipelinev1.ReportProgressRequest) { q.Results[0].DocumentId = "nope" }, "results[0].document_id"},
		"foreign document": {func(q *pipelinev1.ReportProgressRequest) { q.Results[0].DocumentId = other.docs[0] }, "document_id"},
		"foreign batch":    {func(q *pipelinev1.ReportProgressRequest) { q.BatchId, q.WorkerId = other.batchID, other.worker }, "batch_id"},
		"done, no batch":   {func(q *pipelinev1.ReportProgressRequest) { q.BatchId, q.BatchDone = "", true }, "batch_id"},
		"bad job id":       {func(q *pipelinev1.ReportProgressRequest) { q.JobId = "nope" }, "job_id"},
	} {
		t.Run(name, func(t *testing.T) {
			req := c.report(c.docs[3])
			tc.mutate(req)
			_, err := b.reporter(t).send(req)
			requireCode(t, err, codes.InvalidArgument, tc.field)
		})
	}

	done := c.report(c.docs[3])
	done.BatchDone = true
	resp, err = r.send(done)
	require.NoError(t, err)
	require.True(t, resp.GetStop())
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_COMPLETED, resp.GetJobStatus())
	seen := untilStatus(t, ch, pipelinev1.JobStatus_JOB_STATUS_COMPLETED, version)
	require.EqualValues(t, 4, seen[len(seen)-1].GetProcessing().GetProcessedCount())
	require.ErrorIs(t, next(t, ch).err, io.EOF)

	// Results for a job that ended are refused with stop.
	_, err = b.jobs.CancelJob(tctx(t), &pipelinev1.CancelJobRequest{JobId: other.jobID})
	require.NoError(t, err)
	resp, err = b.reporter(t).send(other.report(other.docs[0]))
	require.NoError(t, err)
	require.True(t, resp.GetStop())
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_CANCELLED, resp.GetJobStatus())
	require.Contains(t, resp.GetStopReason(), "no longer in progress")
}
