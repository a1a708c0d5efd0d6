package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pipeline-dev/pipeline/internal/errs"
)

// ReportParams is one worker message about one job: it renews the lease of the worker's batch
// (if it names one) and records per-document results (if it has any; one with none is a
// heartbeat).
type ReportParams struct {
	JobID uuid.UUID
	// BatchID, when valid, is the batch the worker holds; the report is refused with
	// ErrLeaseLost unless Worker still holds it, and otherwise renews the lease for Lease when
	// less than three quarters of Lease is left (so after the report at least that much is).
	BatchID uuid.NullUUID
	Worker  string
	Lease   time.Duration
	// Results are per-document results, each document at most once; empty for a heartbeat.
	Results []DocumentResultUpdate
}

// ReportOutcome is the store's verdict on one report (the words of job_report_record.sql).
type ReportOutcome string

// The verdicts a report can get.
const (
	ReportOK         ReportOutcome = "ok"
	ReportLeaseLost  ReportOutcome = "lease_lost"
	ReportWrongBatch ReportOutcome = "wrong_batch"
	ReportNotFound   ReportOutcome = "not_found"
	ReportNotRunning ReportOutcome = "not_running"
	ReportNotMember  ReportOutcome = "not_member"
)

const (
	defaultMaxReports   = 256
	defaultMaxResults   = 10_000
	defaultMaxInFlight  = 1
	defaultLockTimeout  = 5 * time.Second
	reportCommitTimeout = 30 * time.Second
)

// verdict turns the store's verdict on report i of res into the report's job or error.
func verdict(res *JobReportResult, i int, p *ReportParams) (*Job, error) {
	v := res.Verdicts[i]
	switch v.Outcome {
	case ReportOK:
		job := res.Jobs[p.JobID]
		switch {
		case job == nil:
			return nil, errs.NotFound("job", p.JobID.String())
		case len(p.Results) > 0 && !acceptsResults(job.Status):
			// The SQL applies the state machine's rule; this would be a drift between the two.
			return nil, fmt.Errorf("jobs store: results recorded for job %s in status %s", p.JobID, job.Status)
		}
		return job, nil
	case ReportLeaseLost:
		return nil, fmt.Errorf("%w: batch %s, worker %q", ErrLeaseLost, p.BatchID.UUID, p.Worker)
	case ReportWrongBatch:
		return nil, errs.InvalidArgument("batch_id", "batch %s belongs to job %s, not %s", p.BatchID.UUID, v.BatchJobID.UUID, p.JobID)
	case ReportNotFound:
		return nil, errs.NotFound("job", p.JobID.String())
	case ReportNotRunning:
		status := Status("missing")
		if job := res.Jobs[p.JobID]; job != nil {
			status = job.Status
		}
		return nil, errs.FailedPrecondition("job %s is %s: results are recorded only while it is %s",
			p.JobID, status, StatusInProgress)
	case ReportNotMember:
		return nil, errs.InvalidArgument("document_id", "document %s is not part of job %s", v.StrayDocumentID.UUID, p.JobID)
	}
	return nil, fmt.Errorf("jobs: unknown report verdict %q", v.Outcome)
}

// validateReport checks what can be checked without the database.
func validateReport(p *ReportParams) error {
	if p.JobID == uuid.Nil {
		return errs.InvalidArgument("job_id", "required")
	}
	if p.BatchID.Valid && p.Lease < time.Second {
		return errs.InvalidArgument("lease", "must be at least 1s, got %s", p.Lease)
	}
	return validateResultEntries(p.Results)
}

// RecorderConfig configures a Recorder. The zero value is usable.
type RecorderConfig struct {
	// Committed, when set, is called with the new state of every job whose results a commit
	// recorded, in commit order, right after the commit and before any of its reports is
	// answered (so a local watcher can have the state before the worker has its answer). It
	// must not block or modify the job. Defaults to nil.
	Committed func(*Job)
	// MaxReports caps the reports one transaction records. Defaults to 256.
	MaxReports int
	// MaxResults caps the per-document results one transaction records (a single larger
	// report still goes alone). Defaults to 10,000.
	MaxResults int
	// MaxInFlight caps the transactions under way at once. More than one lets a group start
	// while the previous one waits for its commit to reach the disk, at the cost of smaller
	// groups and more transactions; on the 2-core benchmark machine 2 and 4 were no better
	// than 1 (docs/performance.md). Defaults to 1.
	MaxInFlight int
	// LockTimeout bounds a transaction's wait for a job's row lock. A job row held by a long
	// transaction (a big source's delete, a manual session) then fails its group after this
	// long; the group's reports are retried one by one, so only that job's reports fail (as
	// Unavailable: the worker reports again) and the others' are recorded. Defaults to 5 s.
	LockTimeout time.Duration
}

