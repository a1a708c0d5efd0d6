package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/pagetoken"
)

// Enqueuer puts one message per batch on the queue and returns the message's id. n numbers the
// messages of one batch from 1; the Enqueuer must not drop a message as a duplicate of an
// earlier one (a re-enqueue after a lost message is deliberate).
type Enqueuer interface {
	EnqueueBatch(ctx context.Context, b *Batch, n int) (messageID string, err error)
	// MessageID is the id EnqueueBatch gives message n of a batch: a new job's batches are
	// stored with their first message already named, before it is sent (decision 0036).
	MessageID(batchID uuid.UUID, n int) string
}

// Notifier is told about every committed change of a job, once per version. Events are hints
// for watchers; Postgres stays the truth, so a Notifier error is logged and never fails the
// write that caused it.
type Notifier interface {
	// JobChanged is told about a copy of the job; its DocumentIDs are shared, not copied, and
	// must not be modified.
	JobChanged(ctx context.Context, job *Job) error
}

// GroupNotifier is a Notifier that can also be told at once about the jobs one group commit
// changed (claims starting jobs, finishes ending them), e.g. to update all of their caches in
// one round trip. Without it the Manager calls JobChanged for each.
type GroupNotifier interface {
	Notifier
	// JobsChanged is JobChanged for each of the jobs, which are distinct.
	JobsChanged(ctx context.Context, jobs []*Job) error
}

// Config configures a Manager. The zero value is usable; WithDefaults fills it in.
type Config struct {
	// Enqueuer receives the batches of every processing job created by Create or Retry.
	// Defaults to nil: new jobs stay pending until a reconciler enqueues them.
	Enqueuer Enqueuer
	// Notifier is called after every committed write. Defaults to nil: no events.
	Notifier Notifier
	// Logger receives failures of the Enqueuer and Notifier. Defaults to slog.Default().
	Logger *slog.Logger
	// DefaultTimeout is the timeout of a job created without one. Defaults to 1h.
	DefaultTimeout time.Duration
	// DefaultPageSize is the page size of a list request that asks for none. Defaults to 50.
	DefaultPageSize int
	// MaxPageSize caps the page size of list requests; larger requests get this many. Defaults
	// to 1000.
	MaxPageSize int
	// BatchSize is the most documents of a processing job one batch (one queue message, one
	// worker at a time) holds. Defaults to 100.
	BatchSize int
	// MaxGroup caps the claims and finishes that share one transaction: ClaimBatch and
	// FinishBatch calls that arrive while earlier ones are being committed wait and go
	// together (group commit), claims and finishes alike. Defaults to 64.
	MaxGroup int
	// MaxGroupsInFlight caps the transactions of claims and finishes under way at once. More
	// than one keeps one slow transaction (a lock wait, a starved backend) from holding up every
	// worker; see GroupStallAfter. Defaults to 2.
	MaxGroupsInFlight int
	// GroupStallAfter is how long the transaction of a group of claims and finishes runs before
	// the calls waiting behind it may start a group of their own beside it, up to
	// MaxGroupsInFlight. Until then they wait for it and go together: fewer, larger groups cost
	// Postgres less (decision 0030). The next group never waits for a group's announcement.
	// Defaults to 10ms; negative: no wait.
	GroupStallAfter time.Duration
}

// WithDefaults returns c with every unset field at its documented default.
func (c Config) WithDefaults() Config {
	c.Logger = cmp.Or(c.Logger, slog.Default())
	c.DefaultTimeout = cmp.Or(c.DefaultTimeout, time.Hour)
	c.DefaultPageSize = cmp.Or(c.DefaultPageSize, 50)
	c.MaxPageSize = cmp.Or(c.MaxPageSize, 1000)
	c.BatchSize = cmp.Or(c.BatchSize, 100)
	c.MaxGroup = cmp.Or(c.MaxGroup, 64)
	c.MaxGroupsInFlight = cmp.Or(c.MaxGroupsInFlight, 2)
	c.GroupStallAfter = cmp.Or(c.GroupStallAfter, 10*time.Millisecond)
	return c
}

