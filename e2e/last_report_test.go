package e2e

import (
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/config"
)

// TestSlotGoesOnWhileTheLastReportIsUnderWay: a worker sends a finished batch's last report
// (results, batch done) in the background, so its slot takes the next batch at once; and a
// stopping worker waits for those reports before it lets go of the server, so the batches are
// finished then, not once their leases run out. The worker talks to the server through a relay
// that holds every last report until told.
func TestSlotGoesOnWhileTheLastReportIsUnderWay(t *testing.T) {
	t.Parallel()
	b := start(t, options{cfg: func(c *config.Config) {
		c.MaxConcurrentJobs = 1 // one slot for both jobs
		c.ExpressMaxDocuments = 0
		c.Lease = time.Minute // a last report lost would leave the job running for a minute
	}})
	relay := newHoldingRelay(t, b.grpcAddr)

	ctx, stopWorker := context.WithCancel(context.Background())
	defer stopWorker()
	workerDone := make(chan error, 1)
	go func() { workerDone <- b.app.RunWorkers(ctx, relay.addr, "") }()

	src := b.newSource(t)
	first := b.ingest(t, src, doc(1, ""), doc(2, "")).GetJob().GetJobId()
	second := b.ingest(t, src, doc(3, ""), doc(4, "")).GetJob().GetJobId()

	// Both batches reach their last report while the first one's is still held: the slot did
	// not wait for it.
	require.Eventually(t, func() bool { return relay.heldJobs()[first] && relay.heldJobs()[second] }, waitTimeout, 5*time.Millisecond,
		"the only slot took the second batch only after the first one's last report")
	for _, id := range []string{first, second} {
		require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_IN_PROGRESS, b.jobStatus(t, id), "held, not yet reported")
	}

	// Stopping, the worker waits for the reports under way.
	stopWorker()
	require.Never(t, func() bool { return len(workerDone) > 0 }, 200*time.Millisecond, 10*time.Millisecond,
		"the worker stopped before its last reports were sent")
	relay.release()
	select {
	case err := <-workerDone:
		require.NoError(t, err)
	case <-time.After(waitTimeout):
		t.Fatal("the worker did not stop")
	}
	for _, id := range []string{first, second} {
		require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_COMPLETED, b.jobStatus(t, id), "finished by its last report")
	}
}

func (b *bundle) jobStatus(t *testing.T, id string) pipelinev1.JobStatus {
	t.Helper()
	got, err := b.jobs.GetJob(tctx(t), &pipelinev1.GetJobRequest{JobId: id})
	require.NoError(t, err)
	return got.GetJob().GetStatus()
}

// holdingRelay is a WorkerService that passes a worker's reports to the real server, holding
// those that mark a batch done until release.
type holdingRelay struct {
	pipelinev1.UnimplementedWorkerServiceServer
	addr string
	next pipelinev1.WorkerServiceClient

	mu       sync.Mutex
	held     map[string]bool // job ids whose last report is held
	released chan struct{}
	once     sync.Once
}

func newHoldingRelay(t *testing.T, serverAddr string) *holdingRelay {
	t.Helper()
	conn, err := grpc.NewClient(serverAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := &holdingRelay{addr: lis.Addr().String(), next: pipelinev1.NewWorkerServiceClient(conn),
		held: map[string]bool{}, released: make(chan struct{})}
	srv := grpc.NewServer()
	pipelinev1.RegisterWorkerServiceServer(srv, r)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { r.release(); srv.Stop() })
	return r
}

func (r *holdingRelay) release() { r.once.Do(func() { close(r.released) }) }

func (r *holdingRelay) heldJobs() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.held)
}

func (r *holdingRelay) ReportProgress(in pipelinev1.WorkerService_ReportProgressServer) error {
	out, err := r.next.ReportProgress(in.Context())
	if err != nil {
		return err
	}
	for {
		req, err := in.Recv()
		if errors.Is(err, io.EOF) {
			return out.CloseSend()
		}
		if err != nil {
			return err
		}
		if req.GetBatchDone() {
			r.mu.Lock()
			r.held[req.GetJobId()] = true
			r.mu.Unlock()
			<-r.released
		}
		if err := out.Send(req); err != nil {
			return err
		}
		resp, err := out.Recv()
		if err != nil {
			return err
		}
		if err := in.Send(resp); err != nil {
			return err
		}
	}
}
