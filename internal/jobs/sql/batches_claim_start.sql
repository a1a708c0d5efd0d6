-- Workers claim batches of active jobs, one request per row of the arrays (ids distinct), after
-- batches_lock.sql locked them, and the pending jobs of the claimed batches start, in one
-- statement. A queued batch, or a running one whose lease ran out (its worker died), becomes the
-- requester's under a lease of its length; anything else (done, held under a live lease, job
-- finished) matches no row. Each claimed batch's job that is pending moves to in_progress (the
-- state machine's only move into in_progress). Returns one row per claimed batch: the batch,
-- whether this statement started its job, and the job afterwards.
-- The batches are found by id (job_batches_pkey): their states are tested in a CASE, which
-- Postgres cannot match to job_batches_open_idx's predicate, so that it never plans a scan of
-- every open batch (and of the dead entries a drain leaves there until vacuum) to find them.
WITH claimed AS (
    UPDATE job_batches b
    SET state = 'running', worker = r.worker, lease_until = now() + make_interval(secs => r.lease_seconds),
        claims = b.claims + 1, updated_at = now()
    FROM unnest(@ids::uuid[], @workers::text[], @lease_seconds::float8[]) AS r (id, worker, lease_seconds)
    WHERE b.id = ANY (@ids::uuid[]) AND b.id = r.id
      AND CASE b.state WHEN 'queued' THEN true WHEN 'running' THEN b.lease_until < now() ELSE false END
      AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = b.job_id AND j.status IN ('pending', 'in_progress'))
    RETURNING b.id, b.job_id, b.seq, b.document_ids, b.state, b.enqueues, b.queue_message_id, b.enqueued_at,
        b.claims, b.worker, b.lease_until, b.created_at, b.updated_at, b.finished_at
), pending AS (
    -- The claimed batches' pending jobs, and whether each has a batch outside this group: another
    -- group may be claiming that one, so such jobs are locked in id order first (two groups never
    -- deadlock). A job whose batches are all in this group needs no lock before its update: this
    -- transaction holds all of them (batches_lock.sql), so no other claim can start it, and the
    -- lock would only cost a write.
    SELECT j.id, EXISTS (SELECT 1 FROM job_batches o WHERE o.job_id = j.id AND o.id <> ALL (@ids::uuid[])) AS shared
    FROM jobs j
    WHERE j.id IN (SELECT job_id FROM claimed) AND j.status = 'pending'
), locked AS (
    -- A locking read returns a row as the transaction that held it left it, which this
    -- statement's snapshot, taken before the wait, does not show: a group that claimed another
    -- batch of the job meanwhile may have started it. Only the rows locked here are seen so; the
    -- job of a claimed batch is returned from here when it was locked (not as the snapshot shows
    -- it, still pending).
    SELECT j.id, j.type, j.status, j.source_id, j.document_ids, j.chunk_count, j.processed_count, j.error_count,
        j.queue_message_id, j.error, j.retry_of, j.version, j.timeout_seconds, j.created_at, j.updated_at,
        j.started_at, j.finished_at, j.pages_discovered, j.pages_fetched, j.pages_failed, j.external_id
    FROM jobs j
    WHERE j.id IN (SELECT id FROM pending WHERE shared)
    ORDER BY j.id
    FOR UPDATE
), started AS (
    UPDATE jobs j
    SET status = 'in_progress', started_at = now(), version = j.version + 1, updated_at = now()
    FROM (SELECT id FROM locked WHERE status = 'pending' UNION ALL SELECT id FROM pending WHERE NOT shared) AS t
    WHERE j.id = t.id AND j.status = 'pending'
    RETURNING j.id, j.type, j.status, j.source_id, j.document_ids, j.chunk_count, j.processed_count, j.error_count,
        j.queue_message_id, j.error, j.retry_of, j.version, j.timeout_seconds, j.created_at, j.updated_at,
        j.started_at, j.finished_at, j.pages_discovered, j.pages_fetched, j.pages_failed, j.external_id
)
SELECT c.*, true, s.*
FROM claimed c
JOIN started s ON s.id = c.job_id
UNION ALL
SELECT c.*, false, l.*
FROM claimed c
JOIN locked l ON l.id = c.job_id
WHERE NOT EXISTS (SELECT 1 FROM started s WHERE s.id = c.job_id)
UNION ALL
SELECT c.*, false, j.id, j.type, j.status, j.source_id, j.document_ids, j.chunk_count, j.processed_count,
    j.error_count, j.queue_message_id, j.error, j.retry_of, j.version, j.timeout_seconds, j.created_at,
    j.updated_at, j.started_at, j.finished_at, j.pages_discovered, j.pages_fetched, j.pages_failed, j.external_id
FROM claimed c
JOIN jobs j ON j.id = c.job_id
WHERE NOT EXISTS (SELECT 1 FROM started s WHERE s.id = c.job_id)
  AND NOT EXISTS (SELECT 1 FROM locked l WHERE l.id = c.job_id);
