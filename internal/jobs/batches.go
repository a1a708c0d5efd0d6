package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/pipeline-dev/pipeline/internal/errs"
)

// BatchState is where a batch of a processing job is. A batch of a job that has finished
// (completed, failed, cancelled) is never claimed again, whatever its state.
type BatchState string

const (
	// BatchQueued: waiting for a worker; a message for it is (or should be) on the queue.
	BatchQueued BatchState = "queued"
	// BatchRunning: a worker holds it under a lease.
	BatchRunning BatchState = "running"
	// BatchDone: its worker finished it.
	BatchDone BatchState = "done"
)

// Batch is a slice of a processing job's documents, delivered to workers as one queue message.
type Batch struct {
	ID          uuid.UUID
	JobID       uuid.UUID
	Seq         int // 0-based position in the job
	DocumentIDs []uuid.UUID
	State       BatchState
	// Enqueues counts the messages sent for the batch; QueueMessageID is the last one's id.
	Enqueues       int
	QueueMessageID string
	EnqueuedAt     *time.Time
	// Claims counts how many times a worker claimed the batch (more than 1: a worker died).
	Claims     int
	Worker     string
	LeaseUntil *time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
	FinishedAt *time.Time
}

// ErrNotClaimable says a batch cannot be claimed: it is done, held under a live lease, or its
// job has finished. A worker that gets it acknowledges the message and does nothing.
var ErrNotClaimable = errors.New("batch is not claimable")

// ErrLeaseLost says the worker no longer holds the batch: its lease ran out and another worker
// may have claimed it, or the batch is no longer running. The worker must stop.
var ErrLeaseLost = errors.New("batch lease lost")

// splitBatches cuts ids into batches of at most size, in order.
func splitBatches(ids []uuid.UUID, size int) [][]uuid.UUID {
	var out [][]uuid.UUID
	for len(ids) > 0 {
		n := min(size, len(ids))
		out = append(out, ids[:n:n])
		ids = ids[n:]
	}
	return out
}

// Batches lists a job's batches in order.
func (m *Manager) Batches(ctx context.Context, jobID uuid.UUID) ([]*Batch, error) {
	return m.store.BatchList(ctx, &BatchListParams{JobID: jobID})
}

// GetBatch reads one batch.
func (m *Manager) GetBatch(ctx context.Context, id uuid.UUID) (*Batch, error) {
	return m.store.BatchGet(ctx, &BatchGetParams{ID: id})
}

// EnqueueBatch sends a message for a queued batch through the Enqueuer, numbered one above the
// batch's last, and records it. The reconciler calls it for batches whose message was lost.
func (m *Manager) EnqueueBatch(ctx context.Context, b *Batch) (*Batch, error) {
	if m.cfg.Enqueuer == nil {
		return nil, errors.New("jobs: no Enqueuer configured")
	}
	n := b.Enqueues + 1
	msgID, err := m.cfg.Enqueuer.EnqueueBatch(ctx, b, n)
	if err != nil {
		return nil, err
	}
	updated, err := m.store.BatchMarkEnqueued(ctx, &BatchMarkEnqueuedParams{ID: b.ID, Enqueues: n, QueueMessageID: msgID})
	if errors.Is(err, errs.ErrNotFound) {
		// Claimed or re-enqueued meanwhile: the message is a harmless duplicate.
		return m.store.BatchGet(ctx, &BatchGetParams{ID: b.ID})
	}
	return updated, err
}

// ClaimBatch gives workerID the batch under a lease of the given length, and starts its job if
// it is still pending, in one transaction (one round trip) shared with the claims and finishes
// of other workers that arrive meanwhile (group commit, decision 0028). ErrNotClaimable (wrapped) when the batch is
// done, held by a live lease, or its job has finished: the caller acknowledges the message and
// does nothing.
func (m *Manager) ClaimBatch(ctx context.Context, id uuid.UUID, workerID string, lease time.Duration) (*Batch, *Job, error) {
	if workerID == "" {
		return nil, nil, errs.InvalidArgument("worker_id", "required")
	}
	r, err := m.batches.do(ctx, &batchCall{claim: &BatchClaimParams{ID: id, Worker: workerID, Lease: lease}})
	if err != nil {
		return nil, nil, err
	}
	res := r.claimed
	if res.Batch == nil || res.Job == nil {
		cur, gerr := m.store.BatchGet(ctx, &BatchGetParams{ID: id})
		if gerr != nil {
			return nil, nil, gerr // NotFound: the job (and its batches) was deleted
		}
		return nil, nil, fmt.Errorf("%w: batch %s is %s (worker %q)", ErrNotClaimable, id, cur.State, cur.Worker)
	}
	// The job as the claim left it: in progress, or finished meanwhile (the worker learns that
	// at its first report and stops).
	return res.Batch, res.Job, nil
}

