package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
)

// Memory budget of the load test (see TestManyWatchers). A WatchJob stream can hold data only in
// gRPC's flow-control buffers: the server's per-stream write quota (64 KiB: Send blocks beyond
// it) and the client's per-stream receive window (64 KiB here: the slow watcher's connection
// fixes it, so BDP estimation cannot grow it). Everything else a stream owns (the server's and
// the client's stream state, its event-bus subscription, its ticker) is a few KiB; 16 KiB per
// stream is generous. The slack covers the large job's own working set (batches in flight, the
// embedded vector store growing by the job's chunks, pgx buffers) and GC noise.
const (
	streamBufferBytes   = 64<<10 + 64<<10 // server write quota + client receive window
	streamOverheadBytes = 16 << 10
	heapSlackBytes      = 32 << 20
)

// TestManyWatchers: hundreds of WatchJob streams while jobs, one of them large, are processed
// and API calls run. Every stream ends with its job's terminal state, watchers that never read
// hold up nobody, the API stays responsive, and the heap stays within the streams' buffers plus
// slack: a watcher whose messages piled up without bound would blow the budget.
func TestManyWatchers(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("load test")
	}
	b := start(t, options{workers: 2})
	src := b.newSource(t)

	// The heap before the load: the service up and idle.
	baseline := heapAfterGC()

	const (
		largeDocs  = 48
		perJob     = 75 // reading watchers per job: 4 jobs, 300 streams
		slowPerJob = 8  // streams per job opened by a watcher that never reads
	)
	var jobIDs []string
	var large []*pipelinev1.DocumentInput
	for i := range largeDocs {
		large = append(large, doc(1000+i, ""))
	}
	jobIDs = append(jobIDs, b.ingest(t, src, large...).GetJob().GetJobId())
	for j := range 3 {
		var docs []*pipelinev1.DocumentInput
		for i := range 12 {
			docs = append(docs, doc(100*j+i, ""))
		}
		jobIDs = append(jobIDs, b.ingest(t, src, docs...).GetJob().GetJobId())
	}

	// The slow watcher: its own connection with a fixed 64 KiB window, streams it never reads.
	slowConn, err := grpc.NewClient(b.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(1<<20))
	require.NoError(t, err)
	defer slowConn.Close()
	slow := pipelinev1.NewJobServiceClient(slowConn)
	slowCtx, slowCancel := context.WithCancel(context.Background())
	defer slowCancel()
	for _, id := range jobIDs {
		for range slowPerJob {
			_, err := slow.WatchJob(slowCtx, &pipelinev1.WatchJobRequest{JobId: id})
			require.NoError(t, err)
		}
	}

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

	// The heap while the streams are open, after a GC each time.
	var peak uint64
	watchersDone := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			peak = max(peak, heapAfterGC())
			select {
			case <-watchersDone:
				return
			case <-time.After(time.Second):
			}
		}
	}()

	// The API answers while the watchers run: lists, gets, per-document results, each within the
	// test's deadline (the slowest is logged; timings are not asserted).
	var slowest time.Duration
	for i := range 20 {
		begin := time.Now()
		_, err := b.jobs.ListJobs(tctx(t), &pipelinev1.ListJobsRequest{SourceId: src})
		require.NoError(t, err)
		_, err = b.jobs.GetJob(tctx(t), &pipelinev1.GetJobRequest{JobId: jobIDs[i%len(jobIDs)]})
		require.NoError(t, err)
		_, err = b.jobs.ListJobDocuments(tctx(t), &pipelinev1.ListJobDocumentsRequest{JobId: jobIDs[0], PageSize: 100})
		require.NoError(t, err)
		slowest = max(slowest, time.Since(begin))
	}
	wg.Wait()
	close(watchersDone)
	<-sampled
	require.Empty(t, failed)
	for _, id := range jobIDs {
		require.Equal(t, perJob, ended[id], "every watcher of job %s saw it complete", id)
	}
	require.Eventually(t, func() bool { return b.app.Bus.Watchers() <= len(jobIDs)*slowPerJob }, waitTimeout, 20*time.Millisecond,
		"finished streams released their subscriptions (only the slow watcher's remain)")

	streams := len(jobIDs) * (perJob + slowPerJob)
	bound := uint64(len(jobIDs)*slowPerJob*streamBufferBytes + streams*streamOverheadBytes + heapSlackBytes)
	growth := int64(peak) - int64(baseline)
	t.Logf("heap after GC: %s before the load, peak %s during it (growth %s; bound %s for %d streams, %d never read); slowest 3 API calls: %s",
		mib(baseline), mib(peak), mib(uint64(max(growth, 0))), mib(bound), streams, len(jobIDs)*slowPerJob, slowest.Round(time.Millisecond))
	require.LessOrEqual(t, growth, int64(bound), "heap growth under load beyond the streams' buffers plus slack")
}

// heapAfterGC is the live heap: HeapAlloc right after a full collection.
func heapAfterGC() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
