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
-- Each result with the row it replaces; none when the document is not the job's (a job's
-- documents are exactly its job_documents rows, all inserted with the job). Every CTE reads
-- the rows as they were before this statement. (Rows are looked up one by one, each by its key,
-- with LATERAL ... LIMIT 1: the generic plan would otherwise hash the whole table when it is
-- small, and a busy one's dead row versions with it.)
cur AS (
    SELECT res.report, res.pos, rep.job_id, res.document_id, res.status, res.chunk_count, res.attempts,
           res.last_error, res.error_kind, d.member IS NOT NULL AS member,
           d.status AS old_status, d.chunk_count AS old_chunk_count
    FROM res
    JOIN rep ON rep.idx = res.report
    LEFT JOIN LATERAL (
        SELECT true AS member, d.status, d.chunk_count FROM job_documents d
        WHERE d.job_id = rep.job_id AND d.document_id = res.document_id LIMIT 1
    ) d ON true
),
-- Each report's first result (in its order) for a document that is not the job's.
stray AS (
    SELECT DISTINCT ON (report) report, document_id
    FROM cur WHERE NOT member
    ORDER BY report, pos
),
judged AS (
    SELECT rep.idx, rep.job_id,
           CASE
               WHEN rep.batch_id IS NOT NULL AND COALESCE(rn.job_id, b.job_id) IS NULL THEN 'lease_lost'
               WHEN rep.batch_id IS NOT NULL AND COALESCE(rn.job_id, b.job_id) <> rep.job_id THEN 'wrong_batch'
               WHEN j.id IS NULL THEN 'not_found'
               WHEN j.status <> 'in_progress' AND EXISTS (SELECT 1 FROM res WHERE res.report = rep.idx) THEN 'not_running'
               WHEN stray.document_id IS NOT NULL THEN 'not_member'
               ELSE 'ok'
           END AS outcome,
           COALESCE(rn.job_id, b.job_id) AS batch_job_id,
           stray.document_id AS stray_document_id
    FROM rep
    LEFT JOIN asked a ON a.batch_id = rep.batch_id AND a.worker = rep.worker
    -- The batch is held under this worker: renewed, or with more than three quarters of the
    -- lease left. Only its worker can change such a batch meanwhile (a claim or the reconciler
    -- takes only an expired lease), and it sends its next call after this report's answer.
    LEFT JOIN renewed rn ON rn.id = rep.batch_id AND rn.worker = rep.worker
    LEFT JOIN LATERAL (
        SELECT b.job_id FROM job_batches b
        WHERE rn.id IS NULL AND b.id = rep.batch_id AND b.worker = rep.worker AND b.state = 'running'
          AND b.lease_until >= now() + make_interval(secs => a.lease_seconds * 0.75)
        LIMIT 1
    ) b ON true
    LEFT JOIN LATERAL (SELECT j.id, j.status FROM jobs j WHERE j.id = rep.job_id LIMIT 1) j ON true
    LEFT JOIN stray ON stray.report = rep.idx
),
-- The results to write: of the accepted reports, for each document the last report's.
chosen AS (
    SELECT DISTINCT ON (cur.job_id, cur.document_id) cur.*
    FROM cur
    JOIN judged ON judged.idx = cur.report AND judged.outcome = 'ok'
    ORDER BY cur.job_id, cur.document_id, cur.report DESC
),
written AS (
    UPDATE job_documents d
    SET status = c.status, chunk_count = c.chunk_count, attempts = c.attempts,
        last_error = c.last_error, error_kind = c.error_kind, updated_at = now()
    FROM chosen c
    WHERE d.job_id = c.job_id AND d.document_id = c.document_id
),
delta AS (
    SELECT job_id,
           sum((status IN ('succeeded', 'skipped'))::int - (old_status IN ('succeeded', 'skipped'))::int)::bigint AS processed,
           sum((status = 'failed')::int - (old_status = 'failed')::int)::bigint AS failed,
           sum(CASE WHEN status IN ('succeeded', 'skipped') THEN chunk_count ELSE 0 END
             - CASE WHEN old_status IN ('succeeded', 'skipped') THEN old_chunk_count ELSE 0 END)::bigint AS chunks
    FROM chosen
    GROUP BY job_id
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
)
SELECT judged.idx, judged.outcome, judged.batch_job_id, judged.stray_document_id
FROM judged
ORDER BY judged.idx;
