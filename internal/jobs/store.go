package jobs

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Store is the storage seam of the Manager. Each method is one statement (or one small fixed
// group) against the jobs and job_documents tables; the Manager composes them, and InTx makes a
// composition atomic. Implementations translate driver errors once: a missing row becomes an
// errs.NotFoundError for "job", a missing source an errs.NotFoundError for "source".
//
// PgStore is the Postgres implementation.
type Store interface {
	// InTx runs fn with a Store bound to one transaction, committed if fn returns nil and
	// rolled back otherwise.
	InTx(ctx context.Context, fn func(tx Store) error) error

	// JobGet reads one job; with ForUpdate it locks the row until the transaction ends.
	JobGet(ctx context.Context, p *JobGetParams) (*Job, error)
	// JobGetStatus reads one job's status alone; errs.ErrNotFound when there is no such job.
	JobGetStatus(ctx context.Context, id uuid.UUID) (Status, error)
	// JobList reads jobs ordered by (created_at DESC, id DESC).
	JobList(ctx context.Context, p *JobListParams) ([]*Job, error)
	// JobsSourcesActiveProcess tells which of the sources have a pending or in-progress
	// processing job (only those are in the map).
	JobsSourcesActiveProcess(ctx context.Context, sourceIDs []uuid.UUID) (map[uuid.UUID]bool, error)
	// JobSetStatus moves the job to To if its status is one of From, bumping version. It returns
	// errs.ErrNotFound when no job with that id has one of those statuses.
	JobSetStatus(ctx context.Context, p *JobSetStatusParams) (*Job, error)
	// JobSetQueueMessageID stores the queue's message id if the job's status is one of
	// Statuses, bumping version. errs.ErrNotFound as for JobSetStatus.
	JobSetQueueMessageID(ctx context.Context, p *JobSetQueueMessageIDParams) (*Job, error)

	// JobListTimedOut reads up to max active jobs older than their timeout.
	JobListTimedOut(ctx context.Context, max int) ([]*Job, error)
	// JobSetCrawlProgress stores a running crawl job's progress; errs.ErrNotFound when the job is
	// not a running crawl.
	JobSetCrawlProgress(ctx context.Context, p *JobSetCrawlProgressParams) (*Job, error)
	// BatchBacklog counts batches queued or running.
	BatchBacklog(ctx context.Context) (int, error)
	// JobCountActiveCrawls counts crawl jobs pending or running.
	JobCountActiveCrawls(ctx context.Context) (int, error)
	// JobGetByExternalID reads the newest crawl job with that external crawler id.
	JobGetByExternalID(ctx context.Context, externalID string) (*Job, error)
	// JobListStaleCrawls reads up to max active crawl jobs not updated since before.
	JobListStaleCrawls(ctx context.Context, before time.Time, max int) ([]*Job, error)
	// JobListUnfinished reads up to max active jobs that have batches, all done.
	JobListUnfinished(ctx context.Context, max int) ([]*Job, error)

	// BatchGet reads one batch; errs.NotFound("batch") when absent.
	BatchGet(ctx context.Context, p *BatchGetParams) (*Batch, error)
	// BatchList reads a job's batches in order.
	BatchList(ctx context.Context, p *BatchListParams) ([]*Batch, error)
	// BatchMarkEnqueued records message number Enqueues of a still-queued batch; errs.ErrNotFound
	// when the batch is not queued or a later message was recorded already.
	BatchMarkEnqueued(ctx context.Context, p *BatchMarkEnqueuedParams) (*Batch, error)
	// BatchRenew extends the lease of the worker's running batch; errs.ErrNotFound when it does
	// not hold it.
	BatchRenew(ctx context.Context, p *BatchRenewParams) (*Batch, error)
	// BatchRelease puts the worker's running batch back to queued; errs.ErrNotFound when it does
	// not hold it.
	BatchRelease(ctx context.Context, p *BatchFinishParams) (*Batch, error)
	// BatchOpenCount counts a job's batches that are not done.
	BatchOpenCount(ctx context.Context, p *BatchOpenCountParams) (int, error)
	// BatchReleaseExpired puts running batches of active jobs with expired leases back to queued.
	BatchReleaseExpired(ctx context.Context) ([]*Batch, error)
	// BatchListQueued reads queued batches of active jobs last changed (enqueued, created or
	// handed back) before Before.
	BatchListQueued(ctx context.Context, p *BatchListQueuedParams) ([]*Batch, error)

	// The dispatch path's writes: each is one transaction sent in one round trip (statements
	// pipelined), each statement's text one of sql/ (job_insert, batch_claim, ...).

	// JobCreate inserts a job at version 1, a pending result per document and the given queued
	// batches, atomically, each batch with its first message already named when it has one
	// (BatchInsertParams.Enqueues).
	JobCreate(ctx context.Context, p *JobCreateParams) (*Job, error)
	// BatchesClaimFinish runs claims and finishes of distinct batches in one transaction.
	// Each claim gives its batch, when it is queued (or running with an expired lease) and its
	// job active, to its requester, and starts the job if it is pending. Each finish marks its
	// requester's running batch done and, under the jobs' row locks, ends every job (COMPLETED,
	// or FAILED when no document could be processed) that is running and has no open batch any
	// more. Results are in the order of the requests; a claim's Batch is nil when that batch was
	// not claimable, a finish's when its requester did not hold the batch. A transaction of
	// claims only may commit asynchronously: a crash of Postgres may forget the claims (a
	// worker's next report, refused, stops it, and the reconciler enqueues the batch again).
	BatchesClaimFinish(ctx context.Context, claims []*BatchClaimParams, finishes []*BatchFinishParams) ([]BatchClaimed, []BatchFinished, error)

	// JobDocumentsList reads a job's results ordered by document_id.
	JobDocumentsList(ctx context.Context, p *JobDocumentsListParams) ([]*DocumentResult, error)

	// JobReport records workers' reports in one transaction: it renews their batches' leases,
	// judges each report on its own (a refused report writes no results), writes the results
	// of the accepted ones and moves their jobs' counters by the change, bumping each such
	// job's version once. It returns a verdict per report, in order, and every named job that
	// exists as the transaction left it.
	JobReport(ctx context.Context, p *JobReportParams) (*JobReportResult, error)
}

// JobReportParams are reports to record together, in arrival order.
type JobReportParams struct {
	Reports []*ReportParams
	// LockTimeout bounds the wait for the jobs' row locks (0: no limit). A job row
	// held by a long transaction then fails its group quickly instead of stalling every
	// worker's reports behind it.
	LockTimeout time.Duration
	// KnownDocuments are the document ids of jobs the caller already has (a job's documents
	// never change): JobReport does not read them again for these jobs and gives their Jobs
	// these slices, shared, not copies.
	KnownDocuments map[uuid.UUID][]uuid.UUID
}

// JobReportResult is what JobReport did.
type JobReportResult struct {
	// Verdicts has one entry per report, in order.
	Verdicts []ReportVerdict
	// Jobs holds each named job that exists, after the transaction.
	Jobs map[uuid.UUID]*Job
}

// ReportVerdict is the store's judgement of one report.
type ReportVerdict struct {
	Outcome ReportOutcome
	// BatchJobID is the job the report's batch belongs to, when the batch's lease was renewed.
	BatchJobID uuid.NullUUID
	// StrayDocumentID is the report's first document that is not the job's (ReportNotMember).
	StrayDocumentID uuid.NullUUID
}

// JobInsertParams are the columns of a new job; the rest take their defaults.
type JobInsertParams struct {
	ID          uuid.UUID
	Type        Type
	Status      Status
	SourceID    uuid.UUID
	DocumentIDs []uuid.UUID
	RetryOf     uuid.NullUUID
	Timeout     time.Duration // whole seconds
	// QueueMessageID names the first message of the job's first batch, when it is sent right
	// after the commit.
	QueueMessageID string
}

// JobGetParams selects one job.
type JobGetParams struct {
	ID        uuid.UUID
	ForUpdate bool
}

// JobListParams filters and positions a page of jobs. Zero filter values match everything.
type JobListParams struct {
	SourceID uuid.NullUUID
	Type     Type
	Status   Status
	// After, when set, starts the page strictly after this (created_at, id) position.
	After *JobCursor
	Limit int
}

// JobCursor is a position in the (created_at DESC, id DESC) order.
type JobCursor struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

// JobSetStatusParams is one conditional status change.
type JobSetStatusParams struct {
	ID   uuid.UUID
	From []Status
	To   Status
	// Error, when non-nil, replaces the job's error text.
	Error *string
	// SetStartedAt and SetFinishedAt stamp started_at / finished_at with the current time.
	SetStartedAt  bool
	SetFinishedAt bool
}

// JobSetQueueMessageIDParams stores a queue message id on a job in one of Statuses.
type JobSetQueueMessageIDParams struct {
	ID             uuid.UUID
	QueueMessageID string
	Statuses       []Status
}

// JobDocumentsListParams selects results of one job.
type JobDocumentsListParams struct {
	JobID uuid.UUID
	// After, when valid, starts strictly after this document id.
	After uuid.NullUUID
	// Statuses, when not empty, keeps only results in one of them.
	Statuses []DocStatus
	// DocumentIDs, when not empty, keeps only these documents' results.
	DocumentIDs []uuid.UUID
	// Limit caps the rows returned; zero means no limit.
	Limit int
}

// BatchInsertParams are a new batch.
type BatchInsertParams struct {
	ID          uuid.UUID
	JobID       uuid.UUID
	Seq         int
	DocumentIDs []uuid.UUID
	// Enqueues is 1 when the batch's first message is sent right after the commit, named
	// QueueMessageID: the batch is stored as enqueued then (decision 0036). 0: never enqueued.
	Enqueues       int
	QueueMessageID string
}

// BatchGetParams select one batch.
type BatchGetParams struct{ ID uuid.UUID }

// BatchListParams select a job's batches.
type BatchListParams struct{ JobID uuid.UUID }

// BatchMarkEnqueuedParams record a message sent for a batch.
type BatchMarkEnqueuedParams struct {
	ID             uuid.UUID
	Enqueues       int
	QueueMessageID string
}

// BatchClaimParams claim a batch for a worker.
type BatchClaimParams struct {
	ID     uuid.UUID
	Worker string
	Lease  time.Duration
}

// BatchRenewParams extend a worker's lease.
type BatchRenewParams struct {
	ID     uuid.UUID
	Worker string
	Lease  time.Duration
}

// BatchFinishParams mark a worker's batch done.
type BatchFinishParams struct {
	ID     uuid.UUID
	Worker string
}

// BatchOpenCountParams select the job whose open batches to count.
type BatchOpenCountParams struct{ JobID uuid.UUID }

// BatchListQueuedParams select queued batches that may have lost their message.
type BatchListQueuedParams struct {
	Before time.Time
	Max    int
}

// JobCreateParams are a new job and its batches (none for a crawl job).
type JobCreateParams struct {
	Job     JobInsertParams
	Batches []BatchInsertParams
}

// BatchClaimed is what BatchesClaimFinish did for one claim.
type BatchClaimed struct {
	// Batch is the claimed batch; nil when it was not claimable.
	Batch *Batch
	// Job is the batch's job after the claim; nil when the batch was not claimed.
	Job *Job
	// Started says the claim moved the job from pending to in_progress (of several requests for
	// batches of one job, only the first in request order whose batch was claimed says so).
	Started bool
}

// BatchFinished is what BatchesClaimFinish did for one finish.
type BatchFinished struct {
	// Batch is the finished batch; nil when the worker did not hold it.
	Batch *Batch
	// Job is the batch's job afterwards; nil when the batch was not finished.
	Job *Job
	// JobEnded says this request ended the job (of several requests for batches of one job,
	// only the first in request order whose batch was finished says so).
	JobEnded bool
}

// JobSetCrawlProgressParams are a crawl job's progress.
type JobSetCrawlProgressParams struct {
	ID         uuid.UUID
	Progress   CrawlProgress
	ExternalID string // "" keeps the stored one
}
