-- Workers holding batches mark them done, one request per row of the arrays (ids distinct), and
-- each running job of those batches that has no open batch left ends, in one statement, after
-- batches_lock.sql and batches_jobs_lock.sql locked the batches and then their jobs. The jobs'
-- locks are what make this right: a transaction that finished a sibling batch held the job's
-- lock until it committed, so this statement's snapshot, taken after the lock, sees it done
-- (and this statement's own batches, which its snapshot still shows running, are left out by
-- id), so of batches of one job finishing at once the last always ends the job. The outcome is
-- FinishJob's: FAILED when documents failed and none could be processed, else COMPLETED (with
-- error_count telling how many failed); a job not running (finished, or pending: FinishJob
-- handles that) is left alone. A batch the requester does not hold matches no row. Returns one
-- row per finished batch: the batch, whether this statement ended its job, and the job afterwards.
-- The batches are found by id, their state tested in a CASE (as in batches_claim_start.sql).
WITH finished AS (
    UPDATE job_batches b
    SET state = 'done', lease_until = NULL, finished_at = now(), updated_at = now()
    FROM unnest(@ids::uuid[], @workers::text[]) AS r (id, worker)
    WHERE b.id = ANY (@ids::uuid[]) AND b.id = r.id AND b.worker = r.worker
      AND CASE b.state WHEN 'running' THEN true ELSE false END
    RETURNING b.id, b.job_id, b.seq, b.document_ids, b.state, b.enqueues, b.queue_message_id, b.enqueued_at,
        b.claims, b.worker, b.lease_until, b.created_at, b.updated_at, b.finished_at
), ended AS (
    UPDATE jobs j
    SET status      = CASE WHEN j.processed_count = 0 AND j.error_count > 0 THEN 'failed' ELSE 'completed' END,
        error       = CASE WHEN j.processed_count = 0 AND j.error_count > 0
                           THEN format('none of the %s documents could be processed; see the per-document errors', j.error_count)
                           ELSE j.error END,
        finished_at = now(),
        version     = j.version + 1,
        updated_at  = now()
    WHERE j.id IN (SELECT job_id FROM finished)
      AND j.status = 'in_progress'
      AND NOT EXISTS (
          SELECT 1 FROM job_batches o
          WHERE o.job_id = j.id AND o.state <> 'done' AND o.id NOT IN (SELECT id FROM finished))
    RETURNING j.id, j.type, j.status, j.source_id, j.document_ids, j.chunk_count, j.processed_count, j.error_count,
        j.queue_message_id, j.error, j.retry_of, j.version, j.timeout_seconds, j.created_at, j.updated_at,
        j.started_at, j.finished_at, j.pages_discovered, j.pages_fetched, j.pages_failed, j.external_id
)
SELECT f.*, true, e.*
FROM finished f
JOIN ended e ON e.id = f.job_id
UNION ALL
SELECT f.*, false, j.id, j.type, j.status, j.source_id, j.document_ids, j.chunk_count, j.processed_count,
    j.error_count, j.queue_message_id, j.error, j.retry_of, j.version, j.timeout_seconds, j.created_at,
    j.updated_at, j.started_at, j.finished_at, j.pages_discovered, j.pages_fetched, j.pages_failed, j.external_id
FROM finished f
JOIN jobs j ON j.id = f.job_id
WHERE NOT EXISTS (SELECT 1 FROM ended e WHERE e.id = f.job_id);
