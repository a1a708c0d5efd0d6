package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

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
	var r batchRow
	if err := row.Scan(r.dest()...); err != nil {
		return nil, err
	}
	return r.batch(), nil
}

// batchRow receives the column list every batch query returns (scanBatch; rows that carry a
// batch before other columns scan into its dest too).
type batchRow struct {
	b     Batch
	state string
}

func (r *batchRow) dest() []any {
	b := &r.b
	return []any{(*binaryUUID)(&b.ID), (*binaryUUID)(&b.JobID), &b.Seq, (*uuidArray)(&b.DocumentIDs), &r.state, &b.Enqueues, &b.QueueMessageID,
		&b.EnqueuedAt, &b.Claims, &b.Worker, &b.LeaseUntil, &b.CreatedAt, &b.UpdatedAt, &b.FinishedAt}
}

// batch returns the scanned batch; the row is not to be scanned into again.
func (r *batchRow) batch() *Batch {
	b := &r.b
	b.State = BatchState(r.state)
	b.DocumentIDs = nonNil(b.DocumentIDs)
	b.CreatedAt, b.UpdatedAt = b.CreatedAt.UTC(), b.UpdatedAt.UTC()
	b.EnqueuedAt, b.LeaseUntil, b.FinishedAt = utcPtr(b.EnqueuedAt), utcPtr(b.LeaseUntil), utcPtr(b.FinishedAt)
	return b
}

func markEnqueuedArgs(p *BatchMarkEnqueuedParams) pgx.NamedArgs {
	return pgx.NamedArgs{"id": p.ID, "enqueues": p.Enqueues, "queue_message_id": p.QueueMessageID}
}

