package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/metrics"
	"github.com/pipeline-dev/pipeline/internal/registry"
	"github.com/pipeline-dev/pipeline/internal/stats"
)

// defaultRateWindow is GetStats's throughput window when the request sets none: the spec's
// "documents per second over the last minute".
const defaultRateWindow = time.Minute

// systemService implements pipelinev1.SystemService: the worker registry and the figures an
// operator watches.
type systemService struct {
	pipelinev1.UnimplementedSystemServiceServer
	s       *Server
	workers *registry.Registry
	stats   *stats.Reader
}

func (h *systemService) ListWorkers(ctx context.Context, req *pipelinev1.ListWorkersRequest) (*pipelinev1.ListWorkersResponse, error) {
	list, err := h.listWorkers(ctx)
	if err != nil {
		return nil, err
	}
	out := &pipelinev1.ListWorkersResponse{Workers: make([]*pipelinev1.Worker, 0, len(list))}
	for _, w := range list {
		if req.GetHost() == "" || w.Host == req.GetHost() {
			out.Workers = append(out.Workers, workerToProto(w))
		}
	}
	return out, nil
}

func (h *systemService) listWorkers(ctx context.Context) ([]registry.Info, error) {
	list, err := h.workers.List(ctx)
	if err != nil {
		return nil, unavailable(ctx, err)
	}
	return list, nil
}

// GetStats reads every figure at once; each comes from one cheap query (see internal/stats and
// the queue's Stats), and any that fails fails the call rather than showing a misleading zero.
func (h *systemService) GetStats(ctx context.Context, req *pipelinev1.GetStatsRequest) (*pipelinev1.GetStatsResponse, error) {
	window := defaultRateWindow
	if req.GetRateWindow() != nil {
		window = req.GetRateWindow().AsDuration()
	}
	var (
		jobCounts  stats.Jobs
		backlog    stats.Backlog
		throughput stats.Throughput
		queue      metrics.QueueStats
		workers    []registry.Info
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { jobCounts, err = h.stats.Jobs(gctx); return err })
	g.Go(func() (err error) { backlog, err = h.stats.Backlog(gctx); return err })
	g.Go(func() (err error) { throughput, err = h.stats.Throughput(gctx, window); return err })
	g.Go(func() (err error) { workers, err = h.listWorkers(gctx); return err })
	if h.s.deps.QueueStats != nil {
		g.Go(func() (err error) {
			if queue, err = h.s.deps.QueueStats(gctx); err != nil {
				return unavailable(gctx, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	totals := &pipelinev1.WorkerTotals{Workers: int32(len(workers))}
	for _, w := range workers {
		totals.BusySlots += int32(w.BusySlots)
		totals.TotalSlots += int32(w.TotalSlots)
		totals.DocumentsProcessed += w.DocumentsProcessed
	}
	return &pipelinev1.GetStatsResponse{
		Time: timestamppb.Now(),
		Queue: &pipelinev1.QueueStats{
			MessagesWaiting:  queue.Waiting,
			MessagesInFlight: queue.InFlight,
			MessagesDelayed:  queue.Delayed,
			OldestMessageAge: durationpb.New(queue.OldestWaiting),
			BatchesQueued:    backlog.BatchesQueued,
			BatchesRunning:   backlog.BatchesRunning,
			DocumentsQueued:  backlog.DocumentsQueued,
			OldestBatchAge:   durationpb.New(backlog.OldestQueuedAge),
		},
		Jobs:        jobCountsToProto(jobCounts.Crawl.Add(jobCounts.Process)),
		CrawlJobs:   jobCountsToProto(jobCounts.Crawl),
		ProcessJobs: jobCountsToProto(jobCounts.Process),
		Throughput: &pipelinev1.Throughput{
			Window:             durationpb.New(throughput.Window),
			Documents:          throughput.Documents(),
			Succeeded:          throughput.Succeeded,
			Skipped:            throughput.Skipped,
			Failed:             throughput.Failed,
			DocumentsPerSecond: throughput.PerSecond(),
		},
		Workers:       totals,
		ServerVersion: h.s.version(),
	}, nil
}

// unavailable marks a Redis failure as a dependency being away (UNAVAILABLE, retry), unless the
// call itself ended. Postgres errors need no marking: toStatus knows them.
func unavailable(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %w", errs.ErrUnavailable, err)
}

func workerToProto(w registry.Info) *pipelinev1.Worker {
	return &pipelinev1.Worker{
		WorkerId:           w.ID,
		Host:               w.Host,
		Pid:                int32(w.PID),
		Version:            w.Version,
		StartTime:          timestamppb.New(w.StartTime),
		LastHeartbeatTime:  timestamppb.New(w.LastHeartbeat),
		ActiveJobIds:       w.ActiveJobs,
		DocumentsProcessed: w.DocumentsProcessed,
		DocumentsFailed:    w.DocumentsFailed,
		BusySlots:          int32(w.BusySlots),
		TotalSlots:         int32(w.TotalSlots),
	}
}

func jobCountsToProto(c stats.JobCounts) *pipelinev1.JobCounts {
	return &pipelinev1.JobCounts{
		Pending: c.Pending, InProgress: c.InProgress, Completed: c.Completed, Failed: c.Failed, Cancelled: c.Cancelled,
	}
}
