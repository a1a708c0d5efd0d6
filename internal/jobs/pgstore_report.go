package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// reportQueries are the statements of a report transaction (JobReport), their named
// arguments turned into positional ones once: pgx.NamedArgs rewrites a statement's text on
// every call, and the record statement's is long.
var reportQueries = struct{ settings, lock, record, read positionalQuery }{
	settings: mustPositional("SELECT set_config('plan_cache_mode', 'force_generic_plan', true), set_config('enable_seqscan', 'off', true), set_config('lock_timeout', @lock_timeout, true)",
		"lock_timeout"),
	lock: mustPositional(mustQuery("job_report_lock"), "job_ids"),
	record: mustPositional(mustQuery("job_report_record"), "job_ids", "batch_ids", "workers", "lease_seconds",
		"result_reports", "document_ids", "statuses", "chunk_counts", "attempts", "last_errors", "error_kinds"),
	read: mustPositional(mustQuery("job_report_read"), "job_ids", "known"),
}

// positionalQuery is a statement written with named arguments (@name), rewritten with
// positional ones ($1...): names lists the argument of each position.
type positionalQuery struct {
	sql   string
	names []string
}

// mustPositional rewrites sql, whose named arguments must be exactly names, as pgx.NamedArgs
// would on every call.
func mustPositional(sql string, names ...string) positionalQuery {
	probe := make(pgx.NamedArgs, len(names))
	for _, n := range names {
		probe[n] = n
	}
	q, args, err := probe.RewriteQuery(context.Background(), nil, sql, nil)
	if err != nil {
		panic(fmt.Sprintf("jobs: rewrite query: %v", err))
	}
	out := positionalQuery{sql: q, names: make([]string, len(args))}
	for i, a := range args {
		n, ok := a.(string)
		if !ok {
			panic(fmt.Sprintf("jobs: query argument $%d has no name among %v", i+1, names))
		}
		out.names[i] = n
	}
	if len(slices.Compact(slices.Sorted(slices.Values(out.names)))) != len(names) {
		panic(fmt.Sprintf("jobs: query takes %v, not %v", out.names, names))
	}
	return out
}

// queue adds the statement to b with the arguments named in args.
func (q positionalQuery) queue(b *pgx.Batch, args pgx.NamedArgs) {
	values := make([]any, len(q.names))
	for i, n := range q.names {
		values[i] = args[n]
	}
	b.Queue(q.sql, values...)
}

// batchSender is what both a pool and a transaction offer for pipelined statements.
type batchSender interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// JobReport implements Store. Its three statements (lock the jobs, record, read the jobs back)
// go to Postgres in one round trip, as one implicit transaction that commits when the last one
// has run (or inside the caller's transaction, on a store from InTx); it returns only after
// the commit.
func (s *PgStore) JobReport(ctx context.Context, p *JobReportParams) (*JobReportResult, error) {
	sender, ok := s.db.(batchSender)
	if !ok {
		return nil, errors.New("jobs store: the connection cannot send a batch of statements")
	}
	var (
		n        = len(p.Reports)
		jobIDs   = make([]uuid.UUID, n)
		batchIDs = make([]pgtype.UUID, n)
		workers  = make([]string, n)
		leases   = make([]float64, n)

		resReports []int32
		docIDs     []uuid.UUID
		statuses   []string
		chunks     []int64
		attempts   []int32
		lastErrs   []string
		kinds      []string
	)
	for i, r := range p.Reports {
		jobIDs[i], workers[i], leases[i] = r.JobID, r.Worker, r.Lease.Seconds()
		batchIDs[i] = pgtype.UUID{Bytes: r.BatchID.UUID, Valid: r.BatchID.Valid}
		for _, d := range r.Results {
			resReports = append(resReports, int32(i+1)) // WITH ORDINALITY numbers reports from 1
			docIDs = append(docIDs, d.DocumentID)
			statuses = append(statuses, string(d.Status))
			chunks = append(chunks, d.ChunkCount)
			attempts = append(attempts, d.Attempts)
			lastErrs = append(lastErrs, d.LastError)
			kinds = append(kinds, string(d.ErrorKind))
		}
	}
	distinct := slices.Clone(jobIDs)
	slices.SortFunc(distinct, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	distinct = slices.Compact(distinct)

	b := &pgx.Batch{}
	_, inTx := s.db.(pgx.Tx)
	if !inTx {
		// The statements are the same every time but for the sizes of their arrays, and the
		// generic plan serves every size; planning them afresh each time (what Postgres does by
		// default, the arrays being parameters) was a third of the record statement's time.
		// Sequential scans are ruled out, so that a generic plan made while the tables were
		// small cannot scan them as they grow (decision 0029). Local to the transaction (SET
		// LOCAL would be ignored outside an explicit block).
		reportQueries.settings.queue(b, pgx.NamedArgs{"lock_timeout": strconv.FormatInt(p.LockTimeout.Milliseconds(), 10)})
	}
	distinctArg := binaryUUIDs(distinct)
	known := make([]pgtype.UUID, 0, len(distinct))
	for _, id := range distinct {
		if _, ok := p.KnownDocuments[id]; ok {
			known = append(known, pgtype.UUID{Bytes: id, Valid: true})
		}
	}
	reportQueries.lock.queue(b, pgx.NamedArgs{"job_ids": distinctArg})
	reportQueries.record.queue(b, pgx.NamedArgs{
		"job_ids": binaryUUIDs(jobIDs), "batch_ids": batchIDs, "workers": workers, "lease_seconds": leases,
		"result_reports": nonNilSlice(resReports), "document_ids": binaryUUIDs(docIDs), "statuses": nonNilSlice(statuses),
		"chunk_counts": nonNilSlice(chunks), "attempts": nonNilSlice(attempts), "last_errors": nonNilSlice(lastErrs),
		"error_kinds": nonNilSlice(kinds),
	})
	reportQueries.read.queue(b, pgx.NamedArgs{"job_ids": distinctArg, "known": known})

	out := &JobReportResult{Verdicts: make([]ReportVerdict, 0, n), Jobs: make(map[uuid.UUID]*Job, len(distinct))}
	err := readReportBatch(sender.SendBatch(ctx, b), out, !inTx, p.KnownDocuments)
	if err != nil {
		return nil, translate(err, uuid.Nil)
	}
	if len(out.Verdicts) != n {
		return nil, errors.New("jobs store: a report got no verdict")
	}
	return out, nil
}

// readReportBatch reads the statements' results into out and closes br (the error of Close
// includes the commit's); with planning, the batch starts with the set_config. The jobs in
// known get those document ids (the read leaves them out).
func readReportBatch(br pgx.BatchResults, out *JobReportResult, planning bool, known map[uuid.UUID][]uuid.UUID) (err error) {
	defer func() { err = errors.Join(err, br.Close()) }()
	skip := 1 // the lock
	if planning {
		skip = 2
	}
	for range skip {
		if _, err := br.Exec(); err != nil {
			return err
		}
	}
	rows, err := br.Query()
	if err != nil {
		return err
	}
	for rows.Next() {
		var (
			idx     int32
			outcome string
			v       ReportVerdict
		)
		if err := rows.Scan(&idx, &outcome, (*binaryNullUUID)(&v.BatchJobID), (*binaryNullUUID)(&v.StrayDocumentID)); err != nil {
			rows.Close()
			return err
		}
		if int(idx) != len(out.Verdicts)+1 {
			rows.Close()
			return fmt.Errorf("jobs store: verdict %d out of order", idx)
		}
		v.Outcome = ReportOutcome(outcome)
		out.Verdicts = append(out.Verdicts, v)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = br.Query()
	if err != nil {
		return err
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Job, error) { return scanJob(r) })
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if ids, ok := known[j.ID]; ok {
			j.DocumentIDs = ids
		}
		out.Jobs[j.ID] = j
	}
	return nil
}

