-- Record a group of workers' reports in one statement, after job_report_lock.sql locked their
-- jobs. A report is one worker's message about one job: its batch (NULL for none), whose lease
-- it renews (when a quarter of it has run: see renewed), and zero or more per-document results (a report with none is a heartbeat). Each
-- report is judged on its own and gets one row back, in report order:
--   lease_lost   the batch is not running under this worker any more
--   wrong_batch  the batch belongs to another job (batch_job_id says which)
--   not_found    no such job
--   not_running  results for a job that is not in_progress
--   not_member   a result for a document that is not the job's (stray_document_id)
--   ok           recorded
-- Only ok reports write results. A document reported by several ok reports of the group keeps
-- the last one's. Each job with recorded results gets its counters moved by the difference its
-- documents' rows made (processed_count: succeeded + skipped, error_count: failed, chunk_count:
-- chunks of processed documents), so they keep equal to a count over its rows without reading
-- them all, and its version goes up by one.
WITH rep AS (
    SELECT r.job_id, r.batch_id, r.worker, r.lease_seconds, r.idx::int AS idx
    FROM unnest(@job_ids::uuid[], @batch_ids::uuid[], @workers::text[], @lease_seconds::float8[])
         WITH ORDINALITY AS r (job_id, batch_id, worker, lease_seconds, idx)
),
res AS (
    SELECT x.report, x.document_id, x.status, x.chunk_count, x.attempts, x.last_error, x.error_kind,
           x.pos::int AS pos
    FROM unnest(@result_reports::int[], @document_ids::uuid[], @statuses::text[], @chunk_counts::bigint[],
                @attempts::int[], @last_errors::text[], @error_kinds::text[])
         WITH ORDINALITY AS x (report, document_id, status, chunk_count, attempts, last_error, error_kind, pos)
),
-- The batches the reports name, each with the longest lease asked for it.
asked AS (
    SELECT batch_id, worker, max(lease_seconds) AS lease_seconds
    FROM rep WHERE batch_id IS NOT NULL GROUP BY batch_id, worker
),
-- A lease is renewed only when less than three quarters of it is left (so at most every quarter
-- lease, not at every report: a worker reports every 200 ms, and each renewal is a new row
-- version with an entry in every index of job_batches). After any accepted report the lease
-- still has at least three quarters to run, and a worker reports at least every third of it.
-- An expired lease (which a claim or the reconciler may be taking over right now) always goes
-- through this UPDATE, which rechecks the latest row under its lock.
renewed AS (
    UPDATE job_batches b
    SET lease_until = now() + make_interval(secs => a.lease_seconds), updated_at = now()
    FROM asked a
    WHERE b.id = a.batch_id AND b.worker = a.worker AND b.state = 'running'
      AND b.lease_until < now() + make_interval(secs => a.lease_seconds * 0.75)
    RETURNING b.id, b.worker, b.job_id
),
-- The batches held under this worker: renewed, or with more than three quarters of the lease
-- left. Only their worker can change those meanwhile (a claim or the reconciler takes only an
-- expired lease), and it sends its next call after this report's answer.
held AS (
    SELECT id, worker, job_id FROM renewed
    UNION ALL
    SELECT b.id, b.worker, b.job_id
    FROM job_batches b
    JOIN asked a ON b.id = a.batch_id AND b.worker = a.worker
    WHERE b.state = 'running'
      AND b.lease_until >= now() + make_interval(secs => a.lease_seconds * 0.75)
),
judged AS (
    SELECT rep.idx, rep.job_id,
           CASE
               WHEN rep.batch_id IS NOT NULL AND rn.id IS NULL THEN 'lease_lost'
               WHEN rep.batch_id IS NOT NULL AND rn.job_id <> rep.job_id THEN 'wrong_batch'
               WHEN j.id IS NULL THEN 'not_found'
               WHEN j.status <> 'in_progress' AND EXISTS (SELECT 1 FROM res WHERE res.report = rep.idx) THEN 'not_running'
               WHEN stray.document_id IS NOT NULL THEN 'not_member'
               ELSE 'ok'
           END AS outcome,
           rn.job_id AS batch_job_id,
           stray.document_id AS stray_document_id
    FROM rep
    LEFT JOIN held rn ON rn.id = rep.batch_id AND rn.worker = rep.worker
    LEFT JOIN jobs j ON j.id = rep.job_id
    LEFT JOIN LATERAL (
        -- A job's documents are exactly its job_documents rows, all inserted with the job.
        SELECT res.document_id
        FROM res
        WHERE res.report = rep.idx
          AND NOT EXISTS (SELECT 1 FROM job_documents d
                          WHERE d.job_id = rep.job_id AND d.document_id = res.document_id)
        ORDER BY res.pos
        LIMIT 1
    ) stray ON true
),
chosen AS (
    SELECT DISTINCT ON (judged.job_id, res.document_id)
           judged.job_id, res.document_id, res.status, res.chunk_count, res.attempts, res.last_error, res.error_kind
    FROM res
    JOIN judged ON judged.idx = res.report AND judged.outcome = 'ok'
    ORDER BY judged.job_id, res.document_id, res.report DESC
),
-- Every CTE reads the rows as they were before this statement, so old holds the values the
-- results replace.
old AS (
    SELECT c.job_id, c.document_id, d.status, d.chunk_count
    FROM chosen c
    JOIN job_documents d ON d.job_id = c.job_id AND d.document_id = c.document_id
),
written AS (
    UPDATE job_documents d
    SET status = c.status, chunk_count = c.chunk_count, attempts = c.attempts,
        last_error = c.last_error, error_kind = c.error_kind, updated_at = now()
    FROM chosen c
    WHERE d.job_id = c.job_id AND d.document_id = c.document_id
    RETURNING d.job_id
),
delta AS (
    SELECT c.job_id,
           sum((c.status IN ('succeeded', 'skipped'))::int - (o.status IN ('succeeded', 'skipped'))::int)::bigint AS processed,
           sum((c.status = 'failed')::int - (o.status = 'failed')::int)::bigint AS failed,
           sum(CASE WHEN c.status IN ('succeeded', 'skipped') THEN c.chunk_count ELSE 0 END
             - CASE WHEN o.status IN ('succeeded', 'skipped') THEN o.chunk_count ELSE 0 END)::bigint AS chunks
    FROM chosen c
    JOIN old o ON o.job_id = c.job_id AND o.document_id = c.document_id
    GROUP BY c.job_id
),
bumped AS (
    UPDATE jobs j
    SET processed_count = j.processed_count + delta.processed,
        error_count     = j.error_count + delta.failed,
        chunk_count     = j.chunk_count + delta.chunks,
        version         = j.version + 1,
        updated_at      = now()
    FROM delta
    WHERE j.id = delta.job_id
    RETURNING j.id
)
SELECT judged.idx, judged.outcome, judged.batch_job_id, judged.stray_document_id
FROM judged
ORDER BY judged.idx;