// Validate reports the first unusable field of c (after defaults).
func (c Config) Validate() error {
	switch {
	case c.DefaultTimeout < time.Second:
		return fmt.Errorf("jobs config: DefaultTimeout must be at least 1s, got %s", c.DefaultTimeout)
	case c.DefaultPageSize < 1:
		return fmt.Errorf("jobs config: DefaultPageSize must be positive, got %d", c.DefaultPageSize)
	case c.BatchSize < 1:
		return fmt.Errorf("jobs config: BatchSize must be positive, got %d", c.BatchSize)
	case c.MaxGroup < 1 || c.MaxGroupsInFlight < 1:
		return fmt.Errorf("jobs config: MaxGroup (%d) and MaxGroupsInFlight (%d) must be positive", c.MaxGroup, c.MaxGroupsInFlight)
	case c.MaxPageSize < c.DefaultPageSize:
		return fmt.Errorf("jobs config: MaxPageSize (%d) must be at least DefaultPageSize (%d)", c.MaxPageSize, c.DefaultPageSize)
	}
	return nil
}

// Manager owns job lifecycle: every job write in the system goes through it, and every status
// change goes through the state machine in statemachine.go. It is safe for concurrent use,
// across goroutines and processes: each transition is one conditional UPDATE, and result
// recording locks the job row, so Postgres arbitrates races.
type Manager struct {
	store Store
	cfg   Config
	// batches groups concurrent ClaimBatch and FinishBatch calls, both kinds together
	// (batches.go).
	batches *grouper[*batchCall, batchCallResult]
}

// NewManager returns a Manager on store, with cfg's unset fields at their defaults.
func NewManager(store Store, cfg Config) (*Manager, error) {
	if store == nil {
		return nil, errors.New("jobs: NewManager needs a Store")
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Manager{store: store, cfg: cfg}
	m.batches = newGrouper(m, m.claimFinish, func(r batchCallResult) *Job {
		switch {
		case r.claimed.Started:
			return r.claimed.Job
		case r.finished.JobEnded:
			return r.finished.Job
		}
		return nil
	})
	// A batch claimed for a worker that stopped waiting (its context ended: shutdown, a
	// deadline) goes back to the queue at once instead of when its lease runs out.
	m.batches.abandoned = func(ctx context.Context, c *batchCall, r batchCallResult) {
		if c.claim == nil || r.claimed.Batch == nil {
			return
		}
		p := c.claim
		if _, err := m.store.BatchRelease(ctx, &BatchFinishParams{ID: p.ID, Worker: p.Worker}); err != nil && !errors.Is(err, errs.ErrNotFound) {
			m.cfg.Logger.WarnContext(ctx, "hand back a batch claimed for a caller that went away", "batch_id", p.ID, "error", err)
		}
	}
	return m, nil
}

// CreateParams describe a new job.
type CreateParams struct {
	Type     Type
	SourceID uuid.UUID
	// DocumentIDs are the documents to work on, each at most once; empty for a crawl job.
	DocumentIDs []uuid.UUID
	// Timeout is how long the job may run, rounded up to whole seconds. Defaults to
	// Config.DefaultTimeout.
	Timeout time.Duration
}

// Create stores a pending job with a pending result per document, in one transaction, then
// hands it to the Enqueuer (if any) and stores the queue message id. An enqueue failure is
// logged and the job returned still pending without error: a reconciler enqueues it later.
func (m *Manager) Create(ctx context.Context, p CreateParams) (*Job, error) {
	if err := m.validateCreate(&p); err != nil {
		return nil, err
	}
	return m.create(ctx, p, uuid.NullUUID{})
}

func (m *Manager) validateCreate(p *CreateParams) error {
	if !p.Type.valid() {
		return errs.InvalidArgument("type", "unknown job type %q", p.Type)
	}
	if p.SourceID == uuid.Nil {
		return errs.InvalidArgument("source_id", "required")
	}
	seen := make(map[uuid.UUID]bool, len(p.DocumentIDs))
	for i, id := range p.DocumentIDs {
		if id == uuid.Nil {
			return errs.InvalidArgument("document_ids", "document_ids[%d] is empty", i)
		}
		if seen[id] {
			return errs.InvalidArgument("document_ids", "document %s is listed twice", id)
		}
		seen[id] = true
	}
	if p.Timeout < 0 {
		return errs.InvalidArgument("timeout", "must not be negative, got %s", p.Timeout)
	}
	return nil
}

// create is the one path that makes a job, for Create and Retry; p is already validated.
func (m *Manager) create(ctx context.Context, p CreateParams, retryOf uuid.NullUUID) (*Job, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("new job id: %w", err)
	}
	timeout := cmp.Or(p.Timeout, m.cfg.DefaultTimeout)
	timeout = (timeout + time.Second - 1).Truncate(time.Second)
	docs := slices.Clone(p.DocumentIDs)

	var batches []BatchInsertParams
	var firstMessage string
	if p.Type == TypeProcess {
		for seq, ids := range splitBatches(docs, m.cfg.BatchSize) {
			b := BatchInsertParams{ID: uuid.New(), JobID: id, Seq: seq, DocumentIDs: ids}
			if m.cfg.Enqueuer != nil {
				// Sent right after the commit; stored as sent, so that no second round trip
				// has to record it (decision 0036).
				b.Enqueues, b.QueueMessageID = 1, m.cfg.Enqueuer.MessageID(b.ID, 1)
			}
			batches = append(batches, b)
		}
		if len(batches) > 0 {
			firstMessage = batches[0].QueueMessageID
		}
	}
	// One round trip: the job, its per-document rows and its batches, atomically.
	job, err := m.store.JobCreate(ctx, &JobCreateParams{
		Job: JobInsertParams{
			ID: id, Type: p.Type, Status: StatusPending, SourceID: p.SourceID,
			DocumentIDs: docs, RetryOf: retryOf, Timeout: timeout, QueueMessageID: firstMessage,
		},
		Batches: batches,
	})
	if err != nil {
		return nil, err
	}
	m.notify(ctx, job)
	m.enqueue(ctx, job, batches)
	return job, nil
}

