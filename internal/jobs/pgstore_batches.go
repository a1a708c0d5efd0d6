package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/pipeline-dev/pipeline/internal/errs"
)

// JobListTimedOut implements Store.
func (s *PgStore) JobListTimedOut(ctx context.Context, max int) ([]*Job, error) {
	return s.jobs(ctx, queries.jobListTimedOut, pgx.NamedArgs{"max": max})
}

// JobSetCrawlProgress implements Store.
func (s *PgStore) JobSetCrawlProgress(ctx context.Context, p *JobSetCrawlProgressParams) (*Job, error) {
	job, err := scanJob(s.db.QueryRow(ctx, queries.jobSetCrawlProgress, pgx.NamedArgs{
		"id": p.ID, "discovered": p.Progress.Discovered, "fetched": p.Progress.Fetched,
		"failed": p.Progress.Failed, "external_id": p.ExternalID,
	}))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errs.ErrNotFound
	}
	return job, translate(err, p.ID)
}

// BatchBacklog implements Store.
func (s *PgStore) BatchBacklog(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, queries.batchBacklog).Scan(&n)
	return n, translate(err, uuid.Nil)
}

// JobCountActiveCrawls implements Store.
func (s *PgStore) JobCountActiveCrawls(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, queries.jobCountActiveCrawls).Scan(&n)
	return n, translate(err, uuid.Nil)
}

// JobGetByExternalID implements Store.
func (s *PgStore) JobGetByExternalID(ctx context.Context, externalID string) (*Job, error) {
	job, err := scanJob(s.db.QueryRow(ctx, queries.jobGetByExternalID, pgx.NamedArgs{"external_id": externalID}))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errs.NotFound("crawl job with external id", externalID)
	}
	return job, translate(err, uuid.Nil)
}

// JobListStaleCrawls implements Store.
func (s *PgStore) JobListStaleCrawls(ctx context.Context, before time.Time, max int) ([]*Job, error) {
	return s.jobs(ctx, queries.jobListStaleCrawls, pgx.NamedArgs{"before": before, "max": max})
}

// JobListUnfinished implements Store.
func (s *PgStore) JobListUnfinished(ctx context.Context, max int) ([]*Job, error) {
	return s.jobs(ctx, queries.jobListUnfinished, pgx.NamedArgs{"max": max})
}

func (s *PgStore) jobs(ctx context.Context, q string, args pgx.NamedArgs) ([]*Job, error) {
	rows, err := s.db.Query(ctx, q, args)
	if err != nil {
		return nil, translate(err, uuid.Nil)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Job, error) { return scanJob(row) })
	return out, translate(err, uuid.Nil)
}

// BatchInsert implements Store.
func (s *PgStore) BatchInsert(ctx context.Context, p *BatchInsertParams) error {
	_, err := s.db.Exec(ctx, queries.batchInsert, pgx.NamedArgs{
		"id": p.ID, "job_id": p.JobID, "seq": p.Seq, "document_ids": nonNil(p.DocumentIDs),
	})
	return translate(err, p.JobID)
}

// BatchGet implements Store.
func (s *PgStore) BatchGet(ctx context.Context, p *BatchGetParams) (*Batch, error) {
	b, err := scanBatch(s.db.QueryRow(ctx, queries.batchGet, pgx.NamedArgs{"id": p.ID}))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errs.NotFound("batch", p.ID.String())
	}
	return b, translate(err, p.ID)
}

// BatchList implements Store.
func (s *PgStore) BatchList(ctx context.Context, p *BatchListParams) ([]*Batch, error) {
	return s.batches(ctx, queries.batchList, pgx.NamedArgs{"job_id": p.JobID})
}

// BatchMarkEnqueued implements Store.
func (s *PgStore) BatchMarkEnqueued(ctx context.Context, p *BatchMarkEnqueuedParams) (*Batch, error) {
	return s.batch(ctx, queries.batchMarkEnqueued, pgx.NamedArgs{
		"id": p.ID, "enqueues": p.Enqueues, "queue_message_id": p.QueueMessageID,
	})
}