// Recorder records workers' reports with group commit: reports that arrive while
// MaxInFlight transactions are under way wait and go together in the next one (JobReport: one
// round trip to Postgres and one commit for all of them), so many workers reporting at once
// cost a few transactions instead of one each. A report is answered only after its
// transaction committed. Reports of one stream stay in order, since a worker sends its next
// report after the answer; transactions that share a job queue on its row lock. After the
// answers, the committing goroutine tells the Manager's Notifier about all the jobs the group
// changed at once (a GroupNotifier's JobsChanged: one Redis round trip for the group). Safe
// for concurrent use; it runs goroutines only while reports are waiting.
type Recorder struct {
	m   *Manager
	cfg RecorderConfig

	mu      sync.Mutex
	queue   []*pendingReport
	running int // goroutines committing groups
	// notified is closed when the last group handed to the Notifier has been told.
	notified chan struct{}

	docs knownDocuments
}

// maxKnownDocuments caps the document ids a Recorder keeps (16 bytes each: 4 MiB).
const maxKnownDocuments = 1 << 18

// knownDocuments keeps the document ids of the jobs a Recorder has read, so that its next
// transactions about them need not read them again (JobReportParams.KnownDocuments): they never
// change, and for a big job they are most of its row. A job leaves when it ends; past
// maxKnownDocuments ids all are forgotten and read again as needed.
type knownDocuments struct {
	mu    sync.Mutex
	ids   map[uuid.UUID][]uuid.UUID
	total int
}

// of returns the known document ids of the reports' jobs (nil if none is known).
func (k *knownDocuments) of(reports []*ReportParams) map[uuid.UUID][]uuid.UUID {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out map[uuid.UUID][]uuid.UUID
	for _, p := range reports {
		if ids, ok := k.ids[p.JobID]; ok {
			if out == nil {
				out = make(map[uuid.UUID][]uuid.UUID)
			}
			out[p.JobID] = ids
		}
	}
	return out
}

// learn notes the document ids of the jobs a transaction read, and forgets the ended ones.
func (k *knownDocuments) learn(jobs map[uuid.UUID]*Job) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for id, j := range jobs {
		ids, ok := k.ids[id]
		switch {
		case j.Status.Terminal():
			if ok {
				delete(k.ids, id)
				k.total -= len(ids)
			}
		case !ok && len(j.DocumentIDs) <= maxKnownDocuments:
			if k.ids == nil || k.total+len(j.DocumentIDs) > maxKnownDocuments {
				k.ids, k.total = make(map[uuid.UUID][]uuid.UUID), 0
			}
			k.ids[id] = j.DocumentIDs
			k.total += len(j.DocumentIDs)
		}
	}
}

// NewRecorder returns a Recorder that records through m's store and notifies m's Notifier.
func (m *Manager) NewRecorder(cfg RecorderConfig) *Recorder {
	cfg.MaxReports = cmp.Or(cfg.MaxReports, defaultMaxReports)
	cfg.MaxResults = cmp.Or(cfg.MaxResults, defaultMaxResults)
	cfg.MaxInFlight = cmp.Or(cfg.MaxInFlight, defaultMaxInFlight)
	cfg.LockTimeout = cmp.Or(cfg.LockTimeout, defaultLockTimeout)
	notified := make(chan struct{})
	close(notified)
	return &Recorder{m: m, cfg: cfg, notified: notified}
}

// States of a pendingReport: its caller is waiting, has its answer, or has gone away.
const (
	reportWaiting int32 = iota
	reportAnswered
	reportAbandoned
)

type pendingReport struct {
	p     *ReportParams
	state atomic.Int32
	done  chan struct{} // closed once answered
	// Set before the answer.
	job *Job
	err error
}

// Report records one report and returns the job after it. Refusals are errors, as for
// RecordResults: ErrLeaseLost (wrapped), errs.NotFound for the job, errs.InvalidArgument
// naming the field (batch_id of another job, a document not in the job, a bad result),
// errs.FailedPrecondition for results of a job that is not in progress. A caller that goes
// away while its report waits gets ctx's error; the report may still be recorded. The job's
// DocumentIDs are shared with the Recorder's other answers about it: read them only.
func (r *Recorder) Report(ctx context.Context, p ReportParams) (*Job, error) {
	if err := validateReport(&p); err != nil {
		return nil, err
	}
	pr := &pendingReport{p: &p, done: make(chan struct{})}
	r.mu.Lock()
	r.queue = append(r.queue, pr)
	start := r.running < r.cfg.MaxInFlight
	if start {
		r.running++
	}
	r.mu.Unlock()
	if start {
		go r.run()
	}
	select {
	case <-pr.done:
	case <-ctx.Done():
		if pr.state.CompareAndSwap(reportWaiting, reportAbandoned) {
			return nil, ctx.Err()
		}
		<-pr.done // answered just now
	}
	return pr.job, pr.err
}

