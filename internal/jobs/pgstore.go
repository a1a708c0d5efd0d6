package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pipeline-dev/pipeline/internal/errs"
)

// PgStore is the Postgres Store. Its SQL is in sql/; it is the only place in the package that
// sees pgx types or SQLSTATEs.
type PgStore struct {
	db dbtx
}

// dbtx is what both a pool and a transaction offer.
type dbtx interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

var _ Store = (*PgStore)(nil)

// NewPgStore returns a Store on the pool. The pool's search_path must reach the migrated
// jobs and job_documents tables.
func NewPgStore(pool *pgxpool.Pool) *PgStore { return &PgStore{db: pool} }

// InTx implements Store. Called on a store already in a transaction, it nests as a savepoint.
func (s *PgStore) InTx(ctx context.Context, fn func(tx Store) error) error {
	var fnErr error
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		fnErr = fn(&PgStore{db: tx})
		return fnErr
	})
	if err != nil && fnErr == nil {
		return translate(err, uuid.Nil) // begin or commit failed
	}
	return err
}

// JobGet implements Store.
func (s *PgStore) JobGet(ctx context.Context, p *JobGetParams) (*Job, error) {
	q := queries.jobGet
	if p.ForUpdate {
		q = queries.jobGetForUpdate
	}
	job, err := scanJob(s.db.QueryRow(ctx, q, pgx.NamedArgs{"id": p.ID}))
	return job, translate(err, p.ID)
}

// JobList implements Store.
func (s *PgStore) JobList(ctx context.Context, p *JobListParams) ([]*Job, error) {
	args := pgx.NamedArgs{
		"source_id":         p.SourceID,
		"type":              string(p.Type),
		"status":            string(p.Status),
		"has_cursor":        p.After != nil,
		"cursor_created_at": time.Time{},
		"cursor_id":         uuid.Nil,
		"max_rows":          p.Limit,
	}
	if p.After != nil {
		args["cursor_created_at"] = p.After.CreatedAt
		args["cursor_id"] = p.After.ID
	}
	rows, err := s.db.Query(ctx, queries.jobList, args)
	if err != nil {
		return nil, translate(err, uuid.Nil)
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Job, error) { return scanJob(r) })
	return jobs, translate(err, uuid.Nil)
}

// JobSetStatus implements Store.
func (s *PgStore) JobSetStatus(ctx context.Context, p *JobSetStatusParams) (*Job, error) {
	job, err := scanJob(s.db.QueryRow(ctx, queries.jobSetStatus, pgx.NamedArgs{
		"id":              p.ID,
		"from":            statusStrings(p.From),
		"to":              string(p.To),
		"error":           p.Error,
		"set_started_at":  p.SetStartedAt,
		"set_finished_at": p.SetFinishedAt,
	}))
	return job, translate(err, p.ID)
}

// JobSetQueueMessageID implements Store.
func (s *PgStore) JobSetQueueMessageID(ctx context.Context, p *JobSetQueueMessageIDParams) (*Job, error) {
	job, err := scanJob(s.db.QueryRow(ctx, queries.jobSetQueueMessageID, pgx.NamedArgs{
		"id":               p.ID,
		"queue_message_id": p.QueueMessageID,
		"statuses":         statusStrings(p.Statuses),
	}))
	return job, translate(err, p.ID)
}

// JobDocumentsList implements Store.
func (s *PgStore) JobDocumentsList(ctx context.Context, p *JobDocumentsListParams) ([]*DocumentResult, error) {
	statuses := make([]string, len(p.Statuses))
	for i, st := range p.Statuses {
		statuses[i] = string(st)
	}
	rows, err := s.db.Query(ctx, queries.jobDocumentsList, pgx.NamedArgs{
		"job_id":       p.JobID,
		"after":        p.After,
		"statuses":     statuses,
		"document_ids": nonNil(p.DocumentIDs),
		"max_rows":     p.Limit,
	})
	if err != nil {
		return nil, translate(err, p.JobID)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*DocumentResult, error) {
		var d DocumentResult
		var status, kind string
		if err := r.Scan(&d.JobID, &d.DocumentID, &status, &d.ChunkCount, &d.Attempts,
			&d.LastError, &kind, &d.UpdatedAt); err != nil {
			return nil, err
		}
		d.Status, d.ErrorKind, d.UpdatedAt = DocStatus(status), ErrorKind(kind), d.UpdatedAt.UTC()
		return &d, nil
	})
	return out, translate(err, p.JobID)
}