// binaryUUIDs makes an array argument that pgx encodes straight to Postgres's binary form (never
// nil, so never NULL). A []uuid.UUID goes through each id's driver.Valuer: formatted as text,
// parsed back, and a failed encode plan (an error built with fmt) on the way, per id; that was
// nearly all of the time spent sending a report transaction.
func binaryUUIDs(ids []uuid.UUID) []pgtype.UUID {
	out := make([]pgtype.UUID, len(ids))
	for i, id := range ids {
		out[i] = pgUUID(id)
	}
	return out
}

// pgUUID is id as an argument pgx sends in Postgres's binary form.
func pgUUID(id uuid.UUID) pgtype.UUID { return pgtype.UUID{Bytes: id, Valid: true} }

// uuidArray is a []uuid.UUID that pgx fills element by element through binaryUUID. pgx scans
// a uuid.UUID, an sql.Scanner, by formatting each value as text and parsing it back: for a job
// of 41 documents that was a third of the server's CPU per report in the watch benchmark.
type uuidArray []uuid.UUID

func (a *uuidArray) SetDimensions(dims []pgtype.ArrayDimension) error {
	if dims == nil { // NULL
		*a = nil
		return nil
	}
	if len(dims) == 0 { // an empty array has no dimensions
		*a = []uuid.UUID{}
		return nil
	}
	n := 1
	for _, d := range dims {
		n *= int(d.Length)
	}
	*a = make([]uuid.UUID, n)
	return nil
}

func (a *uuidArray) ScanIndex(i int) any { return (*binaryUUID)(&(*a)[i]) }

func (*uuidArray) ScanIndexType() any { return new(binaryUUID) }

// binaryUUID takes a UUID as pgx decoded it, without a text form in between.
type binaryUUID uuid.UUID

func (u *binaryUUID) ScanUUID(v pgtype.UUID) error {
	if !v.Valid {
		return errors.New("jobs store: NULL in a uuid array")
	}
	*u = v.Bytes
	return nil
}

// binaryNullUUID takes a nullable UUID as pgx decoded it (a uuid.NullUUID, an sql.Scanner,
// would go through text).
type binaryNullUUID uuid.NullUUID

func (u *binaryNullUUID) ScanUUID(v pgtype.UUID) error {
	*u = binaryNullUUID{UUID: v.Bytes, Valid: v.Valid}
	return nil
}

// nonNilSlice makes an empty array argument of a nil slice (pgx sends nil as NULL).
func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