// Flush waits until the Notifier has been told about the jobs of every report answered so far
// (or ctx ends): a server shutting down calls it before it closes Redis.
func (r *Recorder) Flush(ctx context.Context) error {
	r.mu.Lock()
	notified := r.notified
	r.mu.Unlock()
	select {
	case <-notified:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("jobs: flush report notices: %w", ctx.Err())
	}
}

// run commits groups of waiting reports until none is left.
//
// After a group's answers, the same goroutine tells the Notifier (Redis) about the group's jobs,
// once the previous group's have been told (commit order, also with several transactions in
// flight); meanwhile the next reports gather. Notifying from a goroutine of its own, so that the
// next transaction need not wait for Redis, was tried: on the 2-core benchmark machine it gave
// smaller groups, more transactions and more CPU per report.
func (r *Recorder) run() {
	for {
		group := r.take()
		if group == nil {
			return
		}
		// Taken before the commit answers anyone, so that Flush, once a report is answered,
		// waits for its group.
		done := make(chan struct{})
		r.mu.Lock()
		prev := r.notified
		r.notified = done
		r.mu.Unlock()
		changed := r.commit(group, nil)
		<-prev
		for _, jobs := range changed {
			r.m.notifyAll(context.Background(), jobs)
		}
		close(done)
	}
}

// take removes the next group from the queue, skipping reports whose caller has gone; nil
// (and the calling goroutine stops) when the queue is empty.
func (r *Recorder) take() []*pendingReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	var group []*pendingReport
	results, i := 0, 0
	for ; i < len(r.queue) && len(group) < r.cfg.MaxReports; i++ {
		pr := r.queue[i]
		if pr.state.Load() == reportAbandoned {
			continue
		}
		if len(group) > 0 && results+len(pr.p.Results) > r.cfg.MaxResults {
			break
		}
		results += len(pr.p.Results)
		group = append(group, pr)
	}
	r.queue = r.queue[i:]
	if len(r.queue) == 0 {
		r.queue = nil // let the backing array go
	}
	if group == nil {
		r.running--
	}
	return group
}

// commit records a group in one transaction and answers its reports. If the group fails for a
// reason other than Postgres being unreachable (a bad report, a job row locked too long, a
// deadlock), each report still waiting is tried alone, so that one report cannot fail the
// others.
//
// It returns the jobs the Notifier must hear about: for each transaction that committed, the
// distinct jobs whose results it recorded, at their new version.
func (r *Recorder) commit(group []*pendingReport, changes [][]*Job) [][]*Job {
	ctx, cancel := context.WithTimeout(context.Background(), reportCommitTimeout)
	defer cancel()
	params := &JobReportParams{Reports: make([]*ReportParams, len(group)), LockTimeout: r.cfg.LockTimeout}
	for i, pr := range group {
		params.Reports[i] = pr.p
	}
	params.KnownDocuments = r.docs.of(params.Reports)
	res, err := r.m.store.JobReport(ctx, params)
	if err == nil {
		r.docs.learn(res.Jobs)
	}
	if err != nil {
		if len(group) > 1 && (!errors.Is(err, errs.ErrUnavailable) || lockConflict(err)) {
			for _, pr := range group {
				if pr.state.Load() != reportAbandoned {
					changes = r.commit([]*pendingReport{pr}, changes)
				}
			}
			return changes
		}
		for _, pr := range group {
			pr.err = err
			r.answer(pr)
		}
		return changes
	}
	// Each job whose results the commit recorded has one new version (the store reads the
	// jobs back after the commit, so the reports of one job share it).
	var changed []*Job
	seen := make(map[uuid.UUID]bool)
	for i, pr := range group {
		pr.job, pr.err = verdict(res, i, pr.p)
		if pr.err == nil && len(pr.p.Results) > 0 && !seen[pr.job.ID] {
			seen[pr.job.ID] = true
			changed = append(changed, pr.job)
		}
	}
	if r.cfg.Committed != nil {
		for _, job := range changed {
			r.cfg.Committed(job)
		}
	}
	for _, pr := range group {
		r.answer(pr)
	}
	// The Notifier (Redis status cache, events for other replicas) hears about the whole group
	// at once, after the answers: a worker does not wait for Redis, and this process's
	// watchers already have the state (Committed). The notices carry versions, so one that
	// comes late cannot move anything backwards.
	if len(changed) > 0 {
		changes = append(changes, changed)
	}
	return changes
}

// answer hands pr its result (unless its caller has gone).
func (r *Recorder) answer(pr *pendingReport) {
	if pr.state.CompareAndSwap(reportWaiting, reportAnswered) {
		close(pr.done)
	}
}

// lockConflict tells a failure that is about one job's row lock (waited too long, deadlock) from
// Postgres being unreachable: the former is worth retrying report by report.
func lockConflict(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "55P03" || pgErr.Code == "40P01")
}