// enqueue sends the first message of each batch of a job just committed, under the id the
// batch was stored with. Failures are logged, not returned: the job is safely pending in
// Postgres either way, and the reconciler sends a batch whose message is missing from the queue
// once the grace from its creation has passed.
func (m *Manager) enqueue(ctx context.Context, job *Job, batches []BatchInsertParams) {
	if m.cfg.Enqueuer == nil || job.Type != TypeProcess {
		return
	}
	// The job is committed; a caller that goes away now should not stop it reaching the queue.
	ctx = context.WithoutCancel(ctx)
	for _, bp := range batches {
		// The batch as batch_insert.sql left it: queued, its first message named, stamped
		// with the job.
		b := &Batch{ID: bp.ID, JobID: bp.JobID, Seq: bp.Seq, DocumentIDs: bp.DocumentIDs, State: BatchQueued,
			Enqueues: bp.Enqueues, QueueMessageID: bp.QueueMessageID, CreatedAt: job.CreatedAt, UpdatedAt: job.CreatedAt}
		msgID, err := m.cfg.Enqueuer.EnqueueBatch(ctx, b, 1)
		switch {
		case err != nil:
			m.cfg.Logger.WarnContext(ctx, "enqueue batch failed; the reconciler will enqueue it",
				"job_id", job.ID, "batch_id", b.ID, "error", err)
		case msgID != bp.QueueMessageID:
			// An Enqueuer whose MessageID lies: the work goes on (the claim in Postgres makes
			// any delivery of the batch count once), but the stored id names no message.
			m.cfg.Logger.ErrorContext(ctx, "the queue gave a message another id than it named in advance",
				"job_id", job.ID, "batch_id", b.ID, "named", bp.QueueMessageID, "sent", msgID)
		}
	}
}

// Get returns the job with the given id.
func (m *Manager) Get(ctx context.Context, id uuid.UUID) (*Job, error) {
	return m.store.JobGet(ctx, &JobGetParams{ID: id})
}

// ListParams filter and page a job listing. Zero filter values match every job.
type ListParams struct {
	SourceID uuid.NullUUID
	Type     Type
	Status   Status
	// PageSize defaults to Config.DefaultPageSize and is capped at Config.MaxPageSize.
	PageSize int
	// PageToken is the nextPageToken of the previous page with the same filters; empty for the
	// first page.
	PageToken string
}