// dispatchQueries are the statements of the pipelined writes below, on the path of every job:
// created, claimed, finished. Those with arguments have them turned into positional
// ones once, as reportQueries do (pgx.NamedArgs would rewrite each statement's text on every
// call: about 4% of the process's CPU in the dispatch benchmark).
var dispatchQueries = struct {
	keyedWrites string

	jobInsert, jobDocumentsInsert, batchInsert positionalQuery

	batchesGroupSettings, batchesLock, batchesClaimStart, batchesJobsLock, batchesFinishEnd positionalQuery
}{
	keyedWrites: mustQuery("keyed_writes"),

	jobInsert:          mustPositional(queries.jobInsert, "id", "type", "status", "source_id", "document_ids", "retry_of", "timeout_seconds", "queue_message_id"),
	jobDocumentsInsert: mustPositional(queries.jobDocumentsInsert, "job_id", "document_ids"),
	batchInsert:        mustPositional(queries.batchInsert, "id", "job_id", "seq", "document_ids", "enqueues", "queue_message_id"),

	batchesGroupSettings: mustPositional(mustQuery("batches_group_settings"), "async_commit"),
	batchesLock:          mustPositional(mustQuery("batches_lock"), "ids"),
	batchesClaimStart:    mustPositional(mustQuery("batches_claim_start"), "ids", "workers", "lease_seconds"),
	batchesJobsLock:      mustPositional(mustQuery("batches_jobs_lock"), "ids"),
	batchesFinishEnd:     mustPositional(mustQuery("batches_finish_end"), "ids", "workers"),
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

// JobCreate implements Store. Outside a caller's transaction its pipeline starts with
// keyed_writes.sql: its inserts' foreign-key checks then find their rows by key whatever the
// tables held when Postgres made the plans it keeps for them (decision 0029).
func (s *PgStore) JobCreate(ctx context.Context, p *JobCreateParams) (*Job, error) {
	j := &p.Job
	b := &pgx.Batch{}
	lead := 0
	if _, inTx := s.db.(pgx.Tx); !inTx {
		b.Queue(dispatchQueries.keyedWrites)
		lead = 1
	}
	// Ids go in Postgres's binary form: a uuid.UUID goes through its driver.Valuer, which pgx
	// first tries to encode in binary and fails, building an error each time.
	jobID := pgUUID(j.ID)
	dispatchQueries.jobInsert.queue(b, pgx.NamedArgs{
		"id": jobID, "type": string(j.Type), "status": string(j.Status), "source_id": pgUUID(j.SourceID),
		"document_ids": binaryUUIDs(j.DocumentIDs), "retry_of": pgtype.UUID{Bytes: j.RetryOf.UUID, Valid: j.RetryOf.Valid},
		"timeout_seconds": int64(j.Timeout / time.Second), "queue_message_id": j.QueueMessageID,
	})
	if len(j.DocumentIDs) > 0 {
		dispatchQueries.jobDocumentsInsert.queue(b, pgx.NamedArgs{"job_id": jobID, "document_ids": binaryUUIDs(j.DocumentIDs)})
	}
	for _, bt := range p.Batches {
		dispatchQueries.batchInsert.queue(b, pgx.NamedArgs{
			"id": pgUUID(bt.ID), "job_id": pgUUID(bt.JobID), "seq": bt.Seq, "document_ids": binaryUUIDs(bt.DocumentIDs),
			"enqueues": bt.Enqueues, "queue_message_id": bt.QueueMessageID,
		})
	}
	var job *Job
	err := s.pipeline(ctx, b, func(br pgx.BatchResults) error {
		for range lead {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		var err error
		if job, err = scanJob(br.QueryRow()); err != nil {
			return err
		}
		for range b.Len() - 1 - lead {
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

// queueGroupSettings starts the pipeline of a group of claims (asyncCommit) or finishes, or of
// the sources' probe that follows a group of job ends, with the settings of its own transaction
// (batches_group_settings.sql) and returns the number of statements it queued: none on a store
// in the caller's transaction (InTx), whose settings are the caller's.
func (s *PgStore) queueGroupSettings(b *pgx.Batch, asyncCommit bool) int {
	if _, inTx := s.db.(pgx.Tx); inTx {
		return 0
	}
	dispatchQueries.batchesGroupSettings.queue(b, pgx.NamedArgs{"async_commit": asyncCommit})
	return 1
}

// BatchesClaimFinish implements Store: one round trip for any number of claims and finishes, in
// one transaction. Its statements: the settings of the transaction (generic plans; an
// asynchronous commit when it holds claims only), every named batch locked in id order, then
// the claims (claimed, their pending jobs started and read back, in one statement), then the
// finishes' jobs locked in id order, and the batches finished, the jobs left with no open batch
// ended and read back, in one statement. Inside the caller's transaction (InTx) the first is
// left out. The claims' statement locks only pending jobs, the finishes' the jobs of the batches
// they finish, which those batches' claims started: a pending job has no batch to finish, so
// two groups do not wait for each other's job locks in a cycle. (A finish of a batch never
// claimed, which changes nothing, could: Postgres then ends one group with a deadlock error,
// and the grouper tries its calls one by one.)
func (s *PgStore) BatchesClaimFinish(ctx context.Context, claims []*BatchClaimParams, finishes []*BatchFinishParams) ([]BatchClaimed, []BatchFinished, error) {
	claimIDs := make([]uuid.UUID, len(claims))
	workers := make([]string, len(claims))
	leases := make([]float64, len(claims))
	for i, p := range claims {
		claimIDs[i], workers[i], leases[i] = p.ID, p.Worker, p.Lease.Seconds()
	}
	finishIDs := make([]uuid.UUID, len(finishes))
	finishers := make([]string, len(finishes))
	for i, p := range finishes {
		finishIDs[i], finishers[i] = p.ID, p.Worker
	}
	b := &pgx.Batch{}
	skip := s.queueGroupSettings(b, len(finishes) == 0)
	dispatchQueries.batchesLock.queue(b, pgx.NamedArgs{"ids": binaryUUIDs(append(claimIDs[:len(claimIDs):len(claimIDs)], finishIDs...))})
	skip++
	var reads []int // the statements whose rows are read: the claims', then the finishes'
	if len(claims) > 0 {
		dispatchQueries.batchesClaimStart.queue(b, pgx.NamedArgs{"ids": binaryUUIDs(claimIDs), "workers": workers, "lease_seconds": leases})
		reads = append(reads, skip)
		skip = 0
	}
	if len(finishes) > 0 {
		ids := binaryUUIDs(finishIDs)
		dispatchQueries.batchesJobsLock.queue(b, pgx.NamedArgs{"ids": ids})
		dispatchQueries.batchesFinishEnd.queue(b, pgx.NamedArgs{"ids": ids, "workers": finishers})
		reads = append(reads, skip+1)
	}
	groups, err := s.batchGroups(ctx, b, reads)
	if err != nil {
		return nil, nil, err
	}
	claimed := make([]BatchClaimed, len(claims))
	if len(claims) > 0 {
		var said saidOnce
		for i, id := range claimIDs {
			if r := groups[0][id]; r != nil {
				claimed[i] = BatchClaimed{Batch: r.batch, Job: r.job, Started: said.first(r)}
			}
		}
		groups = groups[1:]
	}
	finished := make([]BatchFinished, len(finishes))
	if len(finishes) > 0 {
		var said saidOnce
		for i, id := range finishIDs {
			if r := groups[0][id]; r != nil {
				finished[i] = BatchFinished{Batch: r.batch, Job: r.job, JobEnded: said.first(r)}
			}
		}
	}
	return claimed, finished, nil
}

// batchGroupRow is one row of batches_claim_start.sql or batches_finish_end.sql: a batch the
// group claimed or finished, whether the statement started or ended its job, and the job after.
type batchGroupRow struct {
	batch   *Batch
	changed bool
	job     *Job
}

// saidOnce tells, going through a group's requests in order, which one says that a job
// changed: of several requests for batches of one job, the first whose batch the group claimed
// or finished.
type saidOnce map[uuid.UUID]bool

func (s *saidOnce) first(r *batchGroupRow) bool {
	if !r.changed || (*s)[r.job.ID] {
		return false
	}
	if *s == nil {
		*s = saidOnce{}
	}
	(*s)[r.job.ID] = true
	return true
}

// batchGroups runs the pipeline of a group of claims and finishes. reads says, for each
// statement whose rows matter (the claims', the finishes'), how many statements before it
// (since the previous one read) to skip, whose results do not matter (the settings, the locks).
// It returns each read statement's rows by batch id: the batches it claimed or finished, with
// their jobs.
func (s *PgStore) batchGroups(ctx context.Context, b *pgx.Batch, reads []int) ([]map[uuid.UUID]*batchGroupRow, error) {
	out := make([]map[uuid.UUID]*batchGroupRow, len(reads))
	err := s.pipeline(ctx, b, func(br pgx.BatchResults) error {
		for i, skip := range reads {
			for range skip {
				if _, err := br.Exec(); err != nil {
					return err
				}
			}
			var err error
			if out[i], err = readBatchGroupRows(br); err != nil {
				return err
			}
		}
		return nil
	})
	return out, translate(err, uuid.Nil)
}

// readBatchGroupRows reads the next statement's rows of batches_claim_start.sql or
// batches_finish_end.sql, by batch id.
func readBatchGroupRows(br pgx.BatchResults) (map[uuid.UUID]*batchGroupRow, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[uuid.UUID]*batchGroupRow{}
	for rows.Next() {
		var (
			bat batchRow
			jr  jobRow
			r   batchGroupRow
		)
		if err := rows.Scan(append(append(bat.dest(), &r.changed), jr.dest()...)...); err != nil {
			return nil, err
		}
		r.batch, r.job = bat.batch(), jr.job()
		out[r.batch.ID] = &r
	}
	return out, rows.Err()
}
