package server

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/google/uuid"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/jobs"
)

// workerService receives workers' progress: it renews the batch lease, records per-document
// results through the job manager (which publishes the change to watchers), and finishes the
// batch, and with the last batch the job.
type workerService struct {
	pipelinev1.UnimplementedWorkerServiceServer
	s *Server
}

var docStatusFromProto = reverse(docStatusToProto)
var errorKindFromProto = reverse(errorKindToProto)

func (h *workerService) ReportProgress(stream pipelinev1.WorkerService_ReportProgressServer) error {
	ctx := stream.Context()
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resp, err := h.report(ctx, req)
		if err != nil {
			return err
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// report handles one report. Domain refusals (lease lost, job no longer running) are answered
// with stop, not an error: the stream stays usable and the worker moves on.
func (h *workerService) report(ctx context.Context, req *pipelinev1.ReportProgressRequest) (*pipelinev1.ReportProgressResponse, error) {
	mgr := h.s.deps.Jobs
	jobID, err := parseID("job_id", req.GetJobId())
	if err != nil {
		return nil, err
	}
	worker := req.GetWorkerId()
	stop := func(reason string) (*pipelinev1.ReportProgressResponse, error) {
		job, err := mgr.Get(ctx, jobID)
		if err != nil {
			return nil, err
		}
		return &pipelinev1.ReportProgressResponse{JobStatus: jobStatusToProto[job.Status], Stop: true, StopReason: reason}, nil
	}

	var batchID uuid.UUID
	if req.GetBatchId() != "" {
		if batchID, err = parseID("batch_id", req.GetBatchId()); err != nil {
			return nil, err
		}
		b, err := mgr.RenewLease(ctx, batchID, worker, h.s.cfg.Lease)
		if errors.Is(err, jobs.ErrLeaseLost) {
			return stop("lease lost: another worker may hold the batch")
		}
		if err != nil {
			return nil, err
		}
		if b.JobID != jobID {
			return nil, errs.InvalidArgument("batch_id", "batch %s belongs to job %s, not %s", batchID, b.JobID, jobID)
		}
	}

	job, err := mgr.Get(ctx, jobID)
	if err != nil {
		return nil, err
	}
	if len(req.GetResults()) > 0 {
		updates := make([]jobs.DocumentResultUpdate, 0, len(req.GetResults()))
		for i, r := range req.GetResults() {
			id, err := parseID(fmt.Sprintf("results[%d].document_id", i), r.GetDocumentId())
			if err != nil {
				return nil, err
			}
			st, ok := docStatusFromProto[r.GetStatus()]
			if !ok {
				return nil, errs.InvalidArgument(fmt.Sprintf("results[%d].status", i), "unknown status %v", r.GetStatus())
			}
			updates = append(updates, jobs.DocumentResultUpdate{
				DocumentID: id, Status: st, ChunkCount: r.GetChunkCount(), Attempts: r.GetAttempts(),
				LastError: r.GetLastError(), ErrorKind: errorKindFromProto[r.GetErrorKind()],
			})
		}
		job, err = mgr.RecordResults(ctx, jobs.RecordParams{JobID: jobID, Results: updates})
		if errs.IsFailedPrecondition(err) {
			return stop("the job is no longer in progress")
		}
		if err != nil {
			return nil, err
		}
	}
	if req.GetBatchDone() {
		if req.GetBatchId() == "" {
			return nil, errs.InvalidArgument("batch_id", "required with batch_done")
		}
		job, err = mgr.FinishBatch(ctx, batchID, worker)
		if errors.Is(err, jobs.ErrLeaseLost) {
			return stop("lease lost: another worker may hold the batch")
		}
		if err != nil {
			return nil, err
		}
	}
	return &pipelinev1.ReportProgressResponse{
		JobStatus:  jobStatusToProto[job.Status],
		Stop:       job.Status.Terminal(),
		StopReason: map[bool]string{true: "the job is " + string(job.Status)}[job.Status.Terminal()],
	}, nil
}