// List returns a page of jobs, newest first (created_at DESC, id DESC), and the token of the
// next page, empty on the last one.
func (m *Manager) List(ctx context.Context, p ListParams) ([]*Job, string, error) {
	if p.Type != "" && !p.Type.valid() {
		return nil, "", errs.InvalidArgument("type", "unknown job type %q", p.Type)
	}
	if p.Status != "" && !p.Status.valid() {
		return nil, "", errs.InvalidArgument("status", "unknown job status %q", p.Status)
	}
	size, err := m.pageSize(p.PageSize)
	if err != nil {
		return nil, "", err
	}
	source := "*"
	if p.SourceID.Valid {
		source = p.SourceID.UUID.String()
	}
	filter := fmt.Sprintf("jobs;source=%s;type=%s;status=%s", source, p.Type, p.Status)
	cur, ok, err := pagetoken.Decode(p.PageToken, filter)
	if err != nil {
		return nil, "", err
	}
	lp := &JobListParams{SourceID: p.SourceID, Type: p.Type, Status: p.Status, Limit: size + 1}
	if ok {
		lp.After = &JobCursor{CreatedAt: cur.CreatedAt, ID: cur.ID}
	}
	jobs, err := m.store.JobList(ctx, lp)
	if err != nil {
		return nil, "", err
	}
	if len(jobs) <= size {
		return jobs, "", nil
	}
	jobs = jobs[:size]
	last := jobs[size-1]
	return jobs, pagetoken.Encode(pagetoken.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}, filter), nil
}

// ListDocumentResults returns a page of the job's per-document results in document id order,
// and the token of the next page, empty on the last one. pageSize works as in ListParams.
func (m *Manager) ListDocumentResults(ctx context.Context, jobID uuid.UUID, pageSize int, pageToken string) ([]*DocumentResult, string, error) {
	size, err := m.pageSize(pageSize)
	if err != nil {
		return nil, "", err
	}
	// The page token's cursor carries the last document id; its time is unused.
	filter := "job_documents;job=" + jobID.String()
	cur, ok, err := pagetoken.Decode(pageToken, filter)
	if err != nil {
		return nil, "", err
	}
	if _, err := m.Get(ctx, jobID); err != nil {
		return nil, "", err
	}
	lp := &JobDocumentsListParams{JobID: jobID, Limit: size + 1}
	if ok {
		lp.After = uuid.NullUUID{UUID: cur.ID, Valid: true}
	}
	results, err := m.store.JobDocumentsList(ctx, lp)
	if err != nil {
		return nil, "", err
	}
	if len(results) <= size {
		return results, "", nil
	}
	results = results[:size]
	next := pagetoken.Encode(pagetoken.Cursor{CreatedAt: time.Unix(0, 0), ID: results[size-1].DocumentID}, filter)
	return results, next, nil
}

func (m *Manager) pageSize(n int) (int, error) {
	switch {
	case n < 0:
		return 0, errs.InvalidArgument("page_size", "must not be negative, got %d", n)
	case n == 0:
		return m.cfg.DefaultPageSize, nil
	default:
		return min(n, m.cfg.MaxPageSize), nil
	}
}

// Start moves a pending job to in_progress and stamps started_at.
func (m *Manager) Start(ctx context.Context, id uuid.UUID) (*Job, error) {
	return m.transition(ctx, id, StatusInProgress, nil)
}

// Complete moves a running job to completed and stamps finished_at. A job whose documents
// partly failed completes too; its error_count says so and Retry picks up the failures.
func (m *Manager) Complete(ctx context.Context, id uuid.UUID) (*Job, error) {
	return m.transition(ctx, id, StatusCompleted, nil)
}

// Fail moves a pending or running job to failed with reason as its error, and stamps
// finished_at.
func (m *Manager) Fail(ctx context.Context, id uuid.UUID, reason string) (*Job, error) {
	if reason == "" {
		return nil, errs.InvalidArgument("reason", "a failed job needs a reason")
	}
	return m.transition(ctx, id, StatusFailed, &reason)
}

// Cancel moves a pending or running job to cancelled and stamps finished_at. Cancelling a
// cancelled job returns it unchanged, without a write.
func (m *Manager) Cancel(ctx context.Context, id uuid.UUID) (*Job, error) {
	return m.transition(ctx, id, StatusCancelled, nil)
}

