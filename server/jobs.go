package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/jobs"
)

// jobService implements pipelinev1.JobService over the job manager.
type jobService struct {
	pipelinev1.UnimplementedJobServiceServer
	s *Server
}

func (h *jobService) GetJob(ctx context.Context, req *pipelinev1.GetJobRequest) (*pipelinev1.GetJobResponse, error) {
	id, err := parseID("job_id", req.GetJobId())
	if err != nil {
		return nil, err
	}
	job, err := h.s.deps.Jobs.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return &pipelinev1.GetJobResponse{Job: jobToProto(job)}, nil
}

func (h *jobService) ListJobs(ctx context.Context, req *pipelinev1.ListJobsRequest) (*pipelinev1.ListJobsResponse, error) {
	src, err := optionalID("source_id", req.GetSourceId())
	if err != nil {
		return nil, err
	}
	list, next, err := h.s.deps.Jobs.List(ctx, jobs.ListParams{
		SourceID:  src,
		Type:      jobTypeFromProto[req.GetType()],
		Status:    jobStatusFromProto[req.GetStatus()],
		PageSize:  int(req.GetPageSize()),
		PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	out := &pipelinev1.ListJobsResponse{NextPageToken: next, Jobs: make([]*pipelinev1.Job, 0, len(list))}
	for _, j := range list {
		out.Jobs = append(out.Jobs, jobToProto(j))
	}
	return out, nil
}

func (h *jobService) ListJobDocuments(ctx context.Context, req *pipelinev1.ListJobDocumentsRequest) (*pipelinev1.ListJobDocumentsResponse, error) {
	id, err := parseID("job_id", req.GetJobId())
	if err != nil {
		return nil, err
	}
	results, next, err := h.s.deps.Jobs.ListDocumentResults(ctx, id, int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &pipelinev1.ListJobDocumentsResponse{NextPageToken: next, Results: make([]*pipelinev1.DocumentResult, 0, len(results))}
	for _, r := range results {
		out.Results = append(out.Results, documentResultToProto(r))
	}
	return out, nil
}

func (h *jobService) CancelJob(ctx context.Context, req *pipelinev1.CancelJobRequest) (*pipelinev1.CancelJobResponse, error) {
	id, err := parseID("job_id", req.GetJobId())
	if err != nil {
		return nil, err
	}
	job, err := h.s.deps.Jobs.Cancel(ctx, id)
	if err != nil {
		return nil, err
	}
	return &pipelinev1.CancelJobResponse{Job: jobToProto(job)}, nil
}

func (h *jobService) RetryJob(ctx context.Context, req *pipelinev1.RetryJobRequest) (*pipelinev1.RetryJobResponse, error) {
	id, err := parseID("job_id", req.GetJobId())
	if err != nil {
		return nil, err
	}
	job, err := h.s.deps.Jobs.Retry(ctx, id)
	if err != nil {
		return nil, err
	}
	return &pipelinev1.RetryJobResponse{Job: jobToProto(job)}, nil
}

// WatchJob sends the job's current state, then its state after every change, and returns after
// sending a terminal state. It wakes on change notices from the event bus and also re-reads the
// job every WatchPollInterval, so a lost notice (Redis restart) only delays it. Changes known
// only from notices (other replicas' writes, writes that offer no state) coalesce when they come
// faster than the watcher reads: the message is the latest state. Versions only grow. A job deleted with its source ends the stream with NotFound; a server shutting down
// ends it with Unavailable.
//
// A notice for a version already sent is ignored. When a writer in this process offered the
// committed state with its notice (worker reports, through the Recorder), that state is sent
// as it is, without reading the job, and encoded once for all of the job's watchers; every
// state offered is sent, in version order, so a watcher that keeps up (within 64 versions)
// sees each report's update even when the next one commits before it is woken. A notice from
// another replica, or one that is newer than the offered states, leads to a read from
// Postgres. Every state sent was committed.
func (h *jobService) WatchJob(req *pipelinev1.WatchJobRequest, stream pipelinev1.JobService_WatchJobServer) error {
	ctx := stream.Context()
	id, err := parseID("job_id", req.GetJobId())
	if err != nil {
		return err
	}
	// Subscribe before the first read so no change between the read and the subscription is missed.
	sub := h.s.deps.Bus.Subscribe(id)
	defer sub.Close()

	var sent int64
	send := func(job *jobs.Job) (done bool, err error) {
		if job.Version > sent {
			if err := stream.Send(&pipelinev1.WatchJobResponse{Job: jobToProto(job)}); err != nil {
				return false, err
			}
			sent = job.Version
		}
		return job.Status.Terminal(), nil
	}
	sendUpdate := func(u *jobUpdate) (done bool, err error) {
		if u.job.Version > sent {
			m, err := u.encoded()
			if err != nil {
				return false, err
			}
			if err := stream.SendMsg(m); err != nil {
				return false, err
			}
			sent = u.job.Version
		}
		return u.job.Status.Terminal(), nil
	}
	read := func() (done bool, err error) {
		job, err := h.s.deps.Jobs.Get(ctx, id)
		if err != nil {
			if sent > 0 && errors.Is(err, errs.ErrNotFound) {
				return false, fmt.Errorf("%w: job %s was deleted with its source", errs.ErrNotFound, id)
			}
			return false, err
		}
		return send(job)
	}
	// woken acts on notices: every state offered since, in version order, then a read if a
	// newer version was announced without its state.
	woken := func() (done bool, err error) {
		announced, offered := sub.Offered(sent)
		for _, o := range offered {
			u, ok := o.State.(*jobUpdate)
			if !ok {
				continue
			}
			if done, err := sendUpdate(u); err != nil || done {
				return done, err
			}
		}
		if announced <= sent {
			return false, nil
		}
		return read()
	}
	if done, err := read(); err != nil || done {
		return err
	}
	poll := time.NewTicker(h.s.cfg.WatchPollInterval)
	defer poll.Stop()
	for {
		var done bool
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-h.s.stopping:
			// Ending watches at once lets shutdown finish without waiting out its deadline, and
			// tells clients to reconnect (to another replica) right away.
			return status.Error(codes.Unavailable, "server is shutting down; watch the job again to resume")
		case <-sub.C:
			done, err = woken()
		case <-poll.C:
			done, err = read()
		}
		if err != nil || done {
			return err
		}
	}
}

// jobUpdate is a job's committed state offered to this process's watchers with its notice
// (workerService's Recorder), encoded as a WatchJob message by the first watcher that sends it
// and then sent as those bytes by every other.
type jobUpdate struct {
	job *jobs.Job

	once sync.Once
	msg  *encodedMessage
	err  error
}

func (u *jobUpdate) encoded() (*encodedMessage, error) {
	u.once.Do(func() {
		b, err := proto.Marshal(&pipelinev1.WatchJobResponse{Job: jobToProto(u.job)})
		u.msg, u.err = &encodedMessage{b: b}, err
	})
	return u.msg, u.err
}