// BatchClaim implements Store.
func (s *PgStore) BatchClaim(ctx context.Context, p *BatchClaimParams) (*Batch, error) {
	return s.batch(ctx, queries.batchClaim, pgx.NamedArgs{
		"id": p.ID, "worker": p.Worker, "lease_seconds": p.Lease.Seconds(),
	})
}

// BatchRenew implements Store.
func (s *PgStore) BatchRenew(ctx context.Context, p *BatchRenewParams) (*Batch, error) {
	return s.batch(ctx, queries.batchRenew, pgx.NamedArgs{
		"id": p.ID, "worker": p.Worker, "lease_seconds": p.Lease.Seconds(),
	})
}

// BatchFinish implements Store.
func (s *PgStore) BatchFinish(ctx context.Context, p *BatchFinishParams) (*Batch, error) {
	return s.batch(ctx, queries.batchFinish, pgx.NamedArgs{"id": p.ID, "worker": p.Worker})
}

// BatchRelease implements Store.
func (s *PgStore) BatchRelease(ctx context.Context, p *BatchFinishParams) (*Batch, error) {
	return s.batch(ctx, queries.batchRelease, pgx.NamedArgs{"id": p.ID, "worker": p.Worker})
}

// BatchOpenCount implements Store.
func (s *PgStore) BatchOpenCount(ctx context.Context, p *BatchOpenCountParams) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, queries.batchOpenCount, pgx.NamedArgs{"job_id": p.JobID}).Scan(&n)
	return n, translate(err, p.JobID)
}

// BatchReleaseExpired implements Store.
func (s *PgStore) BatchReleaseExpired(ctx context.Context) ([]*Batch, error) {
	return s.batches(ctx, queries.batchReleaseExpired, pgx.NamedArgs{})
}

// BatchListQueued implements Store.
func (s *PgStore) BatchListQueued(ctx context.Context, p *BatchListQueuedParams) ([]*Batch, error) {
	return s.batches(ctx, queries.batchListQueued, pgx.NamedArgs{"before": p.Before, "max": p.Max})
}

// batch runs a single-row batch query; no row is errs.ErrNotFound (the caller says why).
func (s *PgStore) batch(ctx context.Context, q string, args pgx.NamedArgs) (*Batch, error) {
	b, err := scanBatch(s.db.QueryRow(ctx, q, args))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errs.ErrNotFound
	}
	return b, translate(err, uuid.Nil)
}

func (s *PgStore) batches(ctx context.Context, q string, args pgx.NamedArgs) ([]*Batch, error) {
	rows, err := s.db.Query(ctx, q, args)
	if err != nil {
		return nil, translate(err, uuid.Nil)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Batch, error) { return scanBatch(row) })
	return out, translate(err, uuid.Nil)
}

// scanBatch reads the column list every batch query returns, in sql/ order.
func scanBatch(row pgx.Row) (*Batch, error) {
	var (
		b     Batch
		state string
	)
	err := row.Scan(&b.ID, &b.JobID, &b.Seq, &b.DocumentIDs, &state, &b.Enqueues, &b.QueueMessageID,
		&b.EnqueuedAt, &b.Claims, &b.Worker, &b.LeaseUntil, &b.CreatedAt, &b.UpdatedAt, &b.FinishedAt)
	if err != nil {
		return nil, err
	}
	b.State = BatchState(state)
	b.DocumentIDs = nonNil(b.DocumentIDs)
	b.CreatedAt, b.UpdatedAt = b.CreatedAt.UTC(), b.UpdatedAt.UTC()
	b.EnqueuedAt, b.LeaseUntil, b.FinishedAt = utcPtr(b.EnqueuedAt), utcPtr(b.LeaseUntil), utcPtr(b.FinishedAt)
	return &b, nil
}