// transition moves job id to status to with one conditional UPDATE guarded by the state
// machine. If nothing matched, it reads the job to tell a missing job from an illegal move; an
// illegal move writes nothing.
func (m *Manager) transition(ctx context.Context, id uuid.UUID, to Status, reason *string) (*Job, error) {
	from := sourcesOf(to)
	// Statuses only move forward, so the loop runs again only if the job advanced into a legal
	// source between the UPDATE and the read (e.g. Complete racing Start): at most twice more.
	for attempt := 0; ; attempt++ {
		job, err := m.store.JobSetStatus(ctx, &JobSetStatusParams{
			ID: id, From: from, To: to, Error: reason,
			SetStartedAt: to == StatusInProgress, SetFinishedAt: to.Terminal(),
		})
		if err == nil {
			m.notify(ctx, job)
			return job, nil
		}
		if !errors.Is(err, errs.ErrNotFound) {
			return nil, err
		}
		cur, err := m.store.JobGet(ctx, &JobGetParams{ID: id})
		if err != nil {
			return nil, err
		}
		if to == StatusCancelled && cur.Status == StatusCancelled {
			return cur, nil
		}
		if !CanTransition(cur.Status, to) || attempt >= len(allStatuses) {
			return nil, &TransitionError{JobID: id, From: cur.Status, To: to}
		}
	}
}

// DocumentResultUpdate is a worker's report on one document.
type DocumentResultUpdate struct {
	DocumentID uuid.UUID
	Status     DocStatus
	ChunkCount int64
	Attempts   int32
	LastError  string
	ErrorKind  ErrorKind
}

// RecordParams are results for documents of one job, each document at most once.
type RecordParams struct {
	JobID   uuid.UUID
	Results []DocumentResultUpdate
}

// RecordResults writes per-document results of a running job and moves the job's counters by
// the change they make, in one transaction under the job's row lock (JobReport, as a report
// without a batch), so the counters equal a count over the per-document rows however many
// workers report at once. Workers' reports go through a Recorder, which does the same for many
// reports per transaction.
func (m *Manager) RecordResults(ctx context.Context, p RecordParams) (*Job, error) {
	if err := validateResults(p.Results); err != nil {
		return nil, err
	}
	rp := &ReportParams{JobID: p.JobID, Results: p.Results}
	res, err := m.store.JobReport(ctx, &JobReportParams{Reports: []*ReportParams{rp}})
	if err != nil {
		return nil, err
	}
	job, err := verdict(res, 0, rp)
	if err != nil {
		return nil, err
	}
	m.notify(ctx, job)
	return job, nil
}

func validateResults(rs []DocumentResultUpdate) error {
	if len(rs) == 0 {
		return errs.InvalidArgument("results", "no results to record")
	}
	return validateResultEntries(rs)
}

// validateResultEntries checks each result and that no document is reported twice.
func validateResultEntries(rs []DocumentResultUpdate) error {
	seen := make(map[uuid.UUID]bool, len(rs))
	for _, r := range rs {
		switch {
		case r.DocumentID == uuid.Nil:
			return errs.InvalidArgument("document_id", "required")
		case seen[r.DocumentID]:
			return errs.InvalidArgument("document_id", "document %s is reported twice", r.DocumentID)
		case !r.Status.valid():
			return errs.InvalidArgument("status", "unknown document status %q", r.Status)
		case !r.ErrorKind.valid():
			return errs.InvalidArgument("error_kind", "unknown error kind %q", r.ErrorKind)
		case r.ChunkCount < 0:
			return errs.InvalidArgument("chunk_count", "must not be negative, got %d", r.ChunkCount)
		case r.Attempts < 0:
			return errs.InvalidArgument("attempts", "must not be negative, got %d", r.Attempts)
		}
		seen[r.DocumentID] = true
	}
	return nil
}

// Retry creates a new job, through the same path as Create, for the work a finished job left
// undone: the same type, source and timeout, retry_of pointing at the old job, and the old
// job's documents whose result is neither succeeded nor skipped (a crawl job with no documents
// is simply run again). A failed or cancelled job, or a completed one with failed documents,
// may be retried, once: a second retry of the same job is errs.ErrAlreadyExists.
func (m *Manager) Retry(ctx context.Context, id uuid.UUID) (*Job, error) {
	old, err := m.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if reason := retryBlocker(old); reason != "" {
		return nil, errs.FailedPrecondition("cannot retry job %s: %s", id, reason)
	}
	docs := []uuid.UUID{}
	if len(old.DocumentIDs) > 0 {
		// The old job is terminal, so its results can no longer change under us.
		finished, err := m.store.JobDocumentsList(ctx, &JobDocumentsListParams{
			JobID: id, Statuses: []DocStatus{DocSucceeded, DocSkipped},
		})
		if err != nil {
			return nil, err
		}
		done := make(map[uuid.UUID]bool, len(finished))
		for _, r := range finished {
			done[r.DocumentID] = true
		}
		for _, d := range old.DocumentIDs {
			if !done[d] {
				docs = append(docs, d)
			}
		}
		if len(docs) == 0 {
			return nil, errs.FailedPrecondition("cannot retry job %s: every document succeeded or was skipped: nothing to retry", id)
		}
	}
	job, err := m.create(ctx, CreateParams{
		Type: old.Type, SourceID: old.SourceID, DocumentIDs: docs, Timeout: old.Timeout,
	}, uuid.NullUUID{UUID: id, Valid: true})
	if errors.Is(err, errs.ErrAlreadyExists) {
		// jobs_retry_of_key: someone retried this job first (perhaps concurrently).
		return nil, fmt.Errorf("%w: job %s was already retried; retry the newest job of the chain instead", errs.ErrAlreadyExists, id)
	}
	return job, err
}