// RenewLease extends workerID's lease on a running batch. ErrLeaseLost when it no longer holds it.
func (m *Manager) RenewLease(ctx context.Context, id uuid.UUID, workerID string, lease time.Duration) (*Batch, error) {
	b, err := m.store.BatchRenew(ctx, &BatchRenewParams{ID: id, Worker: workerID, Lease: lease})
	if errors.Is(err, errs.ErrNotFound) {
		return nil, fmt.Errorf("%w: batch %s, worker %q", ErrLeaseLost, id, workerID)
	}
	return b, err
}

// FinishBatch marks workerID's batch done and, when it was the job's last open batch, finishes
// the job as FinishJob does, in one transaction (one round trip) under the job's row lock, so
// that of batches finishing at once the last one always finishes the job. The transaction is
// shared with the claims and finishes of other workers that arrive meanwhile (group commit,
// decision 0028). It returns
// the job as it is afterwards, once the transaction committed; the Notifier hears of the job's
// end right after, without the caller waiting for it.
func (m *Manager) FinishBatch(ctx context.Context, id uuid.UUID, workerID string) (*Job, error) {
	r, err := m.batches.do(ctx, &batchCall{finish: &BatchFinishParams{ID: id, Worker: workerID}})
	if err != nil {
		return nil, err
	}
	res := r.finished
	if res.Batch == nil || res.Job == nil {
		return nil, fmt.Errorf("%w: batch %s, worker %q", ErrLeaseLost, id, workerID)
	}
	if res.Job.Status == StatusPending {
		// Never claimed through ClaimBatch, which starts the job: FinishJob starts it first.
		return m.finishIfDone(ctx, res.Job.ID)
	}
	return res.Job, nil
}

// batchCall is a ClaimBatch or a FinishBatch call waiting for its group: one of the two is set.
type batchCall struct {
	claim  *BatchClaimParams
	finish *BatchFinishParams
}

func (c *batchCall) batchID() uuid.UUID {
	if c.claim != nil {
		return c.claim.ID
	}
	return c.finish.ID
}

// batchCallResult is what a group did for a call: claimed or finished, as the call asked.
type batchCallResult struct {
	claimed  BatchClaimed
	finished BatchFinished
}

// claimFinish commits a group of claims and finishes in one transaction (decision 0028).
func (m *Manager) claimFinish(ctx context.Context, calls []*batchCall) ([]batchCallResult, error) {
	var claims []*BatchClaimParams
	var finishes []*BatchFinishParams
	for _, c := range calls {
		if c.claim != nil {
			claims = append(claims, c.claim)
		} else {
			finishes = append(finishes, c.finish)
		}
	}
	claimed, finished, err := m.store.BatchesClaimFinish(ctx, claims, finishes)
	if err != nil {
		return nil, err
	}
	out := make([]batchCallResult, len(calls))
	for i, c := range calls {
		if c.claim != nil {
			out[i].claimed, claimed = claimed[0], claimed[1:]
		} else {
			out[i].finished, finished = finished[0], finished[1:]
		}
	}
	return out, nil
}

// newGrouper returns the grouper of claims and finishes: commit runs a group; changed says which
// job a call's result started or ended, if any. Those jobs are announced once for the group,
// right after its callers have their answers.
func newGrouper[Req interface{ batchID() uuid.UUID }, Res any](m *Manager,
	commit func(context.Context, []Req) ([]Res, error), changed func(Res) *Job,
) *grouper[Req, Res] {
	return &grouper[Req, Res]{
		maxCalls: m.cfg.MaxGroup, maxInFlight: m.cfg.MaxGroupsInFlight, stallAfter: max(m.cfg.GroupStallAfter, 0),
		key:        Req.batchID,
		commit:     commit,
		retryAlone: retryAlone,
		committed: func(ctx context.Context, _ []Req, res []Res) {
			var jobs []*Job
			for _, r := range res {
				if j := changed(r); j != nil {
					jobs = append(jobs, j)
				}
			}
			m.notifyAll(ctx, jobs)
		},
	}
}

// retryAlone tells a failed group's error that is worth trying again call by call (a lock
// conflict, or anything but Postgres being unreachable) from one that would fail each again.
func retryAlone(err error) bool {
	return !errors.Is(err, errs.ErrUnavailable) || lockConflict(err)
}

