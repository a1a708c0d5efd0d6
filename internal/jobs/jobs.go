// Package jobs is the JobManager: the one owner of job lifecycle. It keeps job state and
// per-document results in Postgres (the source of truth) and enforces the job state machine
// (statemachine.go) on every write.
//
// It knows nothing about gRPC, Redis or the queue library. Those come in through small
// interfaces: Enqueuer hands a new job to the queue, Notifier publishes a changed job to
// watchers, and Store is the storage seam (PgStore is its Postgres implementation).
package jobs

import (
	"time"

	"github.com/google/uuid"
)

// Status is where a job is in its life. See statemachine.go for the allowed moves.
type Status string

const (
	StatusPending    Status = "pending"
	StatusInProgress Status = "in_progress"
	StatusCompleted  Status = "completed"
	StatusFailed     Status = "failed"
	StatusCancelled  Status = "cancelled"
)

// allStatuses lists every status in lifecycle order.
var allStatuses = []Status{StatusPending, StatusInProgress, StatusCompleted, StatusFailed, StatusCancelled}

// Terminal reports whether no transition leaves s.
func (s Status) Terminal() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCancelled
}

func (s Status) valid() bool {
	switch s {
	case StatusPending, StatusInProgress, StatusCompleted, StatusFailed, StatusCancelled:
		return true
	}
	return false
}

// Type says what a job does.
type Type string

const (
	// TypeCrawl fetches a source's pages into documents.
	TypeCrawl Type = "crawl"
	// TypeProcess chunks and embeds documents into the vector store.
	TypeProcess Type = "process"
)

func (t Type) valid() bool { return t == TypeCrawl || t == TypeProcess }

// DocStatus is the outcome of one document within a job.
type DocStatus string

const (
	DocPending   DocStatus = "pending"
	DocSucceeded DocStatus = "succeeded"
	DocFailed    DocStatus = "failed"
	// DocSkipped: nothing to do (e.g. unchanged content); counts as processed.
	DocSkipped DocStatus = "skipped"
)

func (s DocStatus) valid() bool {
	switch s {
	case DocPending, DocSucceeded, DocFailed, DocSkipped:
		return true
	}
	return false
}

// ErrorKind classifies a document's last error. The zero value means no error.
type ErrorKind string

const (
	// KindTransient: worth retrying (network, rate limit, unavailable store).
	KindTransient ErrorKind = "transient"
	// KindPermanent: retrying will not help (invalid content, missing document).
	KindPermanent ErrorKind = "permanent"
)

func (k ErrorKind) valid() bool { return k == "" || k == KindTransient || k == KindPermanent }

// Job is one crawl or processing run as stored in Postgres.
type Job struct {
	ID       uuid.UUID
	Type     Type
	Status   Status
	SourceID uuid.UUID
	// DocumentIDs are the documents the job works on; empty for a crawl job.
	DocumentIDs []uuid.UUID
	// ChunkCount, ProcessedCount and ErrorCount are always derived from the job's per-document
	// results: chunks of succeeded and skipped documents, succeeded + skipped, failed.
	ChunkCount     int64
	ProcessedCount int64
	ErrorCount     int64
	// QueueMessageID is the id the queue gave the job's message; empty until enqueued.
	QueueMessageID string
	// Error says why the job failed; empty otherwise.
	Error string
	// RetryOf is the job this one retries, if any.
	RetryOf uuid.NullUUID
	// Version starts at 1 and grows by exactly 1 on every write, so watchers can order snapshots.
	Version int64
	// Timeout is how long the job may run; stored in whole seconds.
	Timeout    time.Duration
	CreatedAt  time.Time
	UpdatedAt  time.Time
	StartedAt  *time.Time // set when the job enters in_progress
	FinishedAt *time.Time // set when the job reaches a terminal status
	// Crawl is the progress of a crawl job.
	Crawl CrawlProgress
	// ExternalID is the crawl's id at an external crawler (Firecrawl), once started.
	ExternalID string
}

// CrawlProgress counts a crawl job's pages.
type CrawlProgress struct {
	Discovered, Fetched, Failed int64
}

// DocumentResult is the outcome so far of one document of a job.
type DocumentResult struct {
	JobID      uuid.UUID
	DocumentID uuid.UUID
	Status     DocStatus
	ChunkCount int64
	Attempts   int32
	LastError  string
	ErrorKind  ErrorKind
	UpdatedAt  time.Time
}
