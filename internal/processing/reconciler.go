package processing

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/pipeline-dev/pipeline/internal/jobs"
)

// MessageChecker tells whether a batch's message is still waiting in the queue.
type MessageChecker interface {
	HasMessage(ctx context.Context, batchID uuid.UUID) (bool, error)
}

// StaleCrawlReaper fails crawls whose crawler went away.
type StaleCrawlReaper interface {
	ReapStale(ctx context.Context, before time.Time) (int, error)
}

// Reconciler repairs what the queue and crashed workers leave behind, every Interval:
//   - jobs active past their timeout fail;
//   - running batches whose lease ran out (the worker died) are queued and enqueued again;
//   - queued batches whose message is gone (enqueue failed, Redis lost its data) are enqueued
//     again, under a new message id so taskq cannot drop them as duplicates; so are batches
//     waiting far longer than expected (StaleAfter, doubling per enqueue), whose message may be
//     lost though its marker is not;
//   - jobs whose batches are all done but which were never finished get finished;
//   - deleted sources whose vectors could not be purged at the time are purged.
//
// Every step is safe to repeat and to run on several replicas at once: claims in Postgres make
// extra messages harmless.
type Reconciler struct {
	Jobs  *jobs.Manager
	Queue MessageChecker
	// Interval is the spec's poll_interval. Defaults to 30s.
	Interval time.Duration
	// Grace is how long after its last enqueue, its creation or its hand-back by a worker
	// (whichever came last) a queued batch without a message counts as lost: a message just
	// delivered has lost its marker a moment before its claim, and a job just created, or a
	// batch just handed back, is having its message sent. Defaults to 5s.
	Grace time.Duration
	// StaleAfter is how long a queued batch may wait with its marker present before it is
	// enqueued again anyway: a marker can outlive its message (a consumer that stopped with the
	// message read but unhandled). The wait doubles with each enqueue of the batch, so a long
	// backlog costs a few duplicate messages, not one per pass. Defaults to 10m.
	StaleAfter time.Duration
	// Purger, when set, retries purges of deleted sources' vectors.
	Purger *Purger
	// Crawls, when set, fails crawl jobs silent for longer than CrawlStaleAfter (default 2m).
	Crawls          StaleCrawlReaper
	CrawlStaleAfter time.Duration
	Log             *slog.Logger
}

// Report counts what one pass did.
type Report struct {
	TimedOut, Released, Requeued, Finished, Purged, StaleCrawls int
}

// Run reconciles at once and then every Interval until ctx ends.
func (r *Reconciler) Run(ctx context.Context) {
	t := time.NewTicker(cmp.Or(r.Interval, 30*time.Second))
	defer t.Stop()
	for {
		rep, err := r.Once(ctx)
		if err != nil && ctx.Err() == nil {
			r.Log.WarnContext(ctx, "reconcile", "err", err)
		}
		if rep != (Report{}) {
			r.Log.InfoContext(ctx, "reconciled", "timed_out", rep.TimedOut, "released", rep.Released,
				"requeued", rep.Requeued, "finished", rep.Finished, "purged", rep.Purged, "stale_crawls", rep.StaleCrawls)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// overdue says a queued batch has waited so long since its last enqueue that its message may
// be lost even though its marker is there.
func (r *Reconciler) overdue(b *jobs.Batch) bool {
	wait := cmp.Or(r.StaleAfter, 10*time.Minute) << min(max(b.Enqueues-1, 0), 6)
	return time.Since(*b.EnqueuedAt) > wait
}

// Once runs one pass. It goes on past a failed step and returns the errors together.
func (r *Reconciler) Once(ctx context.Context) (Report, error) {
	var rep Report
	var errList []error

	failed, err := r.Jobs.FailTimedOut(ctx, 1000)
	rep.TimedOut = len(failed)
	errList = append(errList, err)

	released, err := r.Jobs.ReleaseExpiredBatches(ctx)
	errList = append(errList, err)
	for _, b := range released {
		r.Log.InfoContext(ctx, "lease expired; batch goes back to the queue", "job_id", b.JobID, "batch_id", b.ID, "claims", b.Claims)
		if _, err := r.Jobs.EnqueueBatch(ctx, b); err != nil {
			errList = append(errList, err)
			continue
		}
		rep.Released++
	}

	queued, err := r.Jobs.QueuedBatches(ctx, time.Now().Add(-cmp.Or(r.Grace, 5*time.Second)), 10000)
	errList = append(errList, err)
	for _, b := range queued {
		if b.EnqueuedAt != nil && !r.overdue(b) {
			has, err := r.Queue.HasMessage(ctx, b.ID)
			if err != nil {
				errList = append(errList, err)
				break // Redis is away: nothing to learn about the other batches either
			}
			if has {
				continue
			}
		}
		if _, err := r.Jobs.EnqueueBatch(ctx, b); err != nil {
			errList = append(errList, err)
			break
		}
		rep.Requeued++
	}

	finished, err := r.Jobs.FinishStranded(ctx, 1000)
	rep.Finished = len(finished)
	errList = append(errList, err)

	if r.Purger != nil {
		rep.Purged, err = r.Purger.PurgePending(ctx, 100)
		errList = append(errList, err)
	}
	if r.Crawls != nil {
		rep.StaleCrawls, err = r.Crawls.ReapStale(ctx, time.Now().Add(-cmp.Or(r.CrawlStaleAfter, 2*time.Minute)))
		errList = append(errList, err)
	}
	return rep, errors.Join(errList...)
}