// liveStatuses are the statuses in which a job takes a queue message id.
var liveStatuses = []Status{StatusPending, StatusInProgress}

// SetQueueMessageID stores the queue's message id on a pending or running job. A finished job
// is a failed precondition.
func (m *Manager) SetQueueMessageID(ctx context.Context, id uuid.UUID, msgID string) (*Job, error) {
	if msgID == "" {
		return nil, errs.InvalidArgument("queue_message_id", "required")
	}
	job, err := m.store.JobSetQueueMessageID(ctx, &JobSetQueueMessageIDParams{ID: id, QueueMessageID: msgID, Statuses: liveStatuses})
	if errors.Is(err, errs.ErrNotFound) {
		cur, err := m.store.JobGet(ctx, &JobGetParams{ID: id})
		if err != nil {
			return nil, err
		}
		return nil, errs.FailedPrecondition("job %s is %s: only a %s or %s job takes a queue message id",
			id, cur.Status, StatusPending, StatusInProgress)
	}
	if err != nil {
		return nil, err
	}
	m.notify(ctx, job)
	return job, nil
}

// notify tells the Notifier about a committed version of a job. Its failure is only logged.
func (m *Manager) notify(ctx context.Context, job *Job) {
	if m.cfg.Notifier == nil {
		return
	}
	// The write is committed; the event should go out even if the caller has gone away.
	ctx = context.WithoutCancel(ctx)
	if err := m.cfg.Notifier.JobChanged(ctx, clone(job)); err != nil {
		m.cfg.Logger.WarnContext(ctx, "notify job change failed",
			"job_id", job.ID, "version", job.Version, "error", err)
	}
}

// Flush waits until the Notifier has been told about every claim and finish answered so far
// (their announcements follow the answers), or ctx ends: a process shutting down calls it
// before it closes Redis.
func (m *Manager) Flush(ctx context.Context) error {
	if err := m.batches.flush(ctx); err != nil {
		return fmt.Errorf("jobs: flush claim and finish notices: %w", err)
	}
	return nil
}

// notifyAll tells the Notifier about several distinct jobs at once, in one call when it is a
// GroupNotifier.
func (m *Manager) notifyAll(ctx context.Context, jobs []*Job) {
	if m.cfg.Notifier == nil || len(jobs) == 0 {
		return
	}
	gn, ok := m.cfg.Notifier.(GroupNotifier)
	if !ok || len(jobs) == 1 {
		for _, j := range jobs {
			m.notify(ctx, j)
		}
		return
	}
	ctx = context.WithoutCancel(ctx)
	copies := make([]*Job, len(jobs))
	for i, j := range jobs {
		copies[i] = clone(j)
	}
	if err := gn.JobsChanged(ctx, copies); err != nil {
		m.cfg.Logger.WarnContext(ctx, "notify job changes failed", "jobs", len(jobs), "error", err)
	}
}

// clone copies a job for an Enqueuer or Notifier, so they cannot change the caller's copy. The
// document ids, which never change and can be many (a copy per job per report group was about
// a sixth of the Recorder's CPU in the watch benchmark), are shared: read them only.
func clone(j *Job) *Job {
	c := *j
	if j.StartedAt != nil {
		t := *j.StartedAt
		c.StartedAt = &t
	}
	if j.FinishedAt != nil {
		t := *j.FinishedAt
		c.FinishedAt = &t
	}
	return &c
}