// finishIfDone finishes the job when none of its batches is open.
func (m *Manager) finishIfDone(ctx context.Context, jobID uuid.UUID) (*Job, error) {
	open, err := m.store.BatchOpenCount(ctx, &BatchOpenCountParams{JobID: jobID})
	if err != nil {
		return nil, err
	}
	if open > 0 {
		return m.Get(ctx, jobID)
	}
	return m.FinishJob(ctx, jobID)
}

// FinishJob ends a job whose work is all done: COMPLETED, with error_count telling how many
// documents failed, or FAILED when documents failed and none could be processed. A job already
// finished (cancelled meanwhile, or finished by a racing caller) is returned as it is.
func (m *Manager) FinishJob(ctx context.Context, jobID uuid.UUID) (*Job, error) {
	job, err := m.Get(ctx, jobID)
	if err != nil {
		return nil, err
	}
	if job.Status.Terminal() {
		return job, nil
	}
	if job.Status == StatusPending {
		// Every batch ended without a claim starting the job (e.g. all were skipped): start it
		// so the move to a terminal status follows the state machine.
		if _, err := m.Start(ctx, jobID); err != nil && !errors.Is(err, ErrInvalidTransition) {
			return nil, err
		}
		if job, err = m.Get(ctx, jobID); err != nil {
			return nil, err
		}
		if job.Status.Terminal() {
			return job, nil
		}
	}
	if job.ProcessedCount == 0 && job.ErrorCount > 0 {
		job, err = m.Fail(ctx, jobID, fmt.Sprintf("none of the %d documents could be processed; see the per-document errors", job.ErrorCount))
	} else {
		job, err = m.Complete(ctx, jobID)
	}
	if errors.Is(err, ErrInvalidTransition) {
		return m.Get(ctx, jobID)
	}
	return job, err
}

// ReleaseExpiredBatches puts running batches whose lease ran out back to queued, for the
// reconciler to enqueue again.
func (m *Manager) ReleaseExpiredBatches(ctx context.Context) ([]*Batch, error) {
	return m.store.BatchReleaseExpired(ctx)
}

// QueuedBatches lists up to max queued batches of active jobs last changed (enqueued, created or
// handed back by a worker) before the given time.
func (m *Manager) QueuedBatches(ctx context.Context, before time.Time, max int) ([]*Batch, error) {
	return m.store.BatchListQueued(ctx, &BatchListQueuedParams{Before: before, Max: max})
}

// FailTimedOut fails up to max active jobs that outlived their timeout and returns them.
func (m *Manager) FailTimedOut(ctx context.Context, max int) ([]*Job, error) {
	list, err := m.store.JobListTimedOut(ctx, max)
	if err != nil {
		return nil, err
	}
	var failed []*Job
	for _, j := range list {
		job, err := m.Fail(ctx, j.ID, fmt.Sprintf("timed out: still %s after %s", j.Status, j.Timeout))
		if errors.Is(err, ErrInvalidTransition) {
			continue // finished meanwhile
		}
		if err != nil {
			return failed, err
		}
		failed = append(failed, job)
	}
	return failed, nil
}

// FinishStranded finishes up to max active jobs whose batches are all done: the worker that
// finished the last batch died before it could finish the job.
func (m *Manager) FinishStranded(ctx context.Context, max int) ([]*Job, error) {
	list, err := m.store.JobListUnfinished(ctx, max)
	if err != nil {
		return nil, err
	}
	var done []*Job
	for _, j := range list {
		job, err := m.FinishJob(ctx, j.ID)
		if err != nil {
			return done, err
		}
		done = append(done, job)
	}
	return done, nil
}

// ResultsOf returns the job's results for the given documents (a batch's), by document id.
func (m *Manager) ResultsOf(ctx context.Context, jobID uuid.UUID, documentIDs []uuid.UUID) (map[uuid.UUID]*DocumentResult, error) {
	list, err := m.store.JobDocumentsList(ctx, &JobDocumentsListParams{JobID: jobID, DocumentIDs: documentIDs})
	if err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]*DocumentResult, len(list))
	for _, r := range list {
		out[r.DocumentID] = r
	}
	return out, nil
}

// ReleaseBatch hands workerID's running batch back (queued, no lease) when the worker stops
// before finishing it, so another worker can take it at once instead of after the lease.
func (m *Manager) ReleaseBatch(ctx context.Context, id uuid.UUID, workerID string) (*Batch, error) {
	b, err := m.store.BatchRelease(ctx, &BatchFinishParams{ID: id, Worker: workerID})
	if errors.Is(err, errs.ErrNotFound) {
		return nil, fmt.Errorf("%w: batch %s, worker %q", ErrLeaseLost, id, workerID)
	}
	return b, err
}
