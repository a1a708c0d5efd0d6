package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

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
	return s.batch(ctx, queries.batchMarkEnqueued, markEnqueuedArgs(p))
}

// BatchRenew implements Store.
func (s *PgStore) BatchRenew(ctx context.Context, p *BatchRenewParams) (*Batch, error) {
	return s.batch(ctx, queries.batchRenew, pgx.NamedArgs{
		"id": p.ID, "worker": p.Worker, "lease_seconds": p.Lease.Seconds(),
	})
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
	err := row.Scan((*binaryUUID)(&b.ID), (*binaryUUID)(&b.JobID), &b.Seq, (*uuidArray)(&b.DocumentIDs), &state, &b.Enqueues, &b.QueueMessageID,
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

func markEnqueuedArgs(p *BatchMarkEnqueuedParams) pgx.NamedArgs {
	return pgx.NamedArgs{"id": p.ID, "enqueues": p.Enqueues, "queue_message_id": p.QueueMessageID}
}

// dispatchQueries are the statements only the pipelined writes below use.
var dispatchQueries = struct {
	batchAsyncCommit, batchesLock, batchesClaim, batchesStartJobs     string
	batchesJobsLock, batchesFinish, batchesFinishJobs, batchesJobsGet string
}{
	batchAsyncCommit:  mustQuery("batch_async_commit"),
	batchesLock:       mustQuery("batches_lock"),
	batchesClaim:      mustQuery("batches_claim"),
	batchesStartJobs:  mustQuery("batches_start_jobs"),
	batchesJobsLock:   mustQuery("batches_jobs_lock"),
	batchesFinish:     mustQuery("batches_finish"),
	batchesFinishJobs: mustQuery("batches_finish_jobs"),
	batchesJobsGet:    mustQuery("batches_jobs_get"),
}

// pipeline sends the queued statements in one round trip and hands their results to read, in
// order. Postgres runs them as one implicit transaction (inside the store's own, in InTx): all
// of them or none, each statement seeing the ones before it.
func (s *PgStore) pipeline(ctx context.Context, b *pgx.Batch, read func(pgx.BatchResults) error) error {
	br := s.db.(batchSender).SendBatch(ctx, b)
	err := read(br)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// JobCreate implements Store.
func (s *PgStore) JobCreate(ctx context.Context, p *JobCreateParams) (*Job, error) {
	j := &p.Job
	b := &pgx.Batch{}
	b.Queue(queries.jobInsert, pgx.NamedArgs{
		"id": j.ID, "type": string(j.Type), "status": string(j.Status), "source_id": j.SourceID,
		"document_ids": nonNil(j.DocumentIDs), "retry_of": j.RetryOf, "timeout_seconds": int64(j.Timeout / time.Second),
	})
	if len(j.DocumentIDs) > 0 {
		b.Queue(queries.jobDocumentsInsert, pgx.NamedArgs{"job_id": j.ID, "document_ids": j.DocumentIDs})
	}
	for _, bt := range p.Batches {
		b.Queue(queries.batchInsert, pgx.NamedArgs{
			"id": bt.ID, "job_id": bt.JobID, "seq": bt.Seq, "document_ids": nonNil(bt.DocumentIDs),
		})
	}
	var job *Job
	err := s.pipeline(ctx, b, func(br pgx.BatchResults) error {
		var err error
		if job, err = scanJob(br.QueryRow()); err != nil {
			return err
		}
		for range b.Len() - 1 {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		return nil
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" && pgErr.ConstraintName == "jobs_source_id_fkey" {
		return nil, errs.NotFound("source", j.SourceID.String())
	}
	return job, translate(err, j.ID)
}

// BatchesMarkEnqueued implements Store.
func (s *PgStore) BatchesMarkEnqueued(ctx context.Context, p *BatchesMarkEnqueuedParams) (*Job, error) {
	b := &pgx.Batch{}
	lead := s.queueAsyncCommit(b)
	for i := range p.Batches {
		b.Queue(queries.batchMarkEnqueued, markEnqueuedArgs(&p.Batches[i]))
	}
	b.Queue(queries.jobSetQueueMessageID, pgx.NamedArgs{
		"id": p.Job.ID, "queue_message_id": p.Job.QueueMessageID, "statuses": statusStrings(p.Job.Statuses),
	})
	var job *Job
	err := s.pipeline(ctx, b, func(br pgx.BatchResults) error {
		for range len(p.Batches) + lead {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		var err error
		job, err = scanJob(br.QueryRow())
		return err
	})
	return job, translate(err, p.Job.ID)
}

// queueAsyncCommit lets the pipeline's own transaction commit asynchronously and returns the
// number of statements it queued: none on a store in the caller's transaction (InTx), whose
// commit is the caller's to decide.
func (s *PgStore) queueAsyncCommit(b *pgx.Batch) int {
	if _, inTx := s.db.(pgx.Tx); inTx {
		return 0
	}
	b.Queue(dispatchQueries.batchAsyncCommit)
	return 1
}

// BatchesClaimStart implements Store: one round trip of four statements (five outside a
// transaction: the first lets it commit asynchronously) for any number of claims.
func (s *PgStore) BatchesClaimStart(ctx context.Context, ps []*BatchClaimParams) ([]BatchClaimed, error) {
	ids := make([]uuid.UUID, len(ps))
	workers := make([]string, len(ps))
	leases := make([]float64, len(ps))
	for i, p := range ps {
		ids[i], workers[i], leases[i] = p.ID, p.Worker, p.Lease.Seconds()
	}
	idArg := binaryUUIDs(ids)
	b := &pgx.Batch{}
	lead := s.queueAsyncCommit(b)
	b.Queue(dispatchQueries.batchesLock, pgx.NamedArgs{"ids": idArg})
	b.Queue(dispatchQueries.batchesClaim, pgx.NamedArgs{"ids": idArg, "workers": workers, "lease_seconds": leases})
	b.Queue(dispatchQueries.batchesStartJobs, pgx.NamedArgs{"ids": idArg, "workers": workers})
	b.Queue(dispatchQueries.batchesJobsGet, pgx.NamedArgs{"ids": idArg})
	g, err := s.batchGroup(ctx, b, lead, 1)
	if err != nil {
		return nil, err
	}
	out := make([]BatchClaimed, len(ps))
	for i, id := range ids {
		out[i] = BatchClaimed{Batch: g.batches[id], Job: g.jobOf(id)}
		if out[i].Batch != nil && g.changed[out[i].Batch.JobID] {
			out[i].Started = true
			delete(g.changed, out[i].Batch.JobID) // one request per job says so
		}
	}
	return out, nil
}

// BatchesFinishJob implements Store: one round trip of five statements for any number of
// finishes.
func (s *PgStore) BatchesFinishJob(ctx context.Context, ps []*BatchFinishParams) ([]BatchFinished, error) {
	ids := make([]uuid.UUID, len(ps))
	workers := make([]string, len(ps))
	for i, p := range ps {
		ids[i], workers[i] = p.ID, p.Worker
	}
	idArgs := pgx.NamedArgs{"ids": binaryUUIDs(ids)}
	b := &pgx.Batch{}
	b.Queue(dispatchQueries.batchesLock, idArgs)
	b.Queue(dispatchQueries.batchesJobsLock, idArgs)
	b.Queue(dispatchQueries.batchesFinish, pgx.NamedArgs{"ids": idArgs["ids"], "workers": workers})
	b.Queue(dispatchQueries.batchesFinishJobs, idArgs)
	b.Queue(dispatchQueries.batchesJobsGet, idArgs)
	g, err := s.batchGroup(ctx, b, 0, 2)
	if err != nil {
		return nil, err
	}
	out := make([]BatchFinished, len(ps))
	for i, id := range ids {
		out[i] = BatchFinished{Batch: g.batches[id], Job: g.jobOf(id)}
		if out[i].Batch != nil && g.changed[out[i].Batch.JobID] {
			out[i].JobEnded = true
			delete(g.changed, out[i].Batch.JobID)
		}
	}
	return out, nil
}

// batchGroupResult is what the statements of a group of claims or finishes returned.
type batchGroupResult struct {
	jobOfBatch map[uuid.UUID]uuid.UUID // every requested batch that exists -> its job
	batches    map[uuid.UUID]*Batch    // the batches claimed or finished, by id
	changed    map[uuid.UUID]bool      // the jobs started or ended
	jobs       map[uuid.UUID]*Job      // the jobs of the requested batches, afterwards
}

func (g *batchGroupResult) jobOf(batchID uuid.UUID) *Job {
	jobID, ok := g.jobOfBatch[batchID]
	if !ok {
		return nil
	}
	return g.jobs[jobID]
}

// batchGroup runs the pipeline of a group of claims or finishes: lead statements whose results
// do not matter, then locks statements of which the first is batches_lock.sql (batch -> job)
// and the others return nothing of interest, the batches' write returning the batches it
// changed, the jobs' write returning the ids of the jobs it changed, and the read of the jobs.
func (s *PgStore) batchGroup(ctx context.Context, b *pgx.Batch, lead, locks int) (*batchGroupResult, error) {
	g := &batchGroupResult{
		jobOfBatch: map[uuid.UUID]uuid.UUID{}, batches: map[uuid.UUID]*Batch{},
		changed: map[uuid.UUID]bool{}, jobs: map[uuid.UUID]*Job{},
	}
	err := s.pipeline(ctx, b, func(br pgx.BatchResults) error {
		for range lead {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		var batchID, jobID uuid.UUID
		rows, err := br.Query()
		if err != nil {
			return err
		}
		if _, err := pgx.ForEachRow(rows, []any{(*binaryUUID)(&batchID), (*binaryUUID)(&jobID)}, func() error {
			g.jobOfBatch[batchID] = jobID
			return nil
		}); err != nil {
			return err
		}
		for range locks - 1 {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		if rows, err = br.Query(); err != nil {
			return err
		}
		batches, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Batch, error) { return scanBatch(row) })
		if err != nil {
			return err
		}
		for _, bt := range batches {
			g.batches[bt.ID] = bt
		}
		if rows, err = br.Query(); err != nil {
			return err
		}
		if _, err := pgx.ForEachRow(rows, []any{(*binaryUUID)(&jobID)}, func() error {
			g.changed[jobID] = true
			return nil
		}); err != nil {
			return err
		}
		if rows, err = br.Query(); err != nil {
			return err
		}
		jobs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Job, error) { return scanJob(row) })
		for _, j := range jobs {
			g.jobs[j.ID] = j
		}
		return err
	})
	return g, translate(err, uuid.Nil)
}