// scanJob reads the column list every job query returns, in sql/ order. UUIDs are read in
// Postgres's binary form (binaryUUID): pgx would format each as text and parse it back.
func scanJob(row pgx.Row) (*Job, error) {
	var r jobRow
	if err := row.Scan(r.dest()...); err != nil {
		return nil, err
	}
	return r.job(), nil
}

// jobRow receives the column list every job query returns, in sql/ order (scanJob; rows that
// carry a job after other columns scan into its dest too).
type jobRow struct {
	j                 Job
	typ, status       string
	timeoutSeconds    int64
	started, finished *time.Time
}

func (r *jobRow) dest() []any {
	j := &r.j
	return []any{(*binaryUUID)(&j.ID), &r.typ, &r.status, (*binaryUUID)(&j.SourceID), (*uuidArray)(&j.DocumentIDs), &j.ChunkCount,
		&j.ProcessedCount, &j.ErrorCount, &j.QueueMessageID, &j.Error, (*binaryNullUUID)(&j.RetryOf), &j.Version,
		&r.timeoutSeconds, &j.CreatedAt, &j.UpdatedAt, &r.started, &r.finished,
		&j.Crawl.Discovered, &j.Crawl.Fetched, &j.Crawl.Failed, &j.ExternalID}
}

// job returns the scanned job; the row is not to be scanned into again.
func (r *jobRow) job() *Job {
	j := &r.j
	j.Type, j.Status = Type(r.typ), Status(r.status)
	j.DocumentIDs = nonNil(j.DocumentIDs)
	j.Timeout = time.Duration(r.timeoutSeconds) * time.Second
	j.CreatedAt, j.UpdatedAt = j.CreatedAt.UTC(), j.UpdatedAt.UTC()
	j.StartedAt, j.FinishedAt = utcPtr(r.started), utcPtr(r.finished)
	return j
}

// translate turns driver errors into the domain errors of package errs. A missing row is a
// missing job, since every single-row query here is keyed by a job id.
func translate(err error, jobID uuid.UUID) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return errs.NotFound("job", jobID.String())
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505": // unique_violation
			return fmt.Errorf("%w: %s", errs.ErrAlreadyExists, pgErr.ConstraintName)
		case pgErr.Code == "23514": // check_violation
			return errs.InvalidArgument(checkField(pgErr.ConstraintName), "rejected by %s", pgErr.ConstraintName)
		case pgErr.Code == "40001", pgErr.Code == "40P01", // serialization_failure, deadlock_detected
			pgErr.Code == "55P03",                // lock_not_available (lock_timeout)
			strings.HasPrefix(pgErr.Code, "08"),  // connection exceptions
			strings.HasPrefix(pgErr.Code, "57P"): // shutdown, cannot connect now
			return fmt.Errorf("%w: postgres: %w", errs.ErrUnavailable, err)
		}
		return fmt.Errorf("jobs store: %w", err)
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return fmt.Errorf("%w: postgres: %w", errs.ErrUnavailable, err)
	}
	return fmt.Errorf("jobs store: %w", err)
}

// checkField names the request field behind a CHECK constraint of the migration.
func checkField(constraint string) string {
	switch constraint {
	case "jobs_type_check":
		return "type"
	case "jobs_status_check", "job_documents_status_check":
		return "status"
	case "job_documents_kind_check":
		return "error_kind"
	}
	return constraint
}

func statusStrings(ss []Status) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

func nonNil(ids []uuid.UUID) []uuid.UUID {
	if ids == nil {
		return []uuid.UUID{}
	}
	return ids
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
