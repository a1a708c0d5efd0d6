package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/google/uuid"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/jobs"
)

// workerService receives workers' progress: it renews the batch lease and records per-document
// results through the job manager's Recorder (group commit; the committed state goes straight
// to this process's watchers, and the manager's Notifier publishes the change), and finishes
// the batch, and with the last batch the job.
type workerService struct {
	pipelinev1.UnimplementedWorkerServiceServer
	s *Server

	recorderOnce sync.Once
	rec          *jobs.Recorder
}

// recorder returns the service's Recorder, built on first use.
func (h *workerService) recorder() *jobs.Recorder {
	h.recorderOnce.Do(func() {
		bus := h.s.deps.Bus
		h.rec = h.s.deps.Jobs.NewRecorder(jobs.RecorderConfig{
			Committed: func(j *jobs.Job) { bus.Offer(j.ID, j.Version, &jobUpdate{job: j}) },
		})
	})
	return h.rec
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

// report handles one report: the lease renewal, the status check and the results are one
// Recorder report (one transaction, shared with other workers' reports that arrive meanwhile).
// Domain refusals (lease lost, job no longer running) are answered with stop, not an error: the
// stream stays usable and the worker moves on.
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

	p := jobs.ReportParams{JobID: jobID, Worker: worker, Lease: h.s.cfg.Lease}
	if req.GetBatchId() != "" {
		batchID, err := parseID("batch_id", req.GetBatchId())
		if err != nil {
			return nil, err
		}
		p.BatchID = uuid.NullUUID{UUID: batchID, Valid: true}
	} else if req.GetBatchDone() {
		return nil, errs.InvalidArgument("batch_id", "required with batch_done")
	}
	p.Results = make([]jobs.DocumentResultUpdate, 0, len(req.GetResults()))
	for i, r := range req.GetResults() {
		id, err := uuid.Parse(r.GetDocumentId())
		if err != nil { // the field's name is formatted only for the error
			_, err = parseID(fmt.Sprintf("results[%d].document_id", i), r.GetDocumentId())
			return nil, err
		}
		st, ok := docStatusFromProto[r.GetStatus()]
		if !ok {
			return nil, errs.InvalidArgument(fmt.Sprintf("results[%d].status", i), "unknown status %v", r.GetStatus())
		}
		p.Results = append(p.Results, jobs.DocumentResultUpdate{
			DocumentID: id, Status: st, ChunkCount: r.GetChunkCount(), Attempts: r.GetAttempts(),
			LastError: r.GetLastError(), ErrorKind: errorKindFromProto[r.GetErrorKind()],
		})
	}

	job, err := h.recorder().Report(ctx, p)
	switch {
	case errors.Is(err, jobs.ErrLeaseLost):
		return stop("lease lost: another worker may hold the batch")
	case errs.IsFailedPrecondition(err):
		return stop("the job is no longer in progress")
	case err != nil:
		return nil, err
	}
	if req.GetBatchDone() {
		job, err = mgr.FinishBatch(ctx, p.BatchID.UUID, worker)
		if errors.Is(err, jobs.ErrLeaseLost) {
			return stop("lease lost: another worker may hold the batch")
		}
		if err != nil {
			return nil, err
		}
	}
	resp := &pipelinev1.ReportProgressResponse{JobStatus: jobStatusToProto[job.Status], Stop: job.Status.Terminal()}
	if resp.Stop {
		resp.StopReason = "the job is " + string(job.Status)
	}
	return resp, nil
}
